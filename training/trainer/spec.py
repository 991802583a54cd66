"""The run specification (`spec.json`) the orchestrator writes into the run folder.

docs/ARCHITECTURE.md is the contract; this module only reads it, checks the types of what the
trainer relies on and fills the optional fields, so a bad spec fails at start-up with a clear
`error` record instead of deep inside rl-games.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("embedded", "isaaclab")


class SpecError(ValueError):
    """spec.json is missing, unreadable or has a field of the wrong type."""


@dataclass(frozen=True)
class SubSkill:
    """A frozen sub-skill of a composite: its trained policy and, for composites, its own children."""

    name: str
    is_primitive: bool
    skill_spec: dict[str, Any]
    policy_dir: Path | None
    sub_skills: tuple[SubSkill, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> SubSkill:
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: expected an object")
        name = _str(data, "name", where)
        policy_dir = data.get("policy_dir")
        if policy_dir is not None and not isinstance(policy_dir, str):
            raise SpecError(f"{where}.policy_dir: expected a string or null")
        children = data.get("sub_skills") or []
        if not isinstance(children, list):
            raise SpecError(f"{where}.sub_skills: expected a list")
        return cls(
            name=name,
            is_primitive=bool(data.get("is_primitive", not children)),
            skill_spec=_obj(data, "skill_spec", f"{where}", default={}),
            policy_dir=Path(policy_dir) if policy_dir else None,
            sub_skills=tuple(
                cls.from_json(child, f"{where}.sub_skills[{i}]") for i, child in enumerate(children)
            ),
        )


@dataclass(frozen=True)
class TrainerSpec:
    backend: str
    task: str
    robot: str
    skill: str
    is_primitive: bool
    level: int
    run_dir: Path
    success_dir: Path
    start_states_dir: Path | None
    num_envs: int
    seed: int
    min_success_states: int
    min_frames: int
    max_frames: int | None
    video: bool
    video_interval: int
    video_length: int
    object_config: dict[str, Any]
    skill_spec: dict[str, Any]
    sub_skills: tuple[SubSkill, ...]
    # A flat baseline (issue 13): the composite's whole task as one policy on primitive actions.
    flat: bool = False
    # Backend-specific extras (e.g. the Isaac Lab root and skill folder); free-form on purpose.
    isaaclab: dict[str, Any] = field(default_factory=dict)
    # The session's PPO hyper-parameters (rl-games config keys); they win over embedded.json's `ppo`.
    ppo: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def policy_out_dir(self) -> Path:
        return self.run_dir / "policy"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainerSpec:
        if not isinstance(data, Mapping):
            raise SpecError("spec: expected a JSON object")
        backend = _str(data, "backend", "spec")
        if backend not in BACKENDS:
            raise SpecError(f"spec.backend: must be one of {', '.join(BACKENDS)}, not {backend!r}")
        start = data.get("start_states_dir")
        if start is not None and not isinstance(start, str):
            raise SpecError("spec.start_states_dir: expected a string or null")
        max_frames = data.get("max_frames")
        if max_frames is not None:
            max_frames = _int(data, "max_frames", "spec", minimum=1)
        children = data.get("sub_skills") or []
        if not isinstance(children, list):
            raise SpecError("spec.sub_skills: expected a list")
        is_primitive = bool(data.get("is_primitive", not children))
        if not is_primitive and not children:
            raise SpecError("spec.sub_skills: a composite skill needs at least one sub-skill")
        return cls(
            backend=backend,
            task=_str(data, "task", "spec"),
            robot=_str(data, "robot", "spec"),
            skill=_str(data, "skill", "spec"),
            is_primitive=is_primitive,
            level=int(data.get("level", 0 if is_primitive else 1)),
            run_dir=Path(_str(data, "run_dir", "spec")),
            success_dir=Path(_str(data, "success_dir", "spec")),
            start_states_dir=Path(start) if start else None,
            num_envs=_int(data, "num_envs", "spec", minimum=1),
            seed=_int(data, "seed", "spec", default=42),
            min_success_states=_int(data, "min_success_states", "spec", minimum=0, default=50),
            min_frames=_int(data, "min_frames", "spec", minimum=0, default=0),
            max_frames=max_frames,
            video=bool(data.get("video", False)),
            video_interval=_int(data, "video_interval", "spec", minimum=1, default=2000),
            video_length=_int(data, "video_length", "spec", minimum=1, default=200),
            object_config=_obj(data, "object_config", "spec", default={}),
            skill_spec=_obj(data, "skill_spec", "spec", default={}),
            sub_skills=tuple(
                SubSkill.from_json(child, f"spec.sub_skills[{i}]") for i, child in enumerate(children)
            ),
            flat=_flat(data, is_primitive, backend),
            isaaclab=_obj(data, "isaaclab", "spec", default={}),
            ppo=_ppo(data),
            raw=dict(data),
        )

    @classmethod
    def load(cls, path: str | Path) -> TrainerSpec:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read spec {path}: {exc}") from exc
        return cls.from_json(data)


def _flat(data: Mapping[str, Any], is_primitive: bool, backend: str) -> bool:
    value = data.get("flat", False)
    if not isinstance(value, bool):
        raise SpecError("spec.flat: expected true or false")
    if value and (is_primitive or backend != "embedded"):
        raise SpecError("spec.flat: a flat baseline trains a composite on the embedded backend")
    return value


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}.{key}: expected a non-empty string")
    return value


def _int(
    data: Mapping[str, Any], key: str, where: str, *, minimum: int | None = None, default: int | None = None
) -> int:
    value = data.get(key, default)
    # bool is an int subclass; a `true` where a count belongs is a bug in the writer.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}.{key}: expected an integer")
    if minimum is not None and value < minimum:
        raise SpecError(f"{where}.{key}: must be >= {minimum}")
    return value


# What a session may set (training/config.py PPO_OPTIONS), and the type each must have.
PPO_KEYS: dict[str, type] = {"learning_rate": float, "entropy_coef": float, "horizon_length": int, "mini_epochs": int}


def _ppo(data: Mapping[str, Any]) -> dict[str, Any]:
    value = _obj(data, "ppo", "spec", default={})
    checked: dict[str, Any] = {}
    for key, number in value.items():
        kind = PPO_KEYS.get(key)
        if kind is None:
            raise SpecError(f"spec.ppo.{key}: not a setting a session may override")
        if isinstance(number, bool) or not isinstance(number, int | float) or (kind is int and not isinstance(number, int)):
            raise SpecError(f"spec.ppo.{key}: expected {'an integer' if kind is int else 'a number'}")
        checked[key] = kind(number)
    return checked


def _obj(data: Mapping[str, Any], key: str, where: str, *, default: dict[str, Any]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return dict(default)
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}.{key}: expected an object")
    return dict(value)
