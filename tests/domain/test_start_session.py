"""services.start_session: one active session per task, enforced by the database; stale leases.

Claims and reaping: `test_leases.py`; a supervisor that lost its lease: `tests/engine/test_lease_loss.py`.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from training import leases, services
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession


@pytest.mark.django_db
def test_second_start_is_refused_while_one_is_active(fetch_block, patrol, start):
    first = start(fetch_block)

    with pytest.raises(services.SessionAlreadyActive) as exc:
        start(fetch_block)

    assert exc.value.session == first
    assert start(patrol).status == SessionStatus.QUEUED  # another task is independent


@pytest.mark.django_db
def test_the_database_refuses_a_second_active_row(fetch_block, start):
    from django.db import IntegrityError, transaction

    start(fetch_block)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingSession.objects.create(task=fetch_block, backend="embedded", status=SessionStatus.RUNNING)


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_give_exactly_one_winner(fetch_block):
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            for _ in range(200):
                try:
                    services.start_session(fetch_block, {}, actor="test")
                    outcomes.append("won")
                except services.SessionAlreadyActive:
                    outcomes.append("refused")
                except OperationalError as exc:
                    # The test database on SQLite is in-memory with a shared cache, whose table
                    # locks fail at once instead of waiting out the busy timeout that the real
                    # (file, WAL) database has; waiting here stands in for that timeout.
                    if "locked" not in str(exc):
                        raise
                    time.sleep(0.01)
                    continue
                break
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    assert TrainingSession.objects.filter(task=fetch_block).count() == 1


@pytest.mark.django_db
def test_stale_session_is_interrupted_and_the_next_start_resumes(fetch_block, start):
    session = start(fetch_block)
    session.transition_to(SessionStatus.RUNNING, actor="worker:gone", heartbeat_at=timezone.now())
    skills = list(fetch_block.skills.order_by("order"))
    done = SkillRun.objects.create(session=session, skill=skills[0], order=0)
    done.transition_to(SkillStatus.SKIPPED, actor="worker:gone")
    training = SkillRun.objects.create(session=session, skill=skills[1], order=1)
    training.transition_to(SkillStatus.TRAINING, actor="worker:gone")
    SkillRun.objects.create(session=session, skill=skills[2], order=2)
    TrainingSession.objects.filter(pk=session.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    fresh = start(fetch_block)

    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED
    assert "no heartbeat" in session.error
    assert dict(session.skill_runs.values_list("order", "status")) == {0: "skipped", 1: "failed", 2: "cancelled"}
    assert fresh.status == SessionStatus.QUEUED


@pytest.mark.django_db
def test_a_session_started_for_a_worker_is_never_claimed_by_another(fetch_block):
    session = services.start_session(fetch_block, {}, actor="cli:me", worker_id="cli-host:1:abc")

    assert session.status == SessionStatus.RUNNING and session.worker_id == "cli-host:1:abc"
    assert leases.claim_next_session("web-worker") is None
    assert list(session.events.values_list("to_state", "actor")) == [("queued", "cli:me"), ("running", "cli:me")]
