"""The time limit ends a skill; it failed unless the success states are there."""

from __future__ import annotations

import pytest

from tests.factories import orchestrate
from training.models import SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]

TWO_SECONDS = 2 / 60


def test_time_limit_without_enough_states_fails(fetch_block, start):
    session = orchestrate(start(fetch_block, max_time=TWO_SECONDS), "--states-per-epoch", "0").run()

    assert session.status == SessionStatus.FAILED
    run = session.skill_runs.get(order=0)
    assert run.status == SkillStatus.FAILED
    assert run.stop_reason == "time_limit"
    assert "time limit of 0.0333333 min reached with 0 of 10 success states" in run.error
    assert 2 <= run.elapsed_seconds < 8


def test_time_limit_with_enough_states_completes(fetch_block, start):
    # Enough states early, but a minimum of frames the trainer never reaches: only the clock stops it.
    session = orchestrate(
        start(fetch_block, max_time=TWO_SECONDS, min_steps_primitive=10**9, min_steps_composite=10**9)
    ).run()

    assert session.status == SessionStatus.COMPLETED
    run = session.skill_runs.get(order=0)
    assert run.status == SkillStatus.COMPLETED
    assert run.stop_reason == "time_limit"
    assert run.success_states >= 10
