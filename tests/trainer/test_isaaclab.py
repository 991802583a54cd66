"""The testable parts of the isaaclab backend: gym ids, paths, GenHRL's success buffers, start states."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from training.trainer.isaaclab import (
    GenhrlSuccessBuffers,
    IsaacLabProgress,
    gym_id,
    skill_dir,
    stage_start_states,
)
from training.trainer.spec import TrainerSpec
from training.trainer.success import count_states


@pytest.mark.parametrize(
    ("task", "skill", "primitive", "expected"),
    [
        # genhrl-reference.md §1.4 worked example: each `_` part capitalize()d
        (
            "doorway_and_goal_seed42",
            "walk_to_Small_Block",
            True,
            "Isaac-RobotFlatDoorwayAndGoalSeed42WalkToSmallBlock-v0",
        ),
        (
            "doorway_and_goal_seed42",
            "Navigate_Doorway",
            False,
            "Isaac-RobotCompositeDoorwayAndGoalSeed42NavigateDoorway-v0",
        ),
        (
            "obstacle_course_seeded42",
            "walk_to_lowWall",
            True,
            "Isaac-RobotFlatObstacleCourseSeeded42WalkToLowwall-v0",
        ),
        ("patrol_beacons", "patrol_beacons", False, "Isaac-RobotCompositePatrolBeaconsPatrolBeacons-v0"),
    ],
)
def test_gym_id_matches_genhrl(task: str, skill: str, primitive: bool, expected: str) -> None:
    assert gym_id(task, skill, primitive) == expected


def _spec(tmp_path: Path, **isaaclab: object) -> TrainerSpec:
    return TrainerSpec.from_json(
        {
            "backend": "isaaclab",
            "task": "doorway_and_goal_seed42",
            "robot": "G1",
            "skill": "walk_to_Small_Block",
            "is_primitive": True,
            "run_dir": str(tmp_path / "run"),
            "success_dir": str(tmp_path / "portal_ss"),
            "num_envs": 4096,
            "isaaclab": isaaclab,
        }
    )


def test_skill_dir_is_the_generated_skill_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ISAACLAB_PATH", raising=False)
    spec = _spec(tmp_path, root="/lab")
    assert skill_dir(spec) == Path(
        "/lab/source/isaaclab_tasks/isaaclab_tasks/manager_based/G1_generated/skills/"
        "doorway_and_goal_seed42/skills/walk_to_Small_Block"
    )
    monkeypatch.setenv("ISAACLAB_PATH", "/env/lab")
    assert str(skill_dir(_spec(tmp_path))).startswith("/env/lab/source/")
    assert skill_dir(_spec(tmp_path, skill_dir="/x/y")) == Path("/x/y")


@pytest.fixture
def generated_module(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A stand-in for GenHRL's generated SuccessTerminationCfg module, with its real globals."""
    folder = tmp_path / "skills" / "walk_to_Small_Block"
    folder.mkdir(parents=True)
    module = types.ModuleType("genhrl_fake_success_module")
    module.__file__ = str(folder / "SuccessTerminationCfg.py")
    module.success_states_dict = {}
    module.original_calls = 0

    def save_states_to_disk(skill_name: str) -> None:
        module.original_calls += 1

    def save_success_state(skill_name: str, state: dict) -> None:
        # the generated code: append, flush at 1000 through the module-global function, rebind
        module.success_states_dict.setdefault(skill_name, []).append(state)
        if len(module.success_states_dict[skill_name]) >= 1000:
            module.save_states_to_disk(skill_name)
            module.success_states_dict[skill_name] = []

    module.save_states_to_disk = save_states_to_disk
    module.save_success_state = save_success_state
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_genhrl_buffers_are_found_patched_and_flushed_with_unique_names(
    generated_module: types.ModuleType,
) -> None:
    buffers = GenhrlSuccessBuffers()
    assert buffers.discover() >= 1
    assert buffers.discover() >= 1  # idempotent
    assert generated_module in buffers.modules
    for i in range(1003):
        generated_module.save_success_state(
            "walk_to_Small_Block", {"rigid_object": {"o": {"root_pose": torch.full((7,), i)}}}
        )
    assert generated_module.original_calls == 0  # GenHRL's same-second file name is never used
    out = GenhrlSuccessBuffers.directory(generated_module)
    assert count_states(out) == 1000
    assert buffers.pending() == 3
    written = buffers.flush()
    assert len(written) == 1 and written[0].name.startswith("success_states_walk_to_Small_Block_")
    assert buffers.pending() == 0
    assert count_states(out) == 1003
    assert len({p.name for p in out.iterdir()}) == 2


def test_progress_mirrors_genhrl_files_into_the_portal_folder(
    tmp_path: Path, generated_module: types.ModuleType
) -> None:
    buffers = GenhrlSuccessBuffers()
    buffers.discover()
    spec = _spec(tmp_path)
    progress = IsaacLabProgress(spec, GenhrlSuccessBuffers.directory(generated_module), buffers)
    for _ in range(5):
        generated_module.save_success_state("walk_to_Small_Block", {"x": torch.zeros(1)})
    progress.count_episodes(torch.arange(8))
    assert progress.success_states() == 5  # buffered in GenHRL's list, not yet on disk
    assert progress.epoch_outcomes() == (8, 5)
    progress.flush(force=True)
    assert count_states(spec.success_dir) == 5 == progress.success_states()
    assert progress.epoch_outcomes() == (0, 0)


def test_start_states_are_staged_where_genhrl_loads_them(tmp_path: Path) -> None:
    source = tmp_path / "prev" / "success_states"
    source.mkdir(parents=True)
    torch.save([{"a": torch.zeros(2)}] * 4, source / "success_states_prev_1.pt")
    torch.save([{"a": torch.zeros(2)}] * 6, source / "success_states_prev_2.pt")
    skill = tmp_path / "skills" / "next"
    stale = skill / "current_task_start_states" / "start_state_000099.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    assert stage_start_states(source, skill) == 10
    staged = sorted(p.name for p in (skill / "current_task_start_states").iterdir())
    assert staged == ["start_state_000000.pt", "start_state_000001.pt"]
    assert stage_start_states(None, skill) == 0
    assert not (skill / "current_task_start_states").exists()
