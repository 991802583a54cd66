"""A worker killed with SIGKILL: no trainer is left running, and its session is interrupted with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from training import leases, services
from training.leases import worker_identity
from training.models import SessionStatus, SkillStatus, TrainingSession

from .conftest import SHORT_LEASE, TINY, Workers, group_gone, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

ENDLESS = {**TINY, "max_time": 5}


def training_pid(session: TrainingSession) -> int | None:
    """The trainer's group once it reported progress (its signal handlers are installed by then)."""
    run = session.skill_runs.filter(status=SkillStatus.TRAINING, pid__isnull=False, frames__gt=0).first()
    return run.pid if run else None


@pytest.mark.parametrize(
    "trainer",
    [
        # Dies with its parent (PR_SET_PDEATHSIG, SIGTERM).
        "--states-per-epoch 0 --epoch-seconds 0.05",
        # Ignores that signal: the next worker's reaper ends its verified process group.
        "--states-per-epoch 0 --epoch-seconds 0.05 --ignore-signals",
    ],
    ids=["dies-with-parent", "ended-by-next-worker"],
)
def test_sigkill_of_a_worker_leaves_no_trainer_and_interrupts_its_session(
    fetch_block, workers: Workers, trainer: str
) -> None:
    session = services.start_session(fetch_block, ENDLESS, actor="test")
    doomed = workers.start("--slots", "1", *SHORT_LEASE, fake=trainer)
    assert wait_for(lambda: training_pid(session) is not None, 30), workers.log()
    pgid = training_pid(session)
    assert pgid is not None and not group_gone(pgid)

    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    workers.start("--slots", "1", *SHORT_LEASE, fake="")  # the next worker, on this host

    assert wait_for(lambda: group_gone(pgid), 20), f"trainer group {pgid} outlived its worker"

    def interrupted() -> bool:
        session.refresh_from_db()
        return session.status == SessionStatus.INTERRUPTED

    assert wait_for(interrupted, 60), workers.log()
    assert time.monotonic() - killed_at < 60
    assert "lease lost" in session.error and session.worker_id in session.error
    assert session.events.filter(to_state=SessionStatus.INTERRUPTED, message__contains="lease lost").exists()
    run = session.skill_runs.get(order=0)
    assert (run.status, run.stop_reason) == (SkillStatus.FAILED, "interrupted")
    assert session.skill_runs.exclude(order=0).filter(status=SkillStatus.CANCELLED).count() == 2


def test_the_reaper_never_signals_a_process_group_that_is_not_the_runs_trainer(fetch_block, tmp_path) -> None:
    session = services.start_session(fetch_block, TINY, actor="test", worker_id=worker_identity())
    # Someone else's process, in its own group, whose pid the dead run happens to have recorded.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        from training.models import SkillRun

        run = SkillRun.objects.create(
            session=session, skill=fetch_block.skills.order_by("order").first(), order=0,
            status=SkillStatus.TRAINING, pid=stranger.pid, run_dir=str(tmp_path / "runs" / "1"),
            started_at=timezone.now(),
        )
        old = timezone.now() - timedelta(minutes=5)
        TrainingSession.objects.filter(pk=session.pk).update(heartbeat_at=old)

        reaped = leases.reap_stale_sessions()

        assert [s.pk for s in reaped] == [session.pk]
        assert stranger.poll() is None, "the reaper signalled a process that was not its trainer"
        run.refresh_from_db()
        assert run.status == SkillStatus.FAILED
    finally:
        os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait(timeout=5)


def test_a_fresh_lease_is_not_reaped(fetch_block) -> None:
    session = services.start_session(fetch_block, TINY, actor="test", worker_id=worker_identity())
    assert leases.reap_stale_sessions() == []
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING
