"""The flat baseline's option and its budget (issue 13): `flat` and `baseline_of` are validated like
every option, and a baseline takes the hierarchical session's total frames and seed."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.models import Task
from tests.factories import one_skill_task
from training import queries, services, snapshots
from training.config import ConfigError, TrainingConfig
from training.management.commands.status import build_status_rows
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


def test_an_ended_flat_baseline_is_never_the_tasks_state_nor_what_resume_resumes(fetch_block: Any) -> None:
    """Card badge, task panel, `manage.py status`, the status API and `--resume` follow the task's
    hierarchical sessions; a flat baseline counts only while it holds the task (it is active)."""
    base = _hierarchical(fetch_block, [30_000, 20_000, 1_500])
    flat = services.start_session(fetch_block, {"flat": True, "baseline_of": base.pk})
    root = fetch_block.skills.get(name=fetch_block.root_skill)

    def state() -> tuple[Any, ...]:
        card = Task.objects.annotate(**queries.latest_session_annotations()).get(pk=fetch_block.pk)
        page = queries.with_latest_session(Task.objects.get(pk=fetch_block.pk))
        panel = queries.task_training_context(fetch_block)
        api = snapshots.task_status(fetch_block)["last_session"]["session_id"]
        shown = panel["active_session"] or panel["last_session"]
        return card.training_session_id, page.training_session_id, shown.pk, api

    assert state() == (flat.pk, flat.pk, flat.pk, flat.pk)  # it runs: the task is busy with it
    SkillRun.objects.create(
        session=flat, skill=root, order=0, status=SkillStatus.FAILED, error="the trainer was killed by SIGKILL",
    )
    TrainingSession.objects.filter(pk=flat.pk).update(status=SessionStatus.FAILED)

    assert state() == (base.pk, base.pk, base.pk, base.pk)
    assert queries.training_states([fetch_block.pk]) == {fetch_block.pk: f"{base.pk}:completed"}
    row = next(r for r in build_status_rows(fetch_block) if r["name"] == root.name)
    assert (row["last_result"], row["last_error"]) == ("completed", "")  # the hierarchical run, not the flat one
    with pytest.raises(services.NotResumable, match=f"latest session \\({base.pk}\\) .* is completed"):
        services.latest_resumable_session(fetch_block)
    # Picked explicitly (its own page's "Resume"), the flat baseline resumes as one.
    resumed = services.resume_session(flat, actor="test")
    assert resumed.config["flat"] and resumed.workspace == flat.workspace
