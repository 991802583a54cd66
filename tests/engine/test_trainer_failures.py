"""A trainer that crashes, reports an error, or prints a traceback and exits 0 fails its skill."""

from __future__ import annotations

import pytest

from tests.factories import orchestrate
from training import paths
from training.engine.supervision import Timings
from training.models import SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_crashing_trainer_fails_the_skill_and_stops_the_session(patrol, start):
    session = orchestrate(start(patrol), "--crash-after", "2").run()

    assert session.status == SessionStatus.FAILED
    first = session.skill_runs.get(order=0)
    assert first.status == SkillStatus.FAILED
    assert first.exit_code == 1
    assert first.stop_reason == "crashed"
    assert "RuntimeError: fake trainer crashed on purpose" in first.error
    assert "Traceback (most recent call last)" in first.error
    assert session.error.startswith("reach_red_beacon: the trainer raised an exception")
    # The states written before the crash are kept for the retry.
    assert paths.count_success_states(paths.success_dir(first.skill)) == first.success_states > 0
    assert set(session.skill_runs.exclude(pk=first.pk).values_list("status", flat=True)) == {"cancelled"}


def test_traceback_with_exit_code_zero_fails(fetch_block, start):
    session = orchestrate(start(fetch_block), "--traceback-exit0").run()

    assert session.status == SessionStatus.FAILED
    run = session.skill_runs.get(order=0)
    assert run.exit_code == 0
    assert run.status == SkillStatus.FAILED
    assert "RuntimeError: Kit shutdown failed" in run.error
    # The states were there; the exception still fails it, and no policy is published.
    assert run.success_states >= 10
    assert not paths.has_policy(run.skill)


def test_gpu_out_of_memory_says_to_reduce_parallel_environments(fetch_block, start):
    session = orchestrate(start(fetch_block, num_envs=64), "--oom").run()

    run = session.skill_runs.get(order=0)
    assert run.status == SkillStatus.FAILED
    assert "reduce parallel environments (--num-envs, now 64)" in run.error
    assert "exited with code 1" in run.error


def test_trainer_hanging_after_done_is_stopped_and_completes(fetch_block, start):
    """Isaac Lab can hang in simulation_app.close() after training finished (§1.9)."""
    quick = Timings(sigint_grace=0.5, sigterm_grace=1.0, exit_grace_after_done=0.5, target_grace=1.0)
    session = orchestrate(start(fetch_block), "--hang-after-done", timings=quick).run()

    assert session.status == SessionStatus.COMPLETED
    run = session.skill_runs.get(order=0)
    assert run.stop_reason == "target_reached"
    assert run.exit_code != 0
