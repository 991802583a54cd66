"""training.pruning: old finished sessions keep their summaries and a bounded tail of fine rows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from training import pruning
from training.models import SessionEvent, SessionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

POLICY = {"older_than": timedelta(days=7), "keep_log_lines": 50, "max_points_per_tag": 20}


def test_old_finished_session_keeps_the_newest_lines_and_a_downsampled_curve(make_session):
    session = make_session(days_ago=30, lines=300, points=500)
    run = session.skill_runs.get()

    report = pruning.prune_finished_sessions(**POLICY)

    assert (report.sessions, report.runs, report.log_lines, report.metric_points) == (1, 1, 250, 960)
    assert list(run.log_lines.values_list("seq", flat=True)) == list(range(250, 300))
    for tag in ("mean_reward", "success_rate"):
        steps = list(run.metric_points.filter(tag=tag).values_list("step", flat=True))
        assert len(steps) == 20
        assert steps[0] == 0 and steps[-1] == 499 * 100  # the curve keeps its ends


def test_summaries_stay(make_session):
    session = make_session(days_ago=30, lines=300, points=500)
    before = session.skill_runs.values().get()

    pruning.prune_finished_sessions(**POLICY)

    assert session.skill_runs.values().get() == before
    note = session.events.get(kind=SessionEvent.Kind.NOTE)
    assert note.actor == "system" and "pruned 250 old log lines and 960 metric points" in note.message


def test_recent_and_active_sessions_are_left_alone(make_session):
    recent = make_session(days_ago=1, lines=300, points=500)
    active = make_session(SessionStatus.RUNNING, days_ago=30, lines=300, points=500)

    report = pruning.prune_finished_sessions(**POLICY)

    assert report.sessions == 0
    for session in (recent, active):
        run = session.skill_runs.get()
        assert run.log_lines.count() == 300 and run.metric_points.count() == 1000


def test_pruning_twice_changes_nothing_more(make_session):
    make_session(days_ago=30, lines=300, points=500)
    pruning.prune_finished_sessions(**POLICY)

    again = pruning.prune_finished_sessions(**POLICY)

    assert (again.sessions, again.log_lines, again.metric_points) == (0, 0, 0)


def test_dry_run_counts_but_deletes_nothing(make_session):
    session = make_session(days_ago=30, lines=300, points=500)

    report = pruning.prune_finished_sessions(**POLICY, dry_run=True)

    assert (report.log_lines, report.metric_points) == (250, 960)
    run = session.skill_runs.get()
    assert run.log_lines.count() == 300 and run.metric_points.count() == 1000
    assert not session.events.exists()


def test_defaults_come_from_settings(make_session, settings):
    settings.GENHRL_PRUNE_AFTER_DAYS = 10
    settings.GENHRL_PRUNE_KEEP_LOG_LINES = 5
    settings.GENHRL_PRUNE_MAX_POINTS_PER_TAG = 3
    session = make_session(days_ago=11, lines=20, points=10)

    pruning.prune_finished_sessions()

    run = session.skill_runs.get()
    assert run.log_lines.count() == 5
    assert run.metric_points.filter(tag="mean_reward").count() == 3


@pytest.mark.parametrize(("count", "keep", "expected"), [
    (10, 3, [0, 4, 9]), (5, 10, [0, 1, 2, 3, 4]), (5, 1, [4]), (5, 0, []), (2, 2, [0, 1]),
])
def test_evenly_spaced(count, keep, expected):
    assert pruning.evenly_spaced(count, keep) == expected
