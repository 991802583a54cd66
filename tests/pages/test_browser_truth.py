"""Every page tells the truth, live (issue 10), in a real chromium against a real daphne:

- a task page and the task list follow a session started elsewhere (terminal, API, another user)
  within about a second, through the pages' watcher;
- the URL names the open dialog, so a refresh, a shared link or Back shows the same dialog;
- a progress dialog whose server goes away says "connection lost" and stops its clock, whether the
  stream errors (server stopped) or just goes silent (server frozen), and clears it once back.
"""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest

from tests.factories import WEB_OPTIONS, run_session
from tests.live import LiveDaphne, free_port, live_database_url, run_daphne
from training import services
from training.models import SessionStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECOND = 4_000  # ms: the watcher polls every second; the rest is room for a loaded CI machine


def new_page(chromium: Any, server: LiveDaphne, user: Any) -> tuple[Any, Any]:
    # bypass_csp: wait_for_function evaluates its predicate as a string, which the CSP forbids.
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.add_cookies([server.session_cookie(user)])
    context.set_default_timeout(15_000)
    return context, context.new_page()


def test_task_page_and_list_follow_a_session_started_and_ended_elsewhere(chromium, live_daphne, fetch_block, researcher):
    from playwright.sync_api import expect

    context, page = new_page(chromium, live_daphne, researcher)
    try:
        listing = context.new_page()
        page.goto(live_daphne.url(fetch_block.get_absolute_url()))
        listing.goto(live_daphne.url("/tasks/"))
        panel = page.locator("#training-panel")
        card = listing.locator(".task-card", has_text="fetch_block")
        expect(panel.get_by_role("link", name="Start training")).to_be_visible()
        expect(card.get_by_role("link", name="Train")).to_be_visible()

        # Started the way the terminal and the API start it, by no one on these pages.
        session = services.start_session(fetch_block, WEB_OPTIONS, owner=researcher)
        expect(panel.get_by_role("link", name="View progress")).to_be_visible(timeout=SECOND)
        expect(card.locator(".train-badge")).to_contain_text("Queued", timeout=SECOND)
        expect(card.get_by_role("link", name="View progress")).to_be_visible(timeout=SECOND)

        session.transition_to(SessionStatus.RUNNING, actor="worker:elsewhere", worker_id="elsewhere")
        expect(card.locator(".train-badge")).to_contain_text("Running", timeout=SECOND)
        expect(panel).to_contain_text("running", timeout=SECOND)

        session = services.request_cancel(session, actor="user:someone-else")
        session.transition_to(SessionStatus.CANCELLED, actor="worker:elsewhere")
        expect(panel.get_by_role("link", name="Start training")).to_be_visible(timeout=SECOND)
        expect(panel).to_contain_text("cancelled")
        expect(card.locator(".train-badge")).to_contain_text("Cancelled", timeout=SECOND)
        expect(card.get_by_role("link", name="Train")).to_be_visible(timeout=SECOND)
    finally:
        context.close()


def test_the_url_names_the_open_dialog_for_refresh_links_and_back(chromium, live_daphne, fetch_block, researcher):
    from playwright.sync_api import expect

    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    context, page = new_page(chromium, live_daphne, researcher)
    try:
        page.goto(live_daphne.url(fetch_block.get_absolute_url()))
        page.locator("#training-panel").get_by_role("link", name="View progress").click()
        progress = page.locator("dialog.modal-progress[open]")
        expect(progress).to_be_visible()
        expect(page).to_have_url(re.compile(rf"\?session={session.pk}$"))

        page.reload()  # F5: the same dialog, not the bare task page
        expect(progress).to_be_visible()
        expect(progress.get_by_role("heading", name="Training fetch_block")).to_be_visible()

        progress.locator("[data-close-modal]").first.click()
        expect(page.locator("dialog[open]")).to_have_count(0)
        expect(page).not_to_have_url(re.compile(r"session="))

        # A shared link opens it; Back closes it and Forward shows it again.
        page.goto(live_daphne.url(f"/tasks/?session={session.pk}"))
        expect(progress).to_be_visible()
        page.locator(".task-card", has_text="patrol_beacons").get_by_role("link", name="Train").evaluate("a => a.scrollIntoView()")
        progress.locator("[data-close-modal]").first.click()
        page.locator(".task-card", has_text="patrol_beacons").get_by_role("link", name="Train").click()
        config = page.locator("dialog.modal-config[open]")
        expect(config).to_be_visible()
        expect(page).to_have_url(re.compile(r"\?train=PointMass%2Fpatrol_beacons$"))
        # The first estimate says how it was made, follows the environments, and the bound is a bound.
        estimate = config.locator("[data-estimate-seconds]")
        expect(config.locator("[data-estimate-basis]")).to_contain_text("measured speed")
        expect(config.locator("[data-estimate-bound]")).to_contain_text("Upper bound, not a forecast")
        before = estimate.get_attribute("data-estimate-seconds")
        config.get_by_label("Parallel environments").fill("8192")
        expect(estimate).not_to_have_attribute("data-estimate-seconds", before)
        # History steps reopen the dialog with a request of their own: give a loaded machine time.
        page.go_back()
        expect(page.locator("dialog[open]")).to_have_count(0, timeout=15_000)
        page.go_forward()
        expect(config.get_by_role("heading", name="Train patrol_beacons")).to_be_visible(timeout=15_000)
        page.reload()
        expect(config.get_by_role("heading", name="Train patrol_beacons")).to_be_visible(timeout=15_000)

        # A link naming a session that cannot open says so, drops the parameter, and the page works.
        for bad, said in ((session.pk + 1000, f"Session {session.pk + 1000} not found or not visible to you."),
                          ("abc", "“abc” is not a session id")):
            page.goto(live_daphne.url(f"/tasks/?session={bad}"))
            expect(page.locator("[data-dialog-problem]")).to_contain_text(said)
            expect(page).not_to_have_url(re.compile(r"session="))
            expect(page.locator("dialog[open]")).to_have_count(0)
        page.locator(".task-card", has_text="fetch_block").get_by_role("link", name="View progress").click()
        expect(progress).to_be_visible()
    finally:
        context.close()


def test_a_lost_server_shows_connection_lost_and_stops_the_clock_until_it_is_back(chromium, fetch_block, researcher, tmp_path):
    from playwright.sync_api import expect

    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    port = free_port()  # both servers listen here: the open page knows only this address
    env = {"GENHRL_EMBEDDED_WORKER": "0", "GENHRL_RELAY_POLL_MS": "40"}
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    try:
        with run_daphne(live_database_url(), data_dir=tmp_path / "web1", env=env, port=port) as web:
            context.add_cookies([web.session_cookie(researcher)])
            page = context.new_page()
            page.goto(web.url(f"{fetch_block.get_absolute_url()}?session={session.pk}"))
            live = page.locator("[data-session-live]")
            banner = page.locator("[data-live-connection]")
            expect(live).to_have_attribute("data-sse", "open")
            expect(banner).to_be_hidden()

            # Frozen: the connection stays open but nothing comes (no error for the browser).
            os.kill(web.process.pid, signal.SIGSTOP)
            try:
                expect(banner).to_be_visible(timeout=10_000)
                expect(banner).to_contain_text("Connection lost, reconnecting")
                expect(live).to_have_class(re.compile("live-offline"))
                expect(page.locator("[data-session-status]")).to_contain_text("Running")
            finally:
                os.kill(web.process.pid, signal.SIGCONT)
            expect(banner).to_be_hidden(timeout=10_000)
            expect(live).not_to_have_class(re.compile("live-offline"))

        # Stopped: the stream errors; the banner shows within a few seconds.
        expect(banner).to_be_visible(timeout=5_000)
        with run_daphne(live_database_url(), data_dir=tmp_path / "web2", env=env, port=port):
            expect(live).to_have_attribute("data-sse", "open", timeout=20_000)
            expect(banner).to_be_hidden()
    finally:
        context.close()
