"""Claiming: every queued session is claimed by exactly one worker, with several worker processes."""

from __future__ import annotations

import pytest

from training import leases, services
from training.models import SessionEvent, SessionStatus, TrainingSession

from .conftest import TINY, Workers, one_skill_task, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def claims(session: TrainingSession) -> int:
    return session.events.filter(
        kind=SessionEvent.Kind.STATUS, from_state=SessionStatus.QUEUED, to_state=SessionStatus.RUNNING
    ).count()


@pytest.mark.training
def test_four_workers_claim_each_of_twenty_sessions_once(db: None, workers: Workers) -> None:
    sessions = [
        services.start_session(one_skill_task(f"tiny_{i:02d}"), TINY, actor="test") for i in range(20)
    ]
    for _ in range(4):
        workers.start("--slots", "1", "--poll-interval", "0.05", fake="--epoch-seconds 0.01")

    def all_ended() -> bool:
        return not TrainingSession.objects.filter(status__in=SessionStatus.active()).exists()

    assert wait_for(all_ended, 90, 0.2), [workers.log(i)[-2000:] for i in range(4)]
    ended = TrainingSession.objects.filter(pk__in=[s.pk for s in sessions])
    assert {s.status for s in ended} == {SessionStatus.COMPLETED}, [(s.pk, s.status, s.error) for s in ended]
    assert [claims(s) for s in ended] == [1] * 20
    # Every claim names its worker; the work was shared between processes.
    assert all(s.worker_id for s in ended)
    assert len({s.worker_id for s in ended}) >= 2


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


def test_claims_take_the_oldest_first_and_skip_cancelled(db: None) -> None:
    first, second, third = (
        services.start_session(one_skill_task(name), TINY, actor="test") for name in ("a_task", "b_task", "c_task")
    )
    services.request_cancel(first, actor="test")

    assert leases.claim_next_session("w1").pk == second.pk
    assert leases.claim_next_session("w2").pk == third.pk
    assert leases.claim_next_session("w3") is None
