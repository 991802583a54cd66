"""Claiming: every queued session is claimed by exactly one worker, with several worker processes.

How one claim works (`training.leases.claim_next_session`): `tests/domain/test_leases.py`.
"""

from __future__ import annotations

import pytest

from tests.factories import TINY, Workers, one_skill_task, wait_for
from training import services
from training.models import SessionEvent, SessionStatus, TrainingSession

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
