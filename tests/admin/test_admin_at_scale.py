"""The admin's lists and a session's page cost the same number of queries whatever the history holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from training.models import SessionEvent, SessionStatus, SkillRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

PAGES = [
    "/admin/training/trainingsession/",
    "/admin/training/skillrun/",
    "/admin/training/sessionevent/",
    "/admin/training/metricpoint/",
    "/admin/training/logline/",
]

HISTORY = ("TRAINING_SKILLRUN", "TRAINING_SESSIONEVENT", "TRAINING_METRICPOINT", "TRAINING_LOGLINE")


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.org", "pw"))
    return client


def queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return [q["sql"] for q in captured.captured_queries]


def add_history(make_session, sessions: int) -> list:
    made = [make_session(days_ago=i + 1, lines=3, points=3) for i in range(sessions)]
    for session in made:
        run = session.skill_runs.get()
        SessionEvent.objects.create(session=session, skill_run=run, kind="note", actor="system", message="hi")
    return made


def test_admin_lists_cost_the_same_queries_for_two_or_twelve_sessions(admin_client, make_session):
    add_history(make_session, 2)
    few = {url: len(queries_of(admin_client, url)) for url in PAGES}

    add_history(make_session, 10)
    many = {url: queries_of(admin_client, url) for url in PAGES}

    assert {url: len(sql) for url, sql in many.items()} == few
    for sql in (sql.upper() for sqls in many.values() for sql in sqls):
        # Filters list known values (or the small task table's), never every distinct value of the history.
        assert not (sql.startswith("SELECT DISTINCT") and any(table in sql for table in HISTORY)), sql
        # Pages are numbered from a bounded count, never COUNT(*) over the whole table.
        assert "COUNT(*)" not in sql or " LIMIT " in sql, sql


def test_a_sessions_page_costs_the_same_queries_for_one_or_twelve_runs(admin_client, make_session, demo):
    session = add_history(make_session, 1)[0]  # one run
    url = f"/admin/training/trainingsession/{session.pk}/change/"
    queries_of(admin_client, url)  # the content type is cached from then on
    one = len(queries_of(admin_client, url))


    task = demo["patrol_beacons"]
    big = make_session(SessionStatus.COMPLETED, days_ago=1)
    big.task = task
    big.save(update_fields=["task"])
    big.skill_runs.all().delete()
    for order, skill in enumerate(task.skills.all()):
        run = SkillRun.objects.create(session=big, skill=skill, order=order, status="completed")
        SessionEvent.objects.create(session=big, skill_run=run, kind="note", actor="system", message="done")
    assert big.skill_runs.count() > 1

    assert len(queries_of(admin_client, f"/admin/training/trainingsession/{big.pk}/change/")) == one
