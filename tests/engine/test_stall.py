"""A trainer that stops reporting is noticed: viewers are warned, then it is stopped as stalled.

The trainer is frozen with SIGSTOP (as a hung process, a debugger or ^Z would leave it): its
heartbeat would stay fresh, because the supervisor writes it, so only the stall watchdog sees it.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.factories import FAST, group_gone, orchestrate
from training import paths, queries, services
from training.engine.supervision import Timings
from training.models import SessionEvent, SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


class FreezeOnce:
    """An on_update hook that SIGSTOPs the first trainer once it reported some success states."""

    def __init__(self, then: object = None) -> None:
        self.pgid: int | None = None
        self.then = then

    def __call__(self, orch) -> None:
        training = orch.training()
        if self.pgid is None and training and training[0].run.success_states > 0:
            self.pgid = training[0].pgid
            os.killpg(self.pgid, signal.SIGSTOP)
            if callable(self.then):
                self.then(orch)


def test_a_trainer_that_stops_reporting_is_warned_about_then_failed_as_stalled(fetch_block, start):
    freeze = FreezeOnce()
    timings = Timings(**{**FAST.__dict__, "stall_seconds": 2.0})
    session = orchestrate(start(fetch_block, min_success_states=10_000), timings=timings, on_update=freeze).run()

    assert session.status == SessionStatus.FAILED
    run = session.skill_runs.get(order=0)
    assert (run.status, run.stop_reason) == (SkillStatus.FAILED, "stalled")
    assert run.error.startswith("no progress for 2 s")
    # The viewers were told before it was stopped.
    warning = session.events.get(kind=SessionEvent.Kind.WARNING, skill_run=run)
    assert "has sent no progress" in warning.message and warning.time < run.finished_at
    # SIGCONT went with the SIGINT: the frozen trainer stopped gracefully (exit 0), not by SIGKILL.
    assert run.exit_code == 0
    assert group_gone(freeze.pgid)
    assert paths.count_success_states(paths.success_dir(run.skill)) == run.success_states > 0
    assert any("stopped reporting progress" in hint for hint in queries.failure_hints(session))


def test_a_cancel_reaches_a_stopped_trainer_at_once(fetch_block, start):
    """Without SIGCONT the stopped trainer would sit on its SIGINT until SIGKILL (exit -9)."""
    freeze = FreezeOnce(then=lambda orch: services.request_cancel(orch.session, actor="user:someone"))
    session = orchestrate(start(fetch_block, min_success_states=10_000), on_update=freeze).run()

    assert session.status == SessionStatus.CANCELLED
    run = session.skill_runs.get(order=0)
    assert (run.status, run.stop_reason, run.exit_code) == (SkillStatus.CANCELLED, "cancelled", 0)
    assert group_gone(freeze.pgid)


def test_the_snapshot_warns_while_a_training_skill_is_quiet(fetch_block, researcher, settings):
    from tests.factories import run_session
    from training.snapshots import progress_snapshot

    settings.GENHRL_STALL_SECONDS = 60
    session = run_session(fetch_block, researcher)  # its first skill started 42 s ago, no record since
    warnings = progress_snapshot(session.pk)["warnings"]
    assert [w["kind"] for w in warnings] == ["quiet"]
    assert "go_to_block has sent no progress for 4" in warnings[0]["message"]
    assert "stopped as stalled after 60 s" in warnings[0]["message"]
    settings.GENHRL_STALL_SECONDS = 0  # the watchdog is off: nothing to warn about
    assert progress_snapshot(session.pk)["warnings"] == []
