"""The embedded worker: N slots fed from the queue, heartbeats, a clean stop."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import FAST, fake_builder, one_skill_task, wait_for
from training.engine.worker import Worker
from training.models import SessionStatus, TrainingSession
from training.snapshots import progress_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def make_worker(slots: int, *trainer_args: str) -> Worker:
    return Worker(
        slots=slots, worker_id="test-worker", poll_interval=0.05,
        orchestrator_options={"command_builder": fake_builder(*trainer_args), "timings": FAST},
    )


def status(session: TrainingSession) -> str:
    session.refresh_from_db()
    return session.status


def test_slots_bound_how_many_sessions_train_and_the_rest_wait_their_turn(fetch_block, patrol, queue):
    first, second = queue(fetch_block), queue(patrol)
    third = queue(one_skill_task("third_task"))
    worker = make_worker(2, "--epoch-seconds", "0.1")
    try:
        assert worker.step() == [first.pk, second.pk]
        assert worker.step() == []
        assert status(third) == SessionStatus.QUEUED
        assert progress_snapshot(third.pk)["queue_position"] == 1

        assert wait_for(lambda: not all(slot.thread.is_alive() for slot in worker.running.values()), 60)
        assert worker.step() == [third.pk]
        assert wait_for(lambda: all(status(s) in SessionStatus.terminal() for s in (first, second, third)), 60)
    finally:
        worker.stop(grace=5)
    assert {status(s) for s in (first, second, third)} == {SessionStatus.COMPLETED}
    assert {s.worker_id for s in TrainingSession.objects.all()} == {"test-worker"}


def test_heartbeats_are_renewed_without_touching_progress(fetch_block, queue):
    session = queue(fetch_block)
    worker = make_worker(1, "--states-per-epoch", "0")  # never reaches its target
    try:
        worker.step()
        assert wait_for(lambda: status(session) == SessionStatus.RUNNING)
        old = timezone.now() - timedelta(minutes=5)
        TrainingSession.objects.filter(pk=session.pk).update(heartbeat_at=old, updated_at=old)

        assert worker.renew_heartbeats() == 1

        session.refresh_from_db()
        assert session.heartbeat_at > old
    finally:
        worker.stop(grace=5)


def test_stop_interrupts_running_sessions_gracefully_and_leaves_no_trainer(fetch_block, queue):
    session = queue(fetch_block)
    worker = make_worker(1, "--states-per-epoch", "0")
    worker.step()
    assert wait_for(lambda: TrainingSession.objects.get(pk=session.pk).pid is not None)
    pid = TrainingSession.objects.get(pk=session.pk).pid

    worker.stop(grace=10)

    assert status(session) == SessionStatus.INTERRUPTED  # resumable; nobody cancelled it
    assert not worker.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_the_loop_claims_a_newly_queued_session_when_notified(fetch_block, queue):
    worker = make_worker(1)
    worker.poll_interval = 30.0  # a poll would be too late: only notify() can start it in time
    worker.start()
    try:
        assert wait_for(lambda: worker._last_reap > 0, 5)  # the first pass ran
        session = queue(fetch_block)
        worker.notify()

        assert wait_for(lambda: status(session) != SessionStatus.QUEUED, 5)
        assert wait_for(lambda: status(session) == SessionStatus.COMPLETED, 60)
    finally:
        worker.stop(grace=5)
    assert not worker.is_running


def test_sessions_of_a_dead_worker_are_reaped(fetch_block, queue):
    session = queue(fetch_block)
    stale = timezone.now() - timedelta(minutes=10)
    session.transition_to(SessionStatus.RUNNING, actor="test", worker_id="dead-host:1", heartbeat_at=stale)

    make_worker(1).step()

    assert status(session) == SessionStatus.INTERRUPTED
