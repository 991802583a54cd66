"""A person's first minute in a real chromium against a real daphne: sign in, search, open a task,
walk its skill tree. Set GENHRL_SCREENSHOTS=1 to also refresh docs/screenshots/task-detail.png."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.factories import REPO_ROOT
from tests.live import LiveDaphne

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "task-detail.png"


@pytest.fixture
def page(chromium):
    """A page under the portal's real Content-Security-Policy: any violation fails the test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(10_000)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert violations == []


def test_sign_in_search_open_task_and_expand_tree(page, live_daphne: LiveDaphne, user, password, demo_tasks):
    from playwright.sync_api import expect

    # Every page needs a login: the dashboard sends us to the login form first.
    page.goto(live_daphne.url("/"))
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Search: htmx swaps the results as we type and puts the query in the address bar.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.locator("#result-count")).to_contain_text("of 2 tasks")
    page.get_by_label("Search").fill("beacon")
    expect(page.locator("#result-count")).to_contain_text("Showing 1–1 of 1 task")
    expect(page).to_have_url(re.compile(r"/tasks/\?q=beacon"))
    expect(page.locator(".task-card")).to_have_count(1)
    expect(page.get_by_role("link", name="fetch_block")).to_have_count(0)

    # Open the task and walk its tree.
    page.get_by_role("link", name="patrol_beacons").click()
    expect(page).to_have_url(live_daphne.url("/tasks/PointMass/patrol_beacons/"))
    expect(page.get_by_role("heading", name="patrol_beacons", level=1)).to_be_visible()
    tree = page.locator("#skill-tree")
    leaf = tree.get_by_text("reach_red_beacon", exact=True)
    leaf_description = tree.get_by_text("Move the point mass to the red beacon in the north-west")

    page.get_by_role("button", name="Collapse all").click()
    expect(leaf).to_be_hidden()
    expect(tree.get_by_text("patrol_north", exact=True)).to_be_hidden()

    tree.locator("summary", has_text="patrol_beacons").click()  # expand the root
    expect(tree.get_by_text("patrol_north", exact=True)).to_be_visible()
    expect(leaf).to_be_hidden()
    tree.locator("summary", has_text="patrol_north").click()  # and one branch
    expect(leaf).to_be_visible()
    expect(leaf_description).to_be_visible()
    expect(tree.get_by_text("reach_yellow_beacon", exact=True)).to_be_hidden()

    page.get_by_role("button", name="Expand all").click()
    expect(tree.get_by_text("reach_yellow_beacon", exact=True)).to_be_visible()
    # Level, kind and place in the training order are on each node; the scene lists the beacons.
    red = tree.locator(".node-line", has_text="reach_red_beacon")
    expect(red).to_contain_text("L0")
    expect(red).to_contain_text("primitive")
    expect(red).to_contain_text("#1")
    expect(page.locator(".scene-table")).to_contain_text("Yellow beacon (south-west)")
    # The stylesheet was served (static files need no login).
    assert page.locator(".topbar").evaluate("e => getComputedStyle(e).position") == "sticky"

    if os.environ.get("GENHRL_SCREENSHOTS"):
        _screenshot(page, SCREENSHOT)


def _screenshot(page, path: Path) -> None:
    """The top of the task page (header, tree and scene) at a README-friendly size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    bottom = page.locator(".detail-grid").evaluate("e => e.getBoundingClientRect().bottom + window.scrollY")
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 12}, full_page=True)
