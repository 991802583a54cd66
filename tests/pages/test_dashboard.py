"""The dashboard: totals, recent tasks, quick links and the (empty) active sessions slot."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import make_task

pytestmark = pytest.mark.django_db


def test_dashboard_counts_tasks_skills_and_robots(user_client, doorway_task, demo_tasks):
    response = user_client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert response.context["task_count"] == 3
    assert response.context["skill_count"] == 6 + sum(t.skill_count for t in demo_tasks)
    assert response.context["robot_count"] == 2
    body = response.content.decode()
    assert "patrol_beacons" in body and "doorway_and_goal" in body
    assert 'id="active-sessions"' in body and "No training sessions are running." in body


def test_dashboard_lists_most_recently_updated_first(user_client):
    for i in range(8):
        make_task(f"task_{i}")
    recent = list(user_client.get(reverse("dashboard")).context["recent_tasks"])
    assert [t.name for t in recent] == [f"task_{i}" for i in range(7, 1, -1)]


def test_empty_dashboard_explains_how_to_import(user_client):
    body = user_client.get(reverse("dashboard")).content.decode()
    assert "No tasks yet." in body
    assert 'id="import-help"' in body and "import_tasks" in body


def test_rescan_button_is_for_staff_only(client, user, staff_user):
    client.force_login(user)
    assert reverse("task_rescan") not in client.get(reverse("dashboard")).content.decode()
    client.force_login(staff_user)
    assert reverse("task_rescan") in client.get(reverse("dashboard")).content.decode()


def test_dashboard_query_count_is_small(user_client, django_assert_max_num_queries, doorway_task):
    with django_assert_max_num_queries(6):  # session, user, totals, recent tasks, training now
        user_client.get(reverse("dashboard"))
