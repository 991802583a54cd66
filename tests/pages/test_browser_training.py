"""A researcher trains the demo task in a real chromium against a real daphne whose embedded worker
trains for real (the embedded simulator, tiny settings): start from the task page through the
dialog, watch it live, refresh, cancel, fail and retry.

Set GENHRL_SCREENSHOTS=1 to also refresh docs/screenshots/progress-modal.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tasks.importer import import_path
from tasks.models import Task
from tests.factories import REPO_ROOT, WEB_OPTIONS
from tests.live import LiveDaphne
from training import services
from training.models import SessionStatus, SkillStatus, TrainingSession

pytestmark = [pytest.mark.browser, pytest.mark.training, pytest.mark.django_db(transaction=True)]
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "progress-modal.png"
DEMO = REPO_ROOT / "tasks" / "demo" / "PointMass_generated"
PANEL = re.compile(r"/training/sessions/\d+/progress/")  # the live panel's partial
# Real training on a shared CPU: generous, but a stuck run still fails the test in about a minute.
SKILL_TIMEOUT = 60_000
SCREENSHOTS = bool(os.environ.get("GENHRL_SCREENSHOTS"))


@pytest.fixture
def page(chromium: Any, training_daphne: LiveDaphne, researcher: Any) -> Any:
    # Taller for the picture, so the whole dialog fits.
    size = {"width": 1280, "height": 1000 if SCREENSHOTS else 900}
    # bypass_csp: wait_for_function evaluates its predicate as a string, which the CSP forbids
    # (test_browser.py checks the pages under the CSP).
    context = chromium.new_context(viewport=size, color_scheme="light", bypass_csp=True)
    context.add_cookies([training_daphne.session_cookie(researcher)])
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def card(page: Any, skill: str) -> Any:
    return page.locator(f".skill-card[data-skill='{skill}']")


def fill_tiny_settings(page: Any, **changes: Any) -> None:
    options = {**WEB_OPTIONS, **changes}
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Max time per skill").fill(str(options["max_time"]))
    dialog.get_by_label("Min success states").fill(str(options["min_success_states"]))
    dialog.get_by_label("Parallel environments").fill(str(options["num_envs"]))
    dialog.get_by_label("Random seed").fill(str(options["seed"]))
    dialog.locator("summary", has_text="Advanced").click()
    dialog.get_by_label("Min frames, primitive skills").fill(str(options["min_steps_primitive"]))
    dialog.get_by_label("Min frames, composite skills").fill(str(options["min_steps_composite"]))


def wait_for_stream(page: Any) -> None:
    page.wait_for_function("window.genhrlSse && window.genhrlSse.includes('open')")


def test_start_from_the_task_page_watch_live_refresh_and_finish(page, training_daphne, fetch_block, researcher):
    from playwright.sync_api import expect

    page.goto(training_daphne.url(fetch_block.get_absolute_url()))
    page.get_by_role("link", name="Start training").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading", name="Train fetch_block")).to_be_visible()
    expect(dialog.locator(".status-overview")).to_contain_text("3 skills")
    expect(dialog.locator(".estimate-box")).to_contain_text("measured speed")
    # For the picture, a target the bars fill visibly (the tiny one is reached in one epoch).
    min_states = 1000 if SCREENSHOTS else WEB_OPTIONS["min_success_states"]
    fill_tiny_settings(page, min_success_states=min_states)
    expect(dialog.locator(".cli code")).to_contain_text(f"--min-success-states {min_states} --num-envs 64")
    page.evaluate("window.notReloaded = true")
    # Each panel refresh the page asks for: at most about one a second, however often the session
    # changes (its supervisor writes a few times a second, each write a `progress` event).
    refreshes: list[float] = []
    page.on("request", lambda request: refreshes.append(time.monotonic()) if PANEL.search(request.url) else None)
    dialog.get_by_role("button", name="Start training").click()

    # The progress dialog replaces the form; everything below arrives over SSE, without a reload.
    progress = page.locator("dialog.modal-progress[open]")
    expect(progress.get_by_role("heading", name="Training fetch_block")).to_be_visible()
    wait_for_stream(page)
    watched_from = time.monotonic()
    expect(progress.locator(".stage[data-stage-name=training]")).to_have_class("stage stage-current", timeout=SKILL_TIMEOUT)
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "training")
    expect(progress.locator("[data-current-skill]")).to_contain_text("go_to_block")
    expect(card(page, "go_to_goal")).to_have_attribute("data-status", "pending")
    # Success states count up against the minimum while it trains, then the skill completes.
    expect(card(page, "go_to_block").locator("[data-success-states]")).not_to_have_text(re.compile(r"^0 /"), timeout=SKILL_TIMEOUT)
    # The reward curve and the trainer's output follow the skill training now.
    expect(progress.locator(".curve svg")).to_be_visible(timeout=SKILL_TIMEOUT)
    expect(progress.locator("[data-log] .log-line").first).to_be_visible()
    if SCREENSHOTS:
        _screenshot(page, progress)
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "completed", timeout=SKILL_TIMEOUT)
    expect(card(page, "go_to_goal")).to_have_attribute("data-status", re.compile("training|completed"))
    expect(progress.locator("[data-completed]")).to_contain_text(re.compile("[12] of 3"))
    assert page.evaluate("window.notReloaded") is True

    # Refresh mid-run: the URL names the dialog (?session=<id>), so it is back with the state at once.
    session = TrainingSession.objects.get(task=fetch_block)
    assert page.url.endswith(f"?session={session.pk}")
    page.reload()
    expect(page.locator("dialog.modal-progress[open]")).to_be_visible()
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "completed", timeout=3_000)
    expect(page.locator("dialog.modal-progress[open] [data-session-status]")).to_contain_text("Running", timeout=3_000)
    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.RUNNING

    # It finishes by itself; the dialog shows the outcome and closes its stream.
    expect(page.locator(".sp")).to_have_attribute("data-status", "completed", timeout=2 * SKILL_TIMEOUT)
    for skill in ("go_to_block", "go_to_goal", "fetch_block"):
        expect(card(page, skill)).to_have_attribute("data-status", "completed")
    expect(page.locator("[data-progress-percent]")).to_have_text("100%")
    page.wait_for_function("window.genhrlSse.includes('done')")
    assert page.locator("[data-session-live]").get_attribute("data-sse") == "closed"
    watched = time.monotonic() - watched_from
    asked = sum(1 for at in refreshes if at >= watched_from)
    assert asked <= watched + 5, f"{asked} panel refreshes in {watched:.0f} s of watching"

    # Closing the dialog leaves the task page up to date: its tree shows each skill's states.
    page.locator("dialog[open] [data-close-modal]").first.click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(page.get_by_role("link", name="Start training")).to_be_visible(timeout=10_000)
    skill = fetch_block.skills.get(name="go_to_block")
    expect(page.locator(f"#skill-status-{skill.pk}")).to_contain_text("completed", timeout=10_000)
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED and session.owner == researcher
    assert session.config["num_envs"] == 64 and session.config["min_success_states"] == min_states


def test_cancel_from_the_task_list_with_confirmation_and_polling_fallback(page, training_daphne, fetch_block, researcher):
    from playwright.sync_api import expect

    # The stream is cut: the dialog must keep up by polling.
    page.route("**/training/progress/**", lambda route: route.abort())
    page.goto(training_daphne.url("/tasks/"))
    page.locator(".task-card", has_text="fetch_block").get_by_role("link", name="Train").click()
    fill_tiny_settings(page, min_success_states=100_000)
    page.locator("dialog[open]").get_by_role("button", name="Start training").click()
    progress = page.locator("dialog.modal-progress[open]")
    page.wait_for_function("window.genhrlSse.includes('error')")
    expect(page.locator("[data-session-live]")).to_have_attribute("data-sse", "down")
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "training", timeout=SKILL_TIMEOUT)
    expect(card(page, "go_to_block").locator(".skill-card-stats dd").nth(1)).not_to_have_text("0", timeout=SKILL_TIMEOUT)
    session = TrainingSession.objects.get(task=fetch_block)

    # Dismissing the confirmation changes nothing.
    page.once("dialog", lambda confirm: confirm.dismiss())
    progress.get_by_role("link", name="Cancel training").click()
    page.wait_for_timeout(500)
    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.RUNNING

    messages: list[str] = []

    def accept(confirm: Any) -> None:
        messages.append(confirm.message)
        confirm.accept()

    page.once("dialog", accept)
    progress.get_by_role("link", name="Cancel training").click()
    assert "Stop training fetch_block?" in messages[0]
    expect(page.locator(".sp")).to_have_attribute("data-status", "cancelled", timeout=SKILL_TIMEOUT)
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "cancelled")
    expect(progress.get_by_role("button", name="Start again")).to_be_visible()
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED
    assert session.cancel_requested_by == f"user:{researcher.username}"
    run = session.skill_runs.get(skill__name="go_to_block")
    assert run.status == SkillStatus.CANCELLED and run.frames > 0

    # The list's badge follows without a reload.
    page.locator("dialog[open] [data-close-modal]").first.click()
    expect(page.locator(f"#train-badge-{fetch_block.pk}")).to_contain_text("Cancelled", timeout=10_000)


def break_skill(root: Path, skill: str) -> Path:
    """A copy of the demo tasks whose `skill` targets an object the scene does not have."""
    tree = root / "PointMass_generated"
    shutil.copytree(DEMO, tree)
    spec_path = tree / "skills" / "fetch_block" / "skills" / skill / "embedded.json"
    spec = json.loads(spec_path.read_text())
    spec["target"] = {"shape": "cylinders", "index": 7}
    spec_path.write_text(json.dumps(spec))
    return spec_path


def test_failed_session_says_what_to_try_and_retry_resumes(page, training_daphne, researcher, tmp_path):
    from playwright.sync_api import expect

    broken = break_skill(tmp_path, "go_to_goal")
    assert import_path(tmp_path / "PointMass_generated").ok
    task = Task.objects.get(robot="PointMass", name="fetch_block")
    failed = services.start_session(task, WEB_OPTIONS, owner=researcher)

    page.goto(training_daphne.url(f"/training/sessions/{failed.pk}/"))
    expect(page.locator(".sp")).to_have_attribute("data-status", "failed", timeout=2 * SKILL_TIMEOUT)
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "completed")
    expect(card(page, "go_to_goal")).to_have_attribute("data-status", "failed")
    expect(card(page, "go_to_goal")).to_contain_text("SkillSpecError: go_to_goal: no object cylinders[7]")
    expect(card(page, "fetch_block")).to_have_attribute("data-status", "cancelled")
    failure = page.locator(".failure")
    expect(failure).to_contain_text("Training failed at go_to_goal")
    expect(failure).to_contain_text("embedded.json) is invalid: fix it, rescan the task, then retry")
    expect(page.locator(".stage[data-stage-name=complete]")).to_have_class("stage stage-failed")
    expect(page.locator(".log-error").first).to_be_visible()

    # The researcher fixes the skill's file and rescans; Retry runs the same settings again.
    shutil.copy(DEMO / "skills" / "fetch_block" / "skills" / "go_to_goal" / "embedded.json", broken)
    assert import_path(tmp_path / "PointMass_generated").ok
    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(training_daphne.url(f"/training/sessions/{failed.pk}/"))
    retry = TrainingSession.objects.exclude(pk=failed.pk).get(task=task)
    expect(page).to_have_url(training_daphne.url(f"/training/sessions/{retry.pk}/"))
    expect(page.locator(".messages")).to_contain_text("started again")
    # go_to_block already has its success states and policy: skip-complete skips it.
    expect(card(page, "go_to_block")).to_have_attribute("data-status", "skipped", timeout=SKILL_TIMEOUT)
    # The fixed skill now trains (the composite after it is the first test's business).
    expect(card(page, "go_to_goal")).to_have_attribute("data-status", "completed", timeout=SKILL_TIMEOUT)
    expect(card(page, "go_to_goal").locator(".skill-card-kind")).to_contain_text("attempt 2")
    retry.refresh_from_db()
    assert retry.config == failed.config and retry.status != SessionStatus.FAILED


def _screenshot(page: Any, dialog: Any) -> None:
    """The progress dialog while a skill trains, once its reward curve has some history.

    Live swaps are held back while the picture is taken, so it never catches a half-updated view.
    """
    page.evaluate(
        "document.addEventListener('htmx:beforeSwap', (e) => { if (window.holdSwaps) e.detail.shouldSwap = false; })"
    )
    ready = (
        "!!document.querySelector(\".skill-card[data-skill='go_to_goal'][data-status=training]\") && "
        "(document.querySelector('.curve-states .curve-line')?.getAttribute('points') || '').split(' ').length >= 10"
    )
    for _ in range(20):
        page.wait_for_function(ready, timeout=3 * SKILL_TIMEOUT)
        page.evaluate("window.holdSwaps = true")
        if page.evaluate(ready):
            break
        page.evaluate("window.holdSwaps = false")
    page.evaluate("document.querySelector('dialog[open] [data-log]').scrollTop = 1e9")
    page.evaluate("document.querySelector('dialog[open] .modal-body').scrollTop = 0")
    page.wait_for_timeout(200)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    box = dialog.bounding_box()
    page.screenshot(path=str(SCREENSHOT), clip={"x": box["x"] - 16, "y": box["y"] - 16,
                                                 "width": box["width"] + 32, "height": box["height"] + 32})
    page.evaluate("window.holdSwaps = false")
