"""SIGTERM to a worker: stop claiming, stop the trainers gracefully, leave the sessions resumable."""

from __future__ import annotations

import signal
import time

import pytest

from tests.factories import TINY, Workers, group_gone, one_skill_task, wait_for
from training import services
from training.models import SessionEvent, SessionStatus, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

ENDLESS = {**TINY, "max_time": 5}


def training_pid(session: TrainingSession) -> int | None:
    """The trainer's group once it reported progress (its signal handlers are installed by then)."""
    run = session.skill_runs.filter(status=SkillStatus.TRAINING, pid__isnull=False, frames__gt=0).first()
    return run.pid if run else None


def test_sigterm_stops_gracefully_and_marks_the_session_resumable(fetch_block, workers: Workers) -> None:
    session = services.start_session(fetch_block, ENDLESS, actor="test")
    worker = workers.start("--slots", "1", "--poll-interval", "0.1", fake="--states-per-epoch 1 --epoch-seconds 0.05")
    assert wait_for(lambda: training_pid(session) is not None, 30), workers.log()
    pgid = training_pid(session)
    assert pgid is not None
    later = services.start_session(one_skill_task("waiting_task"), TINY, actor="test")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, workers.log()

    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED, (session.status, session.error, workers.log())
    assert "received SIGTERM" in session.error and session.status in SessionStatus.resumable()
    run = session.skill_runs.get(order=0)
    # Graceful: the trainer got SIGINT, finished its epoch and reported `done` with its states.
    assert (run.status, run.stop_reason, run.exit_code) == (SkillStatus.CANCELLED, "cancelled", 0)
    assert run.success_states > 0
    assert group_gone(pgid)
    assert session.events.filter(kind=SessionEvent.Kind.NOTE, message__contains="received SIGTERM").exists()
    assert not session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED).exists()
    # It stopped claiming: the session queued meanwhile is still waiting.
    later.refresh_from_db()
    assert later.status == SessionStatus.QUEUED
    assert "stopped gracefully" in workers.log()

    resumed = services.resume_session(session, actor="test")
    assert (resumed.status, resumed.resumed_from_id) == (SessionStatus.QUEUED, session.pk)


def test_a_second_sigterm_stops_at_once(fetch_block, workers: Workers) -> None:
    session = services.start_session(fetch_block, ENDLESS, actor="test")
    # A trainer that ignores SIGINT and SIGTERM: a graceful stop would wait out 40 s of grace.
    worker = workers.start(
        "--slots", "1", "--poll-interval", "0.1", fake="--states-per-epoch 0 --epoch-seconds 0.05 --ignore-signals"
    )
    assert wait_for(lambda: training_pid(session) is not None, 30), workers.log()
    pgid = training_pid(session)
    assert pgid is not None

    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.poll() is None  # the first one waits for the trainer
    sent = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, workers.log()

    assert time.monotonic() - sent < 5
    assert wait_for(lambda: group_gone(pgid), 5)
    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED, (session.status, session.error, workers.log())
    assert "stopped at once" in workers.log()

