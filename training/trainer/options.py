"""High-level env over frozen sub-skills for the `isaaclab` backend (untested here: needs Isaac Lab).

GenHRL's `HierarchicalVecActionWrapper` recipe on rl-games (isaaclab-and-rlgames.md §3): a
`Discrete(K)` action picks which frozen sub-skill policy drives the robot for up to
`steps_per_option` low-level steps; the option ends early for envs whose episode ends. The
sub-skills see the same policy observation as the composite's env, which is how GenHRL's
composite envs are generated. A composite sub-skill re-decides among its own children every
`steps_per_option` steps (recursively).

The embedded backend has its own, richer version in envs.CompositeEnv (options end on the
sub-skill's own success condition, which the 2-D world can evaluate).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from rl_games.common.ivecenv import IVecEnv

from .frozen import FrozenNet, FrozenPolicyError
from .spec import SubSkill, TrainerSpec


class IsaacFrozen:
    def __init__(self, skill: SubSkill, steps_per_option: int, device: str) -> None:
        if skill.policy_dir is None:
            raise FrozenPolicyError(f"sub-skill {skill.name} has no trained policy")
        self.net = FrozenNet(skill.policy_dir)
        self.net.model.to(device)
        self.children = [IsaacFrozen(c, steps_per_option, device) for c in skill.sub_skills]
        self.steps_per_option = steps_per_option
        self.choice: torch.Tensor | None = None
        self.steps: torch.Tensor | None = None

    def reset(self, mask: torch.Tensor) -> None:
        if self.children and self.choice is not None and self.steps is not None:
            self.steps = torch.where(mask, torch.zeros_like(self.steps), self.steps)
            self.choice = torch.where(mask, torch.full_like(self.choice, -1), self.choice)

    def act(self, obs: torch.Tensor, mask: torch.Tensor, action_dim: int) -> torch.Tensor:
        if not self.children:
            return self.net.rows(obs, mask, torch.zeros(obs.shape[0], action_dim, device=obs.device))
        if self.choice is None or self.steps is None:
            self.choice = torch.full((obs.shape[0],), -1, dtype=torch.long, device=obs.device)
            self.steps = torch.zeros(obs.shape[0], dtype=torch.long, device=obs.device)
        need = mask & ((self.choice < 0) | (self.steps >= self.steps_per_option))
        if bool(need.any()):
            self.choice = self.net.rows(obs, need, self.choice)
            self.steps = torch.where(need, torch.zeros_like(self.steps), self.steps)
            for k, child in enumerate(self.children):
                child.reset(need & (self.choice == k))
        actions = torch.zeros(obs.shape[0], action_dim, device=obs.device)
        for k, child in enumerate(self.children):
            m = mask & (self.choice == k)
            if bool(m.any()):
                actions = torch.where(m[:, None], child.act(obs, m, action_dim), actions)
        self.steps = self.steps + mask.long()
        return actions


class OptionsVecEnv(IVecEnv):
    def __init__(self, base: Any, children: list[IsaacFrozen], steps_per_option: int, device: str) -> None:
        self.base = base
        self.children = children
        self.steps_per_option = steps_per_option
        self.device = device
        self.num_envs = int(base.num_envs)
        self.action_dim = int(base.action_space.shape[0])
        self.observation_space = base.observation_space
        self.action_space = gym.spaces.Discrete(len(children))
        self._last_obs: Any = None

    @classmethod
    def from_spec(cls, base: Any, spec: TrainerSpec, device: str) -> OptionsVecEnv:
        steps = int(spec.isaaclab.get("steps_per_option", 50))
        children = [IsaacFrozen(child, steps, device) for child in spec.sub_skills]
        return cls(base, children, steps, device)

    def get_env_info(self) -> dict[str, Any]:
        info = dict(self.base.get_env_info())
        info["action_space"] = self.action_space
        return info

    def get_number_of_agents(self) -> int:
        return 1

    def reset(self) -> Any:
        self._last_obs = self.base.reset()
        return self._last_obs

    @staticmethod
    def _policy_obs(obs: Any) -> torch.Tensor:
        return obs["obs"] if isinstance(obs, dict) else obs

    def step(self, actions: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, Any]]:
        choice = actions.long().reshape(-1)
        for k, child in enumerate(self.children):
            child.reset(choice == k)
        reward = torch.zeros(self.num_envs, device=self.device)
        done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        time_outs = torch.zeros_like(done)
        obs: Any = self._last_obs
        infos: dict[str, Any] = {}
        for _ in range(self.steps_per_option):
            if obs is None:
                obs = self.base.reset()
            policy_obs = self._policy_obs(obs)
            low = torch.zeros(self.num_envs, self.action_dim, device=self.device)
            for k, child in enumerate(self.children):
                m = (choice == k) & ~done
                if bool(m.any()):
                    low = torch.where(m[:, None], child.act(policy_obs, m, self.action_dim), low)
            obs, r, d, infos = self.base.step(low)
            running = ~done
            reward = reward + r.reshape(-1) * running.float()
            ended = d.reshape(-1).bool() & running
            if "time_outs" in infos:
                time_outs = time_outs | (ended & infos["time_outs"].reshape(-1).bool())
            done = done | ended
            if bool(done.all()):
                break
        self._last_obs = obs
        out_infos = {"time_outs": time_outs}
        if "episode" in infos:
            out_infos["episode"] = infos["episode"]
        return obs, reward, done.to(torch.uint8), out_infos
