"""The flat baseline's option and its budget (issue 13): `flat` and `baseline_of` are validated like
every option, and a baseline takes the hierarchical session's total frames and seed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import one_skill_task
from training import services
from training.config import ConfigError, TrainingConfig
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession


def _hierarchical(task: Any, frames: list[int], *, status: str = SessionStatus.COMPLETED, seed: int = 7) -> TrainingSession:
    session = TrainingSession.objects.create(
        task=task, config=TrainingConfig(seed=seed).to_json(), backend="embedded", status=status,
    )
    for order, (skill, count) in enumerate(zip(task.skills.order_by("order"), frames, strict=False)):
        SkillRun.objects.create(session=session, skill=skill, order=order, status=SkillStatus.COMPLETED, frames=count)
    return session


def test_flat_options_are_validated_like_the_others(fetch_block: Any) -> None:
    assert TrainingConfig.from_data({"flat": "yes", "baseline_of": "12"}, task=fetch_block).baseline_of == 12
    for data, field in (
        ({"baseline_of": 3}, "baseline_of"),  # only with --flat
        ({"flat": True, "baseline_of": "x"}, "baseline_of"),
        ({"flat": True, "baseline_of": 0}, "baseline_of"),
        ({"flat": "maybe"}, "flat"),
        ({"flat": True, "backend": "isaaclab"}, "flat"),
    ):
        with pytest.raises(ConfigError) as caught:
            TrainingConfig.from_data(data, task=fetch_block)
        assert field in caught.value.errors, data


def test_a_flat_baseline_takes_the_sessions_frames_and_seed(fetch_block: Any, patrol: Any) -> None:
    hierarchical = _hierarchical(fetch_block, [30_000, 20_000, 1_500], seed=7)
    flat = services.start_session(fetch_block, {"flat": True, "baseline_of": hierarchical.pk, "seed": 1})
    config = flat.training_config()
    assert (config.flat, config.baseline_of, config.seed, config.max_frames) == (True, hierarchical.pk, 7, 51_500)
    assert config.min_steps_composite == 51_500 and not config.skip_complete and not config.new_run
    assert flat.workspace.startswith(f"flat-{hierarchical.pk}-")  # never the task's own policies, nor another baseline's
    TrainingSession.objects.filter(pk=flat.pk).update(status=SessionStatus.CANCELLED)

    running = _hierarchical(patrol, [10], status=SessionStatus.CANCELLED)
    bad = {
        "there is no session": 999_999,
        "trained another task": running.pk,
        "is itself a flat baseline": flat.pk,
    }
    before = TrainingSession.objects.count()
    for message, baseline in bad.items():
        with pytest.raises(ConfigError, match=message):
            services.start_session(fetch_block, {"flat": True, "baseline_of": baseline})
    cancelled = _hierarchical(fetch_block, [10], status=SessionStatus.CANCELLED)
    with pytest.raises(ConfigError, match="only a completed session"):
        services.start_session(fetch_block, {"flat": True, "baseline_of": cancelled.pk})
    with pytest.raises(ConfigError, match="needs --baseline-of"):
        services.start_session(fetch_block, {"flat": True})
    partial = _hierarchical(fetch_block, [0, 20_000, 1_500])  # its first skill was trained before it
    SkillRun.objects.filter(session=partial, order=0).update(status=SkillStatus.SKIPPED)
    with pytest.raises(ConfigError, match="skipped skills trained before it"):
        services.start_session(fetch_block, {"flat": True, "baseline_of": partial.pk})
    single = one_skill_task("single")
    with pytest.raises(ConfigError, match="flat already"):
        services.start_session(single, {"flat": True, "max_frames": 1000})
    assert TrainingSession.objects.count() == before + 2  # bad input starts nothing (+2: the rows made above)
