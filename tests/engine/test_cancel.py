"""Cancel: a database request, honoured with SIGINT -> SIGTERM -> SIGKILL to the trainer's group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import group_gone, orchestrate
from training import paths, services
from training.engine.supervision import Timings
from training.models import SessionEvent, SessionStatus, SkillStatus, Stage

pytestmark = [pytest.mark.django_db, pytest.mark.training]


class CancelWhen:
    """An on_update hook that cancels through the database, as the web will, once a condition holds."""

    def __init__(self, min_states: int = 1) -> None:
        self.min_states = min_states
        self.pgid: int | None = None
        self.run_dir: Path | None = None

    def __call__(self, orch) -> None:
        training = orch.training()
        if not training or self.pgid is not None:
            return
        if training[0].run.success_states >= self.min_states:
            self.pgid = training[0].pgid
            self.run_dir = Path(training[0].run.run_dir)
            services.request_cancel(orch.session, actor="user:someone")


def test_cancel_through_the_database_ends_cancelled_with_states_kept(patrol, start):
    hook = CancelWhen(min_states=5)
    session = orchestrate(
        start(patrol, min_success_states=10_000), "--spawn-child", on_update=hook
    ).run()

    assert session.status == SessionStatus.CANCELLED
    assert session.stage == Stage.COMPLETE
    first = session.skill_runs.get(order=0)
    assert first.status == SkillStatus.CANCELLED
    assert first.stop_reason == "cancelled"
    # The states flushed before the stop are on disk and recorded.
    on_disk = paths.count_success_states(paths.success_dir(first.skill))
    assert on_disk >= 5
    assert first.success_states == on_disk
    assert set(session.skill_runs.exclude(pk=first.pk).values_list("status", flat=True)) == {"cancelled"}
    # No process of the session remains: not the trainer, not the child it left in its group.
    assert group_gone(hook.pgid)
    child = int((hook.run_dir / "child.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    kinds = list(session.events.values_list("kind", "to_state", "actor"))
    assert ("cancel_requested", "", "user:someone") in kinds
    assert ("status", "cancelling", "user:someone") in kinds
    assert ("status", "cancelled", "test") in kinds


def test_a_trainer_ignoring_signals_is_killed(fetch_block, start):
    hook = CancelWhen()
    timings = Timings(sigint_grace=0.5, sigterm_grace=0.5, exit_grace_after_done=1, target_grace=1)
    session = orchestrate(
        start(fetch_block, min_success_states=10_000), "--ignore-signals", "--spawn-child",
        timings=timings, on_update=hook,
    ).run()

    assert session.status == SessionStatus.CANCELLED
    run = session.skill_runs.get(order=0)
    assert run.exit_code == -9
    assert group_gone(hook.pgid)
    notes = list(run.log_lines.filter(stream="system").values_list("text", flat=True))
    assert any("SIGINT" in n for n in notes) and any("SIGKILL" in n for n in notes)


def test_local_cancel_is_recorded_like_a_remote_one(fetch_block, start):
    """The CLI's Ctrl-C calls Orchestrator.cancel() from a signal handler; the loop records it."""

    def ctrl_c(orch) -> None:
        if orch.training() and orch.training()[0].run.success_states > 0:
            orch.cancel()

    session = orchestrate(start(fetch_block, min_success_states=10_000), on_update=ctrl_c).run()

    assert session.status == SessionStatus.CANCELLED
    assert session.cancel_requested_at is not None
    assert session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED, actor="test").exists()


def test_cancel_while_queued_starts_nothing(fetch_block, start):
    session = start(fetch_block)
    services.request_cancel(session, actor="user:someone")
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED

    result = orchestrate(session).run()

    assert result.status == SessionStatus.CANCELLED
    assert not result.skill_runs.exists()
    # The task is free again.
    assert start(fetch_block).status == SessionStatus.QUEUED


def test_cancel_twice_and_after_the_end_is_harmless(fetch_block, start):
    session = orchestrate(start(fetch_block)).run()
    assert session.status == SessionStatus.COMPLETED

    again = services.request_cancel(session, actor="user:late")

    assert again.status == SessionStatus.COMPLETED
    assert not session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED).exists()
