"""A session's page stays open in chromium while the web server restarts under it.

A separate worker process (`manage.py training_worker`, fake trainer) trains; daphne only serves
(`GENHRL_EMBEDDED_WORKER=0`). Daphne is stopped mid-run, the worker goes on, daphne starts again on
the same port, and the page, never reloaded, catches up by itself (polling while the stream is
down, then its SSE stream reconnects) until it shows the session completed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from tests.factories import TINY, Workers, wait_for
from tests.live import free_port, live_database_url, run_daphne
from training import services
from training.models import SessionEvent, SessionStatus, SkillStatus

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]

# The fake trainer writes one success state per 0.2 s epoch: each of the 3 skills trains ~6 s, so
# the first is still training when the server stops and the session ends ~20 s after it started.
OPTIONS = {**TINY, "min_success_states": 30}
FAKE = "--states-per-epoch 1 --epoch-seconds 0.2"
WEB_ENV = {"GENHRL_EMBEDDED_WORKER": "0"}  # the web only serves; the worker process trains
TIMEOUT = 30_000  # ms, for one step of the page catching up; a stuck page fails in well under a minute

# Counts the stream's openings and errors in the page itself (window.genhrlSse is trimmed when long).
COUNT_STREAM = """() => {
  window.__opens = 0; window.__errors = 0;
  document.addEventListener('htmx:sseOpen', () => { window.__opens += 1; });
  document.addEventListener('htmx:sseError', () => { window.__errors += 1; });
}"""


def card(page: Any, skill: str) -> Any:
    return page.locator(f".skill-card[data-skill='{skill}']")


def live_state(page: Any) -> str | None:
    return page.locator("[data-session-live]").get_attribute("data-sse")


def test_open_session_page_reconnects_by_itself_after_a_daphne_restart(
    chromium: Any, fetch_block: Any, user: Any, workers: Workers
) -> None:
    from playwright.sync_api import expect

    session = services.start_session(fetch_block, OPTIONS, owner=user)
    port = free_port()  # both servers listen here: the open page knows only this address
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # wait_for_function
    context.set_default_timeout(15_000)
    try:
        with run_daphne(live_database_url(), data_dir=workers.data_dir / "web1", env=WEB_ENV, port=port) as web:
            context.add_cookies([web.session_cookie(user)])
            page = context.new_page()
            page.add_init_script(f"({COUNT_STREAM})()")
            page.goto(web.url(reverse("training:session", args=[session.pk])))
            worker = workers.start("--slots", "1", "--poll-interval", "0.1", fake=FAKE)
            # The page shows the first skill training, live over its stream.
            expect(card(page, "go_to_block")).to_have_attribute("data-status", "training", timeout=TIMEOUT)
            expect(card(page, "go_to_block").locator("[data-success-states]")).not_to_have_text(
                "0 / 30 success states", timeout=TIMEOUT
            )
            expect(card(page, "go_to_goal")).to_have_attribute("data-status", "pending")
            expect(page.locator("[data-session-live]")).to_have_attribute("data-sse", "open")
            assert page.evaluate("window.__opens") == 1
            page.evaluate("window.__marker = 1")  # gone if the page were ever reloaded
            first = session.skill_runs.get(order=0)  # planned by the worker
            assert (first.skill.name, first.status) == ("go_to_block", SkillStatus.TRAINING), workers.log()

        # The server is gone (run_daphne waited for its exit); the page lost its stream and
        # falls back to polling a server that is not there.
        page.wait_for_function("window.__errors >= 1", timeout=TIMEOUT)
        assert live_state(page) == "down"
        # Training goes on without any web server: the first skill completes, the second starts.
        second = session.skill_runs.filter(order=1, status__in=[SkillStatus.TRAINING, SkillStatus.COMPLETED])
        assert wait_for(second.exists, 30), workers.log()
        first.refresh_from_db()
        assert first.status == SkillStatus.COMPLETED
        # Nothing served the page that news.
        assert card(page, "go_to_block").get_attribute("data-status") == "training"

        with run_daphne(live_database_url(), data_dir=workers.data_dir / "web2", env=WEB_ENV, port=port):
            # Without a reload, the same page catches up with what happened while the server was down...
            expect(card(page, "go_to_block")).to_have_attribute("data-status", "completed", timeout=TIMEOUT)
            expect(card(page, "go_to_goal")).to_have_attribute("data-status", re.compile("^(training|completed)$"))
            # ...its stream reopens by itself...
            page.wait_for_function("window.__opens >= 2", timeout=TIMEOUT)
            # ...and it follows the session to its end: every skill trained, the stream closed.
            expect(page.locator(".sp")).to_have_attribute("data-status", "completed", timeout=TIMEOUT)
            for skill in ("go_to_block", "go_to_goal", "fetch_block"):
                expect(card(page, skill)).to_have_attribute("data-status", "completed")
            expect(page.locator("[data-progress-percent]")).to_have_text("100%")
            expect(page.locator("[data-session-live]")).to_have_attribute("data-sse", "closed", timeout=TIMEOUT)
            assert page.evaluate("window.__marker") == 1
    finally:
        context.close()

    # The worker never noticed: one run, each skill trained once, the session completed normally.
    assert worker.poll() is None, workers.log()
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED, session.error
    assert [(run.status, run.attempt) for run in session.skill_runs.order_by("order")] == [
        (SkillStatus.COMPLETED, 1)
    ] * 3
    assert session.events.filter(kind=SessionEvent.Kind.STATUS, to_state=SessionStatus.RUNNING).count() == 1
