"""The history with filters, sorting and compare checkboxes, the comparison page and the session's
metrics explorer (issue 13a), rendered in process; the browser test clicks through them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import one_skill_task
from training.models import SessionStatus, TrainingSession

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-session-row="(\d+)"', html)]


@pytest.fixture
def history(user, other_user) -> dict[str, TrainingSession]:
    now = timezone.now()
    walk, reach = one_skill_task("walk", robot="G1"), one_skill_task("reach")

    def made(task, owner, status, days, backend="embedded"):
        when = now - timedelta(days=days)
        return TrainingSession.objects.create(task=task, owner=owner, status=status, backend=backend,
                                              created_at=when, finished_at=when, config={"seed": days})

    return {
        "old": made(walk, user, SessionStatus.FAILED, 30, backend="isaaclab"),
        "mid": made(reach, other_user, SessionStatus.COMPLETED, 10),
        "new": made(reach, user, SessionStatus.COMPLETED, 1),
        "live": made(walk, user, SessionStatus.RUNNING, 0),  # in the active list, not the history
    }


def test_history_filters_by_task_robot_owner_status_backend_and_dates(user_client: Client, history, user) -> None:
    old, mid, new = history["old"].pk, history["mid"].pk, history["new"].pk
    assert _rows(user_client.get("/training/").content.decode()) == [new, mid, old]
    cases = {
        "task=reach": [new, mid], "robot=G1": [old], f"owner={user.username}": [new, old],
        "status=completed": [new, mid], "backend=isaaclab": [old],
        f"since={(timezone.now() - timedelta(days=15)).date()}": [new, mid],
        f"until={(timezone.now() - timedelta(days=5)).date()}": [mid, old],
        "sort=oldest": [old, mid, new], "task=reach&sort=oldest": [mid, new], "task=nothing": [],
        "status=running": [history["live"].pk],
    }
    for query, expected in cases.items():
        answer = user_client.get(f"/training/?{query}")
        assert answer.status_code == 200 and _rows(answer.content.decode()) == expected, query


def test_history_pages_and_keeps_the_filters_in_its_links(user_client: Client, history, settings) -> None:
    from training import views

    views.SESSIONS_LISTED, listed = 2, views.SESSIONS_LISTED
    try:
        first = user_client.get("/training/?sort=oldest").content.decode()
        assert _rows(first) == [history["old"].pk, history["mid"].pk]
        assert "?sort=oldest&amp;page=2" in first
        assert _rows(user_client.get("/training/?sort=oldest&page=2").content.decode()) == [history["new"].pk]
    finally:
        views.SESSIONS_LISTED = listed


@pytest.mark.parametrize("query", ["status=nonsense", "since=yesterday", "since=2026-02-02&until=2026-01-01",
                                   "page=0", "sort=sideways"])
def test_bad_history_filters_say_why_and_list_nothing(user_client: Client, history, query: str) -> None:
    answer = user_client.get(f"/training/?{query}")
    assert answer.status_code == 400
    html = answer.content.decode()
    assert "data-filter-errors" in html and _rows(html) == []


def test_history_rows_have_compare_checkboxes(user_client: Client, history) -> None:
    html = user_client.get("/training/").content.decode()
    assert 'action="/training/compare/"' in html
    assert html.count('name="sessions"') == 3


def test_comparison_page_highlights_the_config_difference(user_client: Client, compared_sessions) -> None:
    first, second = compared_sessions
    # The history's form sends one `sessions` per ticked box; a shared link sends them joined.
    for query in (f"sessions={first.pk}&sessions={second.pk}", f"sessions={first.pk},{second.pk}"):
        answer = user_client.get(f"/training/compare/?{query}")
        assert answer.status_code == 200
    html = answer.content.decode()
    differing = re.findall(r'data-option="([^"]+)" data-differs', html)
    assert differing == ["num_envs", "seed"]
    assert 'data-option="min_success_states"' in html and html.count('data-option="backend"') == 1
    # Rows read as the training form's labels, the raw option name beside them (and as the tooltip).
    row = re.search(r'data-option="min_success_states">(.*?)</th>', html).group(1)
    assert 'title="min_success_states">Min success states <code' in row and ">min_success_states</code>" in row
    assert "Parallel environments" in html and ">Random seed " in html
    assert 'data-skill="go_to_block"' in html and "best reward" in html
    assert 'id="compare-data"' in html and "uPlot.iife.min.js" in html
    assert f"/api/compare?sessions={first.pk},{second.pk}" in html


@pytest.mark.parametrize("query", ["", "sessions=1", "sessions=1,2,3,4,5", "sessions=x"])
def test_comparison_page_refuses_bad_lists(user_client: Client, query: str) -> None:
    answer = user_client.get(f"/training/compare/?{query}")
    assert answer.status_code == 400
    assert "choose 2 to 4" in answer.content.decode() or "session ids" in answer.content.decode()


def test_session_page_loads_the_metrics_explorer(user_client: Client, compared_sessions) -> None:
    session = compared_sessions[0]
    page = user_client.get(f"/training/sessions/{session.pk}/").content.decode()
    assert f"/training/sessions/{session.pk}/metrics/" in page and "js/metrics.js" in page
    explorer = user_client.get(f"/training/sessions/{session.pk}/metrics/", headers={"HX-Request": "true"}).content.decode()
    run = session.skill_runs.get()
    assert "data-metrics-explorer" in explorer and f'data-series-url="/api/runs/{run.pk}/metrics/series"' in explorer
    assert 'data-status="completed"' in explorer and "data-mx-runs-url" not in explorer  # ended: nothing to follow
    # Active: metrics.js reads it again to follow the session; without runs yet, it reloads itself.
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.RUNNING)
    explorer = user_client.get(f"/training/sessions/{session.pk}/metrics/", headers={"HX-Request": "true"}).content.decode()
    assert f'data-mx-runs-url="/training/sessions/{session.pk}/metrics/"' in explorer and 'hx-trigger="every 3s"' not in explorer
    session.skill_runs.all().delete()
    explorer = user_client.get(f"/training/sessions/{session.pk}/metrics/", headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 3s"' in explorer and "Its runs appear here when training starts." in explorer
