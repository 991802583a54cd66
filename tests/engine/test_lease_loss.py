"""Lost leases: a worker killed with SIGKILL leaves no trainer running, and its session is
interrupted with the reason; a supervisor whose session was taken over stops its trainer."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TINY, Workers, group_gone, orchestrate, wait_for
from training import leases, services
from training.models import SessionStatus, SkillStatus, TrainingSession

ENDLESS = {**TINY, "max_time": 5}
# A lease short enough that a dead worker is noticed in seconds, not the production 30-40 s.
SHORT_LEASE = ["--poll-interval", "0.1", "--heartbeat-interval", "0.5", "--reap-interval", "0.5",
               "--stale-after", "3"]


def training_pid(session: TrainingSession) -> int | None:
    """The trainer's group once it reported progress (its signal handlers are installed by then)."""
    run = session.skill_runs.filter(status=SkillStatus.TRAINING, pid__isnull=False, frames__gt=0).first()
    return run.pid if run else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.training
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


@pytest.mark.django_db
@pytest.mark.training
def test_a_supervisor_whose_session_was_taken_over_stops_its_trainer(fetch_block, start):
    pgids: list[int] = []

    def take_over(orch) -> None:
        training = orch.training()
        if training and not pgids and training[0].run.success_states > 0:
            pgids.append(training[0].pgid)
            TrainingSession.objects.filter(pk=orch.session.pk).update(
                heartbeat_at=timezone.now() - timedelta(minutes=5)
            )
            leases.reap_stale_sessions()

    session = orchestrate(start(fetch_block, min_success_states=100_000), on_update=take_over).run()

    assert session.status == SessionStatus.INTERRUPTED
    assert group_gone(pgids[0])
