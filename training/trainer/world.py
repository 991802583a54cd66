"""The embedded simulator: a batched 2-D point mass in a square arena with fixed objects.

All environments live in one torch batch on the CPU. Each batched step is a handful of tensor ops
whose cost is mostly Python/dispatch overhead (~0.35 ms per step, isaaclab-and-rlgames.md §2.3),
so the world is kept tiny and every caller passes masks instead of indexing.

A world *state* (what success-state files hold and what start states restore) is one row
`[x, y, vx, vy]`: the objects never move, so the point mass is the whole mutable state.

Objects come from the task's GenHRL `object_config.json`: `position_<kind>` arrays of [x, y, z]
for kinds `spheres`, `cubes` and `cylinders` (z is ignored in 2-D).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

STATE_DIM = 4
ACTION_DIM = 2
SHAPES = ("spheres", "cubes", "cylinders")


@dataclass(frozen=True)
class WorldParams:
    # Half-width of the square arena in metres (the demo tasks describe a 4 m x 4 m arena).
    arena: float = 2.0
    dt: float = 0.05
    # Velocity kept per step and acceleration gain: top speed accel*dt/(1-damping) = 2 m/s,
    # i.e. 0.1 m per step, so crossing the arena takes ~40 steps and an episode of 100 is ample.
    damping: float = 0.9
    accel: float = 4.0
    # Random start positions keep this far from the walls.
    start_margin: float = 0.2


@dataclass(frozen=True)
class WorldObject:
    shape: str
    index: int
    x: float
    y: float
    size: float  # radius (spheres, cylinders) or half side (cubes), for drawing


class ObjectSet:
    """The task's objects by shape, parsed from a GenHRL object_config."""

    def __init__(self, objects: list[WorldObject]) -> None:
        self.objects = objects
        self._by_key = {(o.shape, o.index): o for o in objects}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ObjectSet:
        objects: list[WorldObject] = []
        for shape in SHAPES:
            positions = config.get(f"position_{shape}") or []
            if shape == "cubes":
                sizes = [
                    float(s[0]) / 2 if isinstance(s, list) and s else 0.1
                    for s in config.get("size_cubes") or []
                ]
            else:
                sizes = [float(r) for r in config.get(f"radius_{shape}") or []]
            for index, position in enumerate(positions):
                if not isinstance(position, (list, tuple)) or len(position) < 2:
                    raise ValueError(f"object_config.position_{shape}[{index}]: expected [x, y, z]")
                size = sizes[index] if index < len(sizes) else 0.1
                objects.append(WorldObject(shape, index, float(position[0]), float(position[1]), size))
        return cls(objects)

    def get(self, shape: str, index: int) -> WorldObject:
        try:
            return self._by_key[(shape, index)]
        except KeyError:
            known = ", ".join(f"{s}[{i}]" for s, i in sorted(self._by_key)) or "none"
            raise ValueError(f"no object {shape}[{index}] in object_config (known: {known})") from None


class PointMassWorld:
    def __init__(
        self,
        num_envs: int,
        objects: ObjectSet,
        params: WorldParams | None = None,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.num_envs = num_envs
        self.objects = objects
        self.params = params or WorldParams()
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.pos = torch.zeros(num_envs, 2, device=self.device)
        self.vel = torch.zeros(num_envs, 2, device=self.device)
        # Bumped on every step; skills use it to cache their per-step success tests.
        self.step_count = 0
        # Start states (rows of `state()`), sampled on reset with probability `start_state_prob`.
        self.start_states: torch.Tensor | None = None
        self.start_state_prob = 0.0

    def state(self) -> torch.Tensor:
        return torch.cat([self.pos, self.vel], dim=1)

    def set_start_states(self, states: torch.Tensor | None, prob: float) -> None:
        if states is not None and (states.ndim != 2 or states.shape[1] != STATE_DIM):
            raise ValueError(f"start states must be [n, {STATE_DIM}], got {list(states.shape)}")
        self.start_states = states.to(self.device) if states is not None and len(states) else None
        self.start_state_prob = prob if self.start_states is not None else 0.0

    def random_states(self, n: int) -> torch.Tensor:
        half = self.params.arena - self.params.start_margin
        pos = (torch.rand(n, 2, generator=self.generator, device=self.device) * 2 - 1) * half
        return torch.cat([pos, torch.zeros(n, 2, device=self.device)], dim=1)

    def sample_states(self, n: int) -> torch.Tensor:
        """Start states for n resets: from the loaded start states or uniform in the arena."""
        states = self.random_states(n)
        if self.start_states is not None and self.start_state_prob > 0:
            use = torch.rand(n, generator=self.generator, device=self.device) < self.start_state_prob
            idx = torch.randint(len(self.start_states), (n,), generator=self.generator, device=self.device)
            states = torch.where(use[:, None], self.start_states[idx], states)
        return states

    def reset(self, mask: torch.Tensor) -> None:
        """Reset the envs where `mask` is true to freshly sampled start states."""
        # Sampling for all envs and selecting avoids data-dependent shapes (and is as fast here).
        fresh = self.sample_states(self.num_envs)
        m = mask[:, None]
        self.pos = torch.where(m, fresh[:, :2], self.pos)
        self.vel = torch.where(m, fresh[:, 2:], self.vel)

    def step(self, actions: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Advance one step; envs outside `mask` stay exactly where they are."""
        p = self.params
        a = actions.clamp(-1.0, 1.0)
        vel = self.vel * p.damping + a * (p.accel * p.dt)
        pos = self.pos + vel * p.dt
        # Walls: stop at the boundary, losing the velocity component into the wall.
        clamped = pos.clamp(-p.arena, p.arena)
        vel = torch.where(clamped != pos, torch.zeros_like(vel), vel)
        if mask is not None:
            m = mask[:, None]
            clamped = torch.where(m, clamped, self.pos)
            vel = torch.where(m, vel, self.vel)
        self.pos = clamped
        self.vel = vel
        self.step_count += 1
