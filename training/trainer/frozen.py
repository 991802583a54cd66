"""Frozen sub-skill policies: load a published policy and let it act inside a parent skill.

A published policy folder (written by the trainer on `done`, copied by the orchestrator to the
skill's `policy/`) holds:

    policy.pth   the rl-games checkpoint (model weights incl. the input normaliser)
    agent.yaml   the rl-games config it was trained with ({"params": ...})
    skill.json   what is needed to use it without its env: obs_dim, action space, skill_spec,
                 the ordered sub-skill names (composites)

The network is rebuilt from agent.yaml with rl-games' own ModelBuilder and the checkpoint is read
with rl-games' own loader (which strips torch.compile's `_orig_mod.` prefix), so any policy the
trainer saved can be loaded, including ones trained with other network settings.

Inference runs under `torch.no_grad()`, not `inference_mode()`: inference tensors would leak
into the world state and break its in-place resets (isaaclab-and-rlgames.md §2.4).

Controllers are recursive: a frozen composite runs its own high-level policy over its own frozen
sub-skills, each with per-env state (current choice, option step count, progress).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
import yaml

from .safeload import UnsafeFileError, safe_load
from .skills import SequenceTracker, SkillNode, composite_obs
from .world import ACTION_DIM, PointMassWorld


class FrozenPolicyError(RuntimeError):
    """A sub-skill's policy folder is missing, incomplete or does not fit its skill."""


def load_policy_weights(path: Path) -> dict[str, Any]:
    """The network weights of a policy the trainer published, loaded without a full unpickle.

    rl-games' own `torch_ext.load_checkpoint` unpickles everything (`weights_only=False`); our
    checkpoints hold only tensors, numbers and numpy scalars, so the restricted loader reads them.
    Like rl-games, strip torch.compile's `_orig_mod.` prefix so compiled and plain nets match.
    """
    print(f"=> loading checkpoint '{path}' (weights only)", flush=True)  # as rl-games logs its loads
    try:
        checkpoint = safe_load(path)
    except UnsafeFileError as exc:
        raise FrozenPolicyError(f"policy {path} cannot be loaded safely: {exc}") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise FrozenPolicyError(f"policy {path} holds no model weights")
    prefix = "_orig_mod."
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in checkpoint["model"].items()}


class FrozenNet:
    """An rl-games actor-critic model used as a fixed function obs -> action."""

    def __init__(self, policy_dir: Path) -> None:
        from rl_games.algos_torch import model_builder

        policy_dir = Path(policy_dir)
        files = {name: policy_dir / name for name in ("policy.pth", "agent.yaml", "skill.json")}
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            raise FrozenPolicyError(f"policy folder {policy_dir} lacks {', '.join(missing)}")
        self.policy_dir = policy_dir
        self.info: dict[str, Any] = json.loads(files["skill.json"].read_text(encoding="utf-8"))
        agent = yaml.safe_load(files["agent.yaml"].read_text(encoding="utf-8"))
        params = agent["params"]
        config = params["config"]
        action = self.info["action"]
        self.discrete = action["type"] == "discrete"
        self.obs_dim = int(self.info["obs_dim"])
        network = model_builder.ModelBuilder().load(params)
        self.model = network.build(
            {
                "actions_num": int(action["n"] if self.discrete else action["dim"]),
                "input_shape": (self.obs_dim,),
                "num_seqs": 1,
                "value_size": 1,
                "normalize_value": config.get("normalize_value", False),
                "normalize_input": config.get("normalize_input", False),
            }
        )
        self.model.load_state_dict(load_policy_weights(files["policy.pth"]))
        self.model.eval()
        self.model.requires_grad_(False)

        net = self.model.a2c_network
        # The actor alone (no value head, no distribution) when the network is a plain MLP: a
        # composite of composites runs several frozen policies per world step.
        self._lean = not getattr(net, "has_rnn", True) and not getattr(net, "has_cnn", True)

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action: the mean (continuous, clamped to [-1, 1]) or the argmax choice."""
        if obs.shape[-1] != self.obs_dim:
            raise FrozenPolicyError(f"{self.policy_dir}: expects obs of {self.obs_dim}, got {obs.shape[-1]}")
        net = self.model.a2c_network
        x = self.model.norm_obs(obs)
        if self._lean:
            h = net.actor_mlp(x)
            out = net.logits(h) if self.discrete else net.mu_act(net.mu(h))
        else:
            out = net({"obs": x, "rnn_states": None})[0]
        if self.discrete:
            return out.argmax(dim=-1)
        return out.clamp(-1.0, 1.0)

    def rows(self, obs: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        """The policy on the rows of `mask` only; other rows keep `fill`.

        Options end at different times, so often only a few envs need this policy; evaluating
        just those rows is what keeps the lockstep option loop cheap.
        """
        idx = mask.nonzero(as_tuple=True)[0]
        if idx.numel() == mask.numel():
            return self(obs)
        out = fill.clone()
        if idx.numel():
            out[idx] = self(obs[idx])
        return out


class Controller(ABC):
    """A frozen skill acting in the world for the envs a parent hands it (masks, not indices)."""

    node: SkillNode

    def reset(self, mask: torch.Tensor) -> None:  # noqa: B027 (a primitive keeps no option state)
        """Start a fresh option for the envs in `mask`."""

    @abstractmethod
    def act(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        """The low-level action for every env (rows outside `mask` are ignored by the caller)."""

    @abstractmethod
    def post_step(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        """After the world stepped: where (within `mask`) this skill has now succeeded."""


class FrozenPrimitive(Controller):
    def __init__(self, node: SkillNode, net: FrozenNet) -> None:
        assert node.reach is not None
        if net.discrete or net.obs_dim != node.obs_dim:
            raise FrozenPolicyError(f"{node.name}: policy in {net.policy_dir} does not fit a reach skill")
        self.node = node
        self.net = net

    def act(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        assert self.node.reach is not None
        return self.net.rows(self.node.reach.observe(world), mask, torch.zeros(world.num_envs, ACTION_DIM))

    def post_step(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        assert self.node.reach is not None
        return mask & self.node.reach.success(world)


class FrozenComposite(Controller):
    def __init__(self, node: SkillNode, net: FrozenNet, children: list[Controller], num_envs: int) -> None:
        k = len(node.children)
        if not net.discrete or net.obs_dim != node.obs_dim or int(net.info["action"]["n"]) != k:
            raise FrozenPolicyError(
                f"{node.name}: policy in {net.policy_dir} does not fit a sequence of {k} sub-skills"
            )
        self.node = node
        self.net = net
        self.children = children
        device = torch.device("cpu")
        self.tracker = SequenceTracker(node, num_envs, device)
        self.choice = torch.full((num_envs,), -1, dtype=torch.long, device=device)
        self.steps = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.option_limits = torch.tensor([child.option_steps for child in node.children], device=device)

    def reset(self, mask: torch.Tensor) -> None:
        self.tracker.reset(mask)
        self.choice = torch.where(mask, torch.full_like(self.choice, -1), self.choice)
        self.steps = torch.where(mask, torch.zeros_like(self.steps), self.steps)

    def act(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        need = mask & (self.choice < 0)
        if bool(need.any()):
            obs = composite_obs(world, self.tracker.progress, len(self.children))
            self.choice = self.net.rows(obs, need, self.choice)
            self.steps = torch.where(need, torch.zeros_like(self.steps), self.steps)
            for k, child in enumerate(self.children):
                child.reset(need & (self.choice == k))
        actions = torch.zeros(world.num_envs, ACTION_DIM)
        for k, child in enumerate(self.children):
            m = mask & (self.choice == k)
            if bool(m.any()):
                actions = torch.where(m[:, None], child.act(world, m), actions)
        return actions

    def post_step(self, world: PointMassWorld, mask: torch.Tensor) -> torch.Tensor:
        done = self.tracker.update(world, mask)
        option_over = torch.zeros_like(mask)
        for k, child in enumerate(self.children):
            m = mask & (self.choice == k)
            if bool(m.any()):
                option_over = option_over | child.post_step(world, m)
        self.steps = self.steps + mask.long()
        limit = self.option_limits[self.choice.clamp(min=0)]
        option_over = option_over | (mask & (self.steps >= limit))
        self.choice = torch.where(option_over, torch.full_like(self.choice, -1), self.choice)
        return done


def build_controller(
    node: SkillNode, policy_dirs: dict[str, Path | None], num_envs: int, path: str = ""
) -> Controller:
    """The frozen controller of `node` and, recursively, of its sub-skills.

    `policy_dirs` maps a node's path in the tree ("patrol_north/reach_red_beacon") to its policy
    folder, so a skill used twice in a tree still finds its own folder.
    """
    where = f"{path}/{node.name}" if path else node.name
    policy_dir = policy_dirs.get(where)
    if policy_dir is None:
        raise FrozenPolicyError(f"sub-skill {where} has no trained policy (policy_dir is null)")
    net = FrozenNet(policy_dir)
    trained_children = net.info.get("sub_skills") or []
    if node.is_primitive:
        return FrozenPrimitive(node, net)
    names = [child.name for child in node.children]
    if trained_children and list(trained_children) != names:
        raise FrozenPolicyError(
            f"{where}: policy was trained over sub-skills {trained_children}, the spec now lists {names}"
        )
    children = [build_controller(child, policy_dirs, num_envs, where) for child in node.children]
    return FrozenComposite(node, net, children, num_envs)
