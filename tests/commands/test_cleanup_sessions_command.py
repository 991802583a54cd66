"""`manage.py cleanup_sessions --older-than DAYS [--dry-run]`: the admin's clean-up from cron."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import run_folder, shared_files
from training.models import LogLine, SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def cleanup(*args: str) -> str:
    out = StringIO()
    call_command("cleanup_sessions", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def world(make_session):
    """An old finished session, a recent one, an old failed one, and a running one gone silent."""
    return {
        "old": make_session(days_ago=40),
        "old_failed": make_session(SessionStatus.FAILED, days_ago=31),
        "recent": make_session(days_ago=2),
        "stale": make_session(SessionStatus.RUNNING, days_ago=40),
    }


def test_dry_run_prints_what_would_go_and_changes_nothing(world):
    out = cleanup("--older-than", "30", "--dry-run")

    for name in ("old", "old_failed"):
        assert f"would delete session {world[name].pk} " in out
        assert f"would remove {run_folder(world[name])} (1000 B)" in out
    assert f"would mark session {world['stale'].pk} interrupted" in out
    assert f"session {world['recent'].pk} " not in out
    assert "Would delete 2 sessions and 2 run folders (2.0 KB)." in out
    assert TrainingSession.objects.count() == 4
    assert all(run_folder(s).is_dir() for s in world.values())
    assert TrainingSession.objects.get(pk=world["stale"].pk).status == SessionStatus.RUNNING


def test_real_run_deletes_old_finished_sessions_with_their_run_folders(world):
    folders = {name: run_folder(world[name]) for name in ("old", "old_failed")}
    shared = {name: shared_files(world[name]) for name in ("old", "old_failed")}

    out = cleanup("--older-than", "30")

    assert "Deleted 2 sessions and 2 run folders (2.0 KB)." in out
    assert set(TrainingSession.objects.values_list("pk", flat=True)) == {world["recent"].pk, world["stale"].pk}
    for name in ("old", "old_failed"):
        assert not folders[name].exists()
        # The skill's published policy and success states belong to the task: kept.
        assert all(f.is_file() for f in shared[name])
    assert run_folder(world["recent"]).is_dir()


def test_real_run_marks_stale_sessions_interrupted_and_keeps_them(world):
    cleanup("--older-than", "30")

    stale = TrainingSession.objects.get(pk=world["stale"].pk)
    assert stale.status == SessionStatus.INTERRUPTED
    # Interrupted just now, so not old enough to delete: its folder stays for a resume.
    assert run_folder(stale).is_dir()


def test_kept_sessions_are_pruned(make_session, settings):
    settings.GENHRL_PRUNE_AFTER_DAYS = 7
    settings.GENHRL_PRUNE_KEEP_LOG_LINES = 10
    kept = make_session(days_ago=20, lines=50)

    out = cleanup("--older-than", "30")

    assert "Pruned 40 log lines" in out
    assert LogLine.objects.filter(skill_run__session=kept).count() == 10


def test_no_prune_leaves_fine_rows(make_session, settings):
    settings.GENHRL_PRUNE_KEEP_LOG_LINES = 10
    make_session(days_ago=20, lines=50)

    cleanup("--older-than", "30", "--no-prune")

    assert LogLine.objects.count() == 50


def test_a_run_dir_outside_the_training_folder_is_never_deleted(make_session, tmp_path):
    session = make_session(days_ago=40)
    outside = tmp_path / "elsewhere" / "runs" / str(session.skill_runs.get().pk)
    outside.mkdir(parents=True)
    session.skill_runs.update(run_dir=str(outside))

    cleanup("--older-than", "30")

    assert outside.is_dir()
    assert not TrainingSession.objects.filter(pk=session.pk).exists()


def test_negative_days_are_refused(db):
    with pytest.raises(CommandError):
        cleanup("--older-than", "-1")
