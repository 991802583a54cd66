"""Spec validation, the 2-D world, skill success/progress and the frozen policy loader's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.factories import DEMO_SKILLS, make_spec
from training.trainer.spec import SpecError, TrainerSpec

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
]


def test_demo_spec_loads_with_defaults(tmp_path: Path) -> None:
    spec = TrainerSpec.load(make_spec(tmp_path, "patrol_beacons", "reach_red_beacon", max_frames=None))
    assert (spec.backend, spec.is_primitive, spec.num_envs, spec.max_frames) == ("embedded", True, 64, None)
    assert spec.policy_out_dir == spec.run_dir / "policy"
    assert spec.skill_spec["type"] == "reach"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"backend": "gazebo"}, "spec.backend"),
        ({"num_envs": 0}, "spec.num_envs"),
        ({"num_envs": True}, "spec.num_envs"),
        ({"skill": ""}, "spec.skill"),
        ({"sub_skills": "x"}, "spec.sub_skills"),
        ({"is_primitive": False}, "needs at least one sub-skill"),
        ({"object_config": []}, "spec.object_config"),
        ({"max_frames": -5}, "spec.max_frames"),
    ],
)
def test_bad_specs_are_refused(change: dict, message: str) -> None:
    data = {
        "backend": "embedded",
        "task": "t",
        "robot": "r",
        "skill": "s",
        "is_primitive": True,
        "run_dir": "/r",
        "success_dir": "/s",
        "num_envs": 8,
    }
    data.update(change)
    with pytest.raises(SpecError, match=message):
        TrainerSpec.from_json(data)


def test_unreadable_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec"):
        TrainerSpec.load(tmp_path / "missing.json")


def _objects():
    from training.trainer.world import ObjectSet

    return ObjectSet.from_config(json.loads((DEMO_SKILLS / "patrol_beacons" / "object_config.json").read_text()))


def test_world_steps_only_masked_envs_and_stops_at_walls() -> None:
    from training.trainer.world import PointMassWorld

    world = PointMassWorld(3, _objects(), seed=0)
    world.reset(torch.ones(3, dtype=torch.bool))
    world.pos = torch.tensor([[0.0, 0.0], [1.99, 0.0], [0.5, 0.5]])
    world.vel = torch.zeros(3, 2)
    before = world.pos.clone()
    for _ in range(20):
        world.step(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), mask=torch.tensor([True, True, False]))
    assert world.pos[0, 0] > 0.5  # moved right
    assert world.pos[1, 0] == 2.0 and world.vel[1, 0] == 0.0  # held by the wall
    assert torch.equal(world.pos[2], before[2])  # not in the mask: untouched
    assert world.state().shape == (3, 4)


def test_start_states_are_sampled_on_reset() -> None:
    from training.trainer.world import PointMassWorld

    world = PointMassWorld(256, _objects(), seed=0)
    world.set_start_states(torch.tensor([[1.5, -1.5, 0.0, 0.0]]), prob=1.0)
    world.reset(torch.ones(256, dtype=torch.bool))
    assert torch.allclose(world.pos, torch.tensor([1.5, -1.5]).expand(256, 2))
    world.set_start_states(torch.tensor([[1.5, -1.5, 0.0, 0.0]]), prob=0.5)
    world.reset(torch.ones(256, dtype=torch.bool))
    share = (world.pos == torch.tensor([1.5, -1.5])).all(dim=1).float().mean()
    assert 0.3 < share < 0.7
    with pytest.raises(ValueError):
        world.set_start_states(torch.zeros(3, 2), prob=1.0)


def test_reach_success_needs_distance_and_low_speed() -> None:
    from training.trainer.skills import Reach
    from training.trainer.world import PointMassWorld

    reach = Reach(
        {"target": {"shape": "spheres", "index": 0}, "radius": 0.15, "max_speed": 0.5}, _objects(), "r"
    )
    world = PointMassWorld(3, _objects())
    world.pos = torch.tensor([[-1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]])
    world.vel = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert reach.success(world).tolist() == [True, False, False]
    assert reach.observe(world)[2].tolist() == [-1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="no object spheres\\[9\\]"):
        Reach({"target": {"shape": "spheres", "index": 9}}, _objects(), "r")


def test_sequence_progress_counts_sub_skills_in_order_only() -> None:
    from training.trainer.skills import SequenceTracker, build_node
    from training.trainer.world import PointMassWorld

    objects = _objects()
    red = build_node("red", True, {"type": "reach", "target": {"shape": "spheres", "index": 0}}, [], objects)
    blue = build_node(
        "blue", True, {"type": "reach", "target": {"shape": "spheres", "index": 1}}, [], objects
    )
    north = build_node("north", False, {"type": "sequence"}, [red, blue], objects)
    world = PointMassWorld(1, objects)
    tracker = SequenceTracker(north, 1, world.device)
    active = torch.ones(1, dtype=torch.bool)

    def visit(x: float, y: float) -> bool:
        world.pos = torch.tensor([[x, y]])
        world.step(torch.zeros(1, 2))
        return bool(tracker.update(world, active))

    assert not visit(1.0, 1.0)  # blue first does not count
    assert tracker.progress.item() == 0
    assert not visit(-1.0, 1.0)  # red
    assert tracker.progress.item() == 1
    assert visit(1.0, 1.0)  # then blue: done
    assert north.option_steps == 300 and north.obs_dim == 7


def test_frozen_loader_reports_missing_policy_files(tmp_path: Path) -> None:
    from training.trainer.frozen import FrozenPolicyError, build_controller
    from training.trainer.skills import build_node

    node = build_node(
        "red", True, {"type": "reach", "target": {"shape": "spheres", "index": 0}}, [], _objects()
    )
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "agent.yaml").write_text("params: {}\n")
    with pytest.raises(FrozenPolicyError, match="lacks policy.pth, skill.json"):
        build_controller(node, {"red": tmp_path / "policy"}, 4)
    with pytest.raises(FrozenPolicyError, match="has no trained policy"):
        build_controller(node, {"red": None}, 4)
