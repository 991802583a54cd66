"""`cleanup_sessions` is set-based: a few hundred sessions cost a bounded number of queries, and
batching changes nothing in what it prints or does."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import Skill
from tests.factories import one_skill_task, write
from training import paths, pruning
from training.models import LogLine, MetricPoint, SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

OLD, KEPT = 300, 20  # sessions deleted (40 days old), sessions kept and pruned (20 days old)


@pytest.fixture
def history(settings):
    """OLD old sessions and KEPT recent ones, three runs each, a few with run folders and fine rows."""
    settings.GENHRL_PRUNE_AFTER_DAYS = 7
    settings.GENHRL_PRUNE_KEEP_LOG_LINES = 5
    settings.GENHRL_PRUNE_MAX_POINTS_PER_TAG = 4
    task = one_skill_task("sweep_target")
    skills = [task.skills.get()] + [
        Skill.objects.create(task=task, name=f"extra_{i}", level=0, order=i + 1, is_primitive=True) for i in range(2)
    ]
    now = timezone.now()
    sessions = TrainingSession.objects.bulk_create(
        TrainingSession(task=task, backend="embedded", status=SessionStatus.COMPLETED,
                        created_at=now - timedelta(days=days), finished_at=now - timedelta(days=days, seconds=i))
        for i, days in enumerate([40] * OLD + [20] * KEPT)
    )
    runs = SkillRun.objects.bulk_create(
        SkillRun(session=session, skill=skill, order=order, status=SkillStatus.COMPLETED)
        for session in sessions for order, skill in enumerate(skills)
    )
    for run in runs[::50]:  # some runs have their folder on disk
        write(paths.run_dir(run.skill, run.pk) / "trainer.log", 100)
    LogLine.objects.bulk_create(
        LogLine(skill_run=run, seq=i, stream="stdout", text=f"line {i}", time=now) for run in runs[::7] for i in range(12)
    )
    MetricPoint.objects.bulk_create(
        MetricPoint(skill_run=run, tag="mean_reward", step=i, value=i, time=now) for run in runs[::11] for i in range(10)
    )
    return sessions


def cleanup(*args: str) -> tuple[str, int]:
    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command("cleanup_sessions", "--older-than", "30", *args, stdout=out, stderr=StringIO())
    return out.getvalue(), len(queries.captured_queries)


def test_cleanup_of_hundreds_of_sessions_is_batched_and_prints_the_same_as_one_batch(history, monkeypatch):
    dry, dry_queries = cleanup("--dry-run")
    monkeypatch.setattr(pruning, "SESSION_BATCH", 7)
    monkeypatch.setattr(pruning.doomed_batches, "__kwdefaults__", {"batch_size": 7})
    monkeypatch.setattr(pruning.prune_finished_sessions, "__kwdefaults__",
                        {**pruning.prune_finished_sessions.__kwdefaults__, "batch_size": 7})
    small_batches, _ = cleanup("--dry-run")

    assert small_batches == dry  # batching is invisible
    assert f"Would delete {OLD} sessions and " in dry
    # Two batches of 200 sessions: a few queries each, not several per session or per run.
    assert dry_queries <= 30, dry_queries
    assert TrainingSession.objects.count() == OLD + KEPT

    monkeypatch.undo()
    old_folders = [paths.run_dir(r.skill, r.pk) for r in SkillRun.objects.filter(session__in=history[:OLD])]
    real, real_queries = cleanup()

    assert real_queries <= 80, real_queries
    # The same lines as the dry run (whose pruning also counts the sessions it would have deleted).
    as_planned = real.replace("Deleted", "Would delete").replace("deleting", "would delete").replace(
        "removing", "would remove")
    assert as_planned.splitlines()[:-1] == dry.splitlines()[:-1]
    assert "Pruned 63 log lines and 36 metric points from 14 skill runs of 12 sessions." in real
    assert set(TrainingSession.objects.values_list("pk", flat=True)) == {s.pk for s in history[OLD:]}
    assert not any(folder.exists() for folder in old_folders)
    kept_runs = SkillRun.objects.filter(session__in=history[OLD:])
    for run in kept_runs:
        assert run.log_lines.count() <= 5 and run.metric_points.count() <= 4
    assert cleanup("--dry-run")[0].endswith("Would prune 0 log lines and 0 metric points from 0 skill runs of 0 sessions.\n")
