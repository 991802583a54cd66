"""The flat baseline's env (issue 13): one policy on primitive actions over a whole composite, with
the root's reward and success. A scripted controller that drives to each primitive's target in turn
must complete the task and collect exactly the root's reward."""

from __future__ import annotations

import json

import torch

from tests.factories import DEMO_SKILLS, skill_spec
from training.trainer.envs import FlatEnv
from training.trainer.skills import build_node
from training.trainer.world import ObjectSet, PointMassWorld


def _fetch_block() -> tuple[FlatEnv, list]:
    objects = ObjectSet.from_config(json.loads((DEMO_SKILLS / "fetch_block" / "object_config.json").read_text()))
    leaves = [build_node(name, True, skill_spec("fetch_block", name), [], objects) for name in ("go_to_block", "go_to_goal")]
    root = build_node("fetch_block", False, skill_spec("fetch_block", "fetch_block"), leaves, objects)
    return FlatEnv(PointMassWorld(8, objects, seed=1), root), leaves


def test_a_scripted_policy_completes_the_flat_task() -> None:
    env, leaves = _fetch_block()
    info = env.get_env_info()
    assert info["action_space"].shape == (2,) and info["observation_space"].shape == (4 + 2 + 1,)
    obs = env.reset()
    targets = torch.stack([leaf.reach.target for leaf in leaves])
    total = torch.zeros(8)
    completed = torch.zeros(8, dtype=torch.bool)
    for _ in range(env.episode_steps):
        progress = obs[:, 4:].argmax(dim=1).clamp(max=len(leaves) - 1)  # one-hot of primitives done
        pos, vel = obs[:, :2], obs[:, 2:4]
        action = (4.0 * (targets[progress] - pos) - 2.0 * vel).clamp(-1.0, 1.0)
        obs, reward, done, extra = env.step(action)
        total += torch.where(completed, torch.zeros_like(reward), reward)
        completed |= done.bool() & ~extra["time_outs"]
        if bool(completed.all()):
            break
    assert bool(completed.all())
    # The root's reward: +1 per sub-skill in order, +1 on completing, less a small effort cost.
    assert bool((total > 2.0).all()) and bool((total <= 3.0).all())
    assert env.stats.take() == (8, 8)
