"""rl-games vectorised envs over the embedded world, registered the way Isaac Lab registers its own.

Isaac Lab's rl-games train.py does `vecenv.register("IsaacRlgWrapper", ...)` and
`env_configurations.register("rlgpu", {"vecenv_type": ..., "env_creator": ...})`; `register_env`
does the same with our names, so the agent config only names `env_name` and rl-games builds the
env through its own registry.

- `PrimitiveEnv`: continuous control of the point mass towards one skill's success.
- `CompositeEnv`: a discrete high-level choice of which frozen sub-skill acts next. One decision
  runs the chosen sub-skill as an option until it succeeds, its option step limit is hit, or the
  composite itself succeeds; all envs step in lockstep (finished envs stand still) so one
  decision is one batched rl-games step.

Both envs collect success states (world state rows at the moment the skill succeeds) into the
`SuccessStore`, count episodes and successes for the progress records, and feed the video
recorder every low-level world step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from rl_games.common import env_configurations, vecenv
from rl_games.common.ivecenv import IVecEnv

from .frozen import Controller
from .skills import SequenceTracker, SkillNode, composite_obs, composite_obs_dim
from .success import SuccessStore
from .world import ACTION_DIM, PointMassWorld

VECENV_TYPE = "GenhrlEmbedded"

# Primitive reward: progress towards the target, a bonus on success, a small effort cost.
PROGRESS_GAIN = 10.0
SUCCESS_BONUS = 5.0
EFFORT_COST = 0.01
# Composite reward per decision: +1 per sub-skill completed in order, +1 on completing the
# whole sequence, and a cost per decision so that wasted options are worse than none.
DECISION_COST = 0.1


class FrameSink:
    """Receives the world after every low-level step (the video recorder)."""

    def capture(self, world: PointMassWorld, highlight: torch.Tensor | None = None) -> None:
        pass


class EpisodeStats:
    """Episodes finished and successes, read once per epoch for the records."""

    def __init__(self) -> None:
        self._episodes = torch.zeros((), dtype=torch.long)
        self._successes = torch.zeros((), dtype=torch.long)

    def add(self, done: torch.Tensor, success: torch.Tensor) -> None:
        # Tensor sums, not ints: no Python sync per step.
        self._episodes += done.sum()
        self._successes += success.sum()

    def take(self) -> tuple[int, int]:
        """(episodes, successes) since the previous call."""
        episodes, successes = int(self._episodes), int(self._successes)
        self._episodes.zero_()
        self._successes.zero_()
        return episodes, successes


class _EmbeddedEnv(IVecEnv):
    def __init__(
        self,
        world: PointMassWorld,
        node: SkillNode,
        store: SuccessStore | None,
        frames: FrameSink | None,
    ) -> None:
        self.world = world
        self.node = node
        self.num_envs = world.num_envs
        self.store = store
        self.frames = frames or FrameSink()
        self.stats = EpisodeStats()
        self.all_envs = torch.ones(self.num_envs, dtype=torch.bool)

    def _save_successes(self, success: torch.Tensor) -> None:
        if self.store is not None and bool(success.any()):
            self.store.add(self.world.state()[success])

    def get_number_of_agents(self) -> int:
        return 1

    def has_action_masks(self) -> bool:
        return False

    def seed(self, seed: int) -> None:
        self.world.generator.manual_seed(seed)


class PrimitiveEnv(_EmbeddedEnv):
    def __init__(
        self,
        world: PointMassWorld,
        node: SkillNode,
        store: SuccessStore | None = None,
        frames: FrameSink | None = None,
    ) -> None:
        super().__init__(world, node, store, frames)
        assert node.reach is not None
        self.reach = node.reach
        self.episode_steps = self.reach.episode_steps
        self.t = torch.zeros(self.num_envs, dtype=torch.long)

    def get_env_info(self) -> dict[str, Any]:
        return {
            "observation_space": gym.spaces.Box(-np.inf, np.inf, (self.node.obs_dim,), np.float32),
            "action_space": gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32),
            "agents": 1,
            "value_size": 1,
        }

    def reset(self) -> torch.Tensor:
        self.world.reset(self.all_envs)
        self.t.zero_()
        return self.reach.observe(self.world)

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        world = self.world
        before = self.reach.distance(world)
        world.step(actions)
        self.frames.capture(world, self.reach.target)
        after = self.reach.distance(world)
        success = self.reach.success(world)
        self.t += 1
        timeout = (self.t >= self.episode_steps) & ~success
        done = success | timeout
        reward = (
            PROGRESS_GAIN * (before - after)
            + SUCCESS_BONUS * success.float()
            - EFFORT_COST * actions.square().sum(dim=1)
        )
        self._save_successes(success)
        self.stats.add(done, success)
        if bool(done.any()):
            world.reset(done)
            self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        return self.reach.observe(world), reward, done.to(torch.uint8), {"time_outs": timeout}


class CompositeEnv(_EmbeddedEnv):
    def __init__(
        self,
        world: PointMassWorld,
        node: SkillNode,
        children: list[Controller],
        store: SuccessStore | None = None,
        frames: FrameSink | None = None,
    ) -> None:
        super().__init__(world, node, store, frames)
        if len(children) != len(node.children):
            raise ValueError(f"{node.name}: {len(node.children)} sub-skills but {len(children)} controllers")
        self.children = children
        self.k = len(children)
        self.tracker = SequenceTracker(node, self.num_envs, world.device)
        self.decisions = torch.zeros(self.num_envs, dtype=torch.long)
        self.max_decisions = node.max_decisions
        self.option_limits = torch.tensor([child.option_steps for child in node.children])
        self.low_level_steps = 0

    def get_env_info(self) -> dict[str, Any]:
        return {
            "observation_space": gym.spaces.Box(-np.inf, np.inf, (self.node.obs_dim,), np.float32),
            "action_space": gym.spaces.Discrete(self.k),
            "agents": 1,
            "value_size": 1,
        }

    def _obs(self) -> torch.Tensor:
        return composite_obs(self.world, self.tracker.progress, self.k)

    def reset(self) -> torch.Tensor:
        self.world.reset(self.all_envs)
        self.tracker.reset(self.all_envs)
        self.decisions.zero_()
        return self._obs()

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        world = self.world
        choice = actions.long().reshape(-1).clamp(0, self.k - 1)
        for k, child in enumerate(self.children):
            child.reset(choice == k)
        limit = self.option_limits[choice]
        before = self.tracker.progress.clone()
        completed = torch.zeros(self.num_envs, dtype=torch.bool)
        active = self.all_envs.clone()
        for t in range(int(limit.max())):
            low = torch.zeros(self.num_envs, ACTION_DIM)
            masks = [active & (choice == k) for k in range(self.k)]
            for child, m in zip(self.children, masks, strict=True):
                if bool(m.any()):
                    low = torch.where(m[:, None], child.act(world, m), low)
            world.step(low, active)
            self.frames.capture(world)
            over = torch.zeros_like(active)
            for child, m in zip(self.children, masks, strict=True):
                if bool(m.any()):
                    over = over | child.post_step(world, m)
            done_now = self.tracker.update(world, active)
            self._save_successes(done_now)
            completed = completed | done_now
            active = active & ~over & ~done_now & (limit > t + 1)
            self.low_level_steps += 1
            if not bool(active.any()):
                break
        advanced = (self.tracker.progress - before).float()
        self.decisions += 1
        timeout = (self.decisions >= self.max_decisions) & ~completed
        done = completed | timeout
        reward = advanced + completed.float() - DECISION_COST
        self.stats.add(done, completed)
        if bool(done.any()):
            world.reset(done)
            self.tracker.reset(done)
            self.decisions = torch.where(done, torch.zeros_like(self.decisions), self.decisions)
        return self._obs(), reward, done.to(torch.uint8), {"time_outs": timeout}


def leaves(node: SkillNode) -> list[SkillNode]:
    """The primitive skills under `node`, in execution order."""
    if node.is_primitive:
        return [node]
    return [leaf for child in node.children for leaf in leaves(child)]


class FlatEnv(_EmbeddedEnv):
    """A flat baseline of a composite (issue 13): one policy on primitive actions, the root's
    reward and success.

    Reward per world step: +1 per root sub-skill completed in order and +1 on completing the root
    (the composite's own reward without its per-decision cost), less the primitives' small effort
    cost. Observation: [x, y, vx, vy, one-hot(primitives done so far in order)], the state the
    hierarchy as a whole acts on. An episode lasts the root's own step limit (`option_steps`).
    """

    def __init__(
        self,
        world: PointMassWorld,
        node: SkillNode,
        store: SuccessStore | None = None,
        frames: FrameSink | None = None,
    ) -> None:
        super().__init__(world, node, store, frames)
        if node.is_primitive:
            raise ValueError(f"{node.name}: a flat baseline is for composite skills")
        self.leaves = leaves(node)
        self.k = len(self.leaves)
        self.tracker = SequenceTracker(node, self.num_envs, world.device)
        self.leaf_tracker = SequenceTracker(
            SkillNode(f"{node.name}-leaves", False, {}, children=self.leaves), self.num_envs, world.device
        )
        self.episode_steps = node.option_steps
        self.t = torch.zeros(self.num_envs, dtype=torch.long)

    @property
    def obs_dim(self) -> int:
        return composite_obs_dim(self.k)

    def get_env_info(self) -> dict[str, Any]:
        return {
            "observation_space": gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32),
            "action_space": gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32),
            "agents": 1,
            "value_size": 1,
        }

    def _obs(self) -> torch.Tensor:
        return composite_obs(self.world, self.leaf_tracker.progress, self.k)

    def reset(self) -> torch.Tensor:
        self.world.reset(self.all_envs)
        self.tracker.reset(self.all_envs)
        self.leaf_tracker.reset(self.all_envs)
        self.t.zero_()
        return self._obs()

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        world = self.world
        before = self.tracker.progress.clone()
        world.step(actions)
        self.frames.capture(world)
        completed = self.tracker.update(world, self.all_envs)
        self.leaf_tracker.update(world, self.all_envs)
        advanced = (self.tracker.progress - before).float()
        self.t += 1
        timeout = (self.t >= self.episode_steps) & ~completed
        done = completed | timeout
        reward = advanced + completed.float() - EFFORT_COST * actions.square().sum(dim=1)
        self._save_successes(completed)
        self.stats.add(done, completed)
        if bool(done.any()):
            world.reset(done)
            self.tracker.reset(done)
            self.leaf_tracker.reset(done)
            self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        return self._obs(), reward, done.to(torch.uint8), {"time_outs": timeout}


def register_env(env_name: str, factory: Callable[[], IVecEnv]) -> None:
    """Register an env with rl-games exactly as Isaac Lab does (vecenv type + env configuration).

    The env is built by `factory` when rl-games asks for it (`vecenv.create_vec_env`), once.
    """
    vecenv.register(VECENV_TYPE, lambda config_name, num_actors, **kwargs: factory())
    env_configurations.register(
        env_name, {"vecenv_type": VECENV_TYPE, "env_creator": lambda **kwargs: factory()}
    )
