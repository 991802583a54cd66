"""training.leases: claims (one worker per queued session, its queue, oldest first) and the reaping
of stale leases, which never signals a process group that is not the run's trainer.

Claims by several worker processes at once: `tests/engine/test_worker_claims.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TINY, one_skill_task
from training import leases, services
from training.leases import worker_identity
from training.models import SessionEvent, SessionStatus, SkillStatus, TrainingSession


def claims(session: TrainingSession) -> int:
    return session.events.filter(
        kind=SessionEvent.Kind.STATUS, from_state=SessionStatus.QUEUED, to_state=SessionStatus.RUNNING
    ).count()


@pytest.mark.django_db(transaction=True)
def test_a_worker_claims_only_its_queue(db: None, fetch_block) -> None:
    gpu = services.start_session(fetch_block, TINY, actor="test", queue="gpu")
    assert gpu.queue == "gpu"

    assert leases.claim_next_session("w-default") is None
    claimed = leases.claim_next_session("w-gpu", queue="gpu")

    assert claimed is not None and claimed.pk == gpu.pk
    claimed.refresh_from_db()
    assert (claimed.status, claimed.worker_id) == (SessionStatus.RUNNING, "w-gpu")
    assert leases.claim_next_session("w-gpu2", queue="gpu") is None
    assert claims(claimed) == 1


@pytest.mark.django_db(transaction=True)
def test_claims_take_the_oldest_first_and_skip_cancelled(db: None) -> None:
    first, second, third = (
        services.start_session(one_skill_task(name), TINY, actor="test") for name in ("a_task", "b_task", "c_task")
    )
    services.request_cancel(first, actor="test")

    assert leases.claim_next_session("w1").pk == second.pk
    assert leases.claim_next_session("w2").pk == third.pk
    assert leases.claim_next_session("w3") is None


@pytest.mark.django_db
def test_claim_next_session_takes_the_oldest_queued(fetch_block, patrol, start):
    first = start(fetch_block)
    start(patrol)

    claimed = leases.claim_next_session("w1")

    assert claimed == first
    assert claimed.status == SessionStatus.RUNNING and claimed.worker_id == "w1"
    assert leases.claim_next_session("w2").task == patrol
    assert leases.claim_next_session("w3") is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.training
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


@pytest.mark.django_db(transaction=True)
@pytest.mark.training
def test_a_fresh_lease_is_not_reaped(fetch_block) -> None:
    session = services.start_session(fetch_block, TINY, actor="test", worker_id=worker_identity())
    assert leases.reap_stale_sessions() == []
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING


@pytest.mark.django_db(transaction=True)
def test_after_a_database_outage_a_worker_waits_a_lease_before_reaping(fetch_block, monkeypatch) -> None:
    """Every heartbeat went stale during the outage: reaping at once would interrupt live sessions."""
    from django.db import OperationalError

    from training.engine.worker import Worker

    session = services.start_session(fetch_block, TINY, actor="test", worker_id="elsewhere:1:abc")
    TrainingSession.objects.filter(pk=session.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=20))
    worker = Worker(1, stale_after=timedelta(seconds=10), reap_interval=0.0, heartbeat_interval=0.0)
    real_renew = leases.renew

    def outage(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(leases, "renew", outage)  # the first database step of a pass
    worker.safe_step()  # the database is away: this pass fails
    monkeypatch.setattr(leases, "renew", real_renew)
    worker.safe_step()  # back: the stale-looking session is left alone for a lease's time
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING
    monkeypatch.setattr(worker, "_database_back_at", worker._database_back_at - 11)
    worker.safe_step()
    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED
