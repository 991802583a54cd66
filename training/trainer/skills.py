"""What a skill means in the embedded world: observation, success and progress (embedded.json).

`embedded.json` (one per skill, next to the GenHRL skill files) is owned by the trainer. Schema:

    primitive: {"type": "reach",
                "target": {"shape": "spheres"|"cubes"|"cylinders", "index": 0},
                "radius": 0.15,            # success: within this distance of the target ...
                "max_speed": 0.6,          # ... and slower than this (m/s); null = any speed
                "episode_steps": 100,      # time limit of a training episode
                ...common}
    composite: {"type": "sequence",        # success: the sub-skills' successes, in order
                "max_decisions": null,     # decision limit per episode; default sub-skills + 2
                ...common}
    common:    "min_success_rate": 0.9     # the trainer does not stop by itself before the
                                           # success rate of an epoch reaches this (default 0)
               "start_state_prob": 0.75    # share of resets from the previous skill's states
               "ppo": {...}                # overrides of rl-games `config` keys (tests, tuning)

The same code serves the env being trained and the frozen sub-skills acting inside a parent, so
a sub-skill sees exactly the observation it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .world import STATE_DIM, ObjectSet, PointMassWorld

PRIMITIVE_TYPES = ("reach",)
COMPOSITE_TYPES = ("sequence",)
REACH_OBS_DIM = 4


class SkillSpecError(ValueError):
    """An embedded.json that the embedded world cannot run."""


class Reach:
    """Go to an object and (optionally) stop there. Observation: [target - pos, vel]."""

    def __init__(self, spec: Mapping[str, Any], objects: ObjectSet, name: str) -> None:
        target = spec.get("target")
        if not isinstance(target, Mapping):
            raise SkillSpecError(f"{name}: reach needs a target {{shape, index}}")
        shape = str(target.get("shape", ""))
        index = target.get("index", 0)
        if not isinstance(index, int):
            raise SkillSpecError(f"{name}: target.index must be an integer")
        try:
            obj = objects.get(shape, index)
        except ValueError as exc:
            raise SkillSpecError(f"{name}: {exc}") from None
        self.name = name
        self.target = torch.tensor([obj.x, obj.y])
        self.radius = float(spec.get("radius", 0.15))
        max_speed = spec.get("max_speed")
        self.max_speed = float(max_speed) if max_speed is not None else None
        self.episode_steps = int(spec.get("episode_steps", 100))
        self._cache_step = -1
        self._cache_world: PointMassWorld | None = None
        self._cache: torch.Tensor | None = None

    def observe(self, world: PointMassWorld) -> torch.Tensor:
        return torch.cat([self.target - world.pos, world.vel], dim=1)

    def distance(self, world: PointMassWorld) -> torch.Tensor:
        return torch.linalg.vector_norm(world.pos - self.target, dim=1)

    def success(self, world: PointMassWorld) -> torch.Tensor:
        # Trackers and frozen controllers ask the same question several times per step.
        if self._cache is not None and self._cache_step == world.step_count and self._cache_world is world:
            return self._cache
        ok = self.distance(world) < self.radius
        if self.max_speed is not None:
            ok = ok & (torch.linalg.vector_norm(world.vel, dim=1) < self.max_speed)
        self._cache, self._cache_step, self._cache_world = ok, world.step_count, world
        return ok


@dataclass
class SkillNode:
    """A skill and, for composites, its sub-skills in order (the spec's `sub_skills` tree)."""

    name: str
    is_primitive: bool
    spec: dict[str, Any]
    reach: Reach | None = None
    children: list[SkillNode] = field(default_factory=list)

    @property
    def min_success_rate(self) -> float:
        return float(self.spec.get("min_success_rate", 0.0))

    @property
    def start_state_prob(self) -> float:
        return float(self.spec.get("start_state_prob", 0.75))

    @property
    def max_decisions(self) -> int:
        value = self.spec.get("max_decisions")
        return int(value) if value else len(self.children) + 2

    @property
    def option_steps(self) -> int:
        """Low-level steps this skill may take when a parent runs it as one option."""
        if self.reach is not None:
            return self.reach.episode_steps
        lengths = [child.option_steps for child in self.children]
        # one spare option for a wrong choice before the skill gives up
        return sum(lengths) + max(lengths)

    @property
    def obs_dim(self) -> int:
        return REACH_OBS_DIM if self.is_primitive else composite_obs_dim(len(self.children))


def build_node(
    name: str,
    is_primitive: bool,
    spec: Mapping[str, Any],
    children: Sequence[SkillNode],
    objects: ObjectSet,
) -> SkillNode:
    kind = spec.get("type")
    if is_primitive:
        if kind not in PRIMITIVE_TYPES:
            raise SkillSpecError(f"{name}: primitive type must be one of {PRIMITIVE_TYPES}, not {kind!r}")
        return SkillNode(name, True, dict(spec), reach=Reach(spec, objects, name))
    if kind not in COMPOSITE_TYPES:
        raise SkillSpecError(f"{name}: composite type must be one of {COMPOSITE_TYPES}, not {kind!r}")
    if not children:
        raise SkillSpecError(f"{name}: a sequence needs sub-skills")
    return SkillNode(name, False, dict(spec), children=list(children))


def composite_obs_dim(num_children: int) -> int:
    return STATE_DIM + num_children + 1


def composite_obs(world: PointMassWorld, progress: torch.Tensor, num_children: int) -> torch.Tensor:
    """[x, y, vx, vy, one-hot(sub-skills done so far, K+1)]: enough to know which one is next."""
    onehot = torch.nn.functional.one_hot(progress.clamp(0, num_children), num_children + 1).float()
    return torch.cat([world.pos, world.vel, onehot], dim=1)


class SequenceTracker:
    """Per-env progress through a sequence: how many sub-skills succeeded, in order.

    A composite sub-skill's own progress is tracked from the moment it becomes the current one,
    so "patrol north, then patrol south" means red then blue, and only after that green then
    yellow.
    """

    def __init__(self, node: SkillNode, num_envs: int, device: torch.device) -> None:
        self.node = node
        self.num_children = len(node.children)
        self.progress = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.child_trackers = [
            None if child.is_primitive else SequenceTracker(child, num_envs, device)
            for child in node.children
        ]

    def reset(self, mask: torch.Tensor) -> None:
        self.progress = torch.where(mask, torch.zeros_like(self.progress), self.progress)
        for tracker in self.child_trackers:
            if tracker is not None:
                tracker.reset(mask)

    def update(self, world: PointMassWorld, active: torch.Tensor) -> torch.Tensor:
        """Advance on this step's world; returns where the whole sequence just completed."""
        advanced = torch.zeros_like(active)
        for i, child in enumerate(self.node.children):
            current = active & (self.progress == i)
            if not bool(current.any()):
                continue  # cheaper than testing a success nobody is waiting for
            tracker = self.child_trackers[i]
            if tracker is None:
                assert child.reach is not None
                advanced = advanced | (current & child.reach.success(world))
            else:
                advanced = advanced | tracker.update(world, current)
        self.progress = self.progress + advanced.long()
        for i, tracker in enumerate(self.child_trackers):
            if tracker is not None:
                tracker.reset(advanced & (self.progress == i))
        return advanced & (self.progress >= self.num_children)
