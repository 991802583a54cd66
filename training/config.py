"""A training session's configuration and its validation, shared by `manage.py train` and the web.

One function (`TrainingConfig.from_data`) turns untrusted input (command-line options, a JSON
body, a form) into a checked, immutable `TrainingConfig`, or raises `ConfigError` whose `errors`
map each field to its messages, so the CLI prints them and the API answers 400 with them. Nothing
is started before this has passed.

Steps are environment frames (one step of one environment), as in the trainer's `min_frames`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from tasks.models import Task

BACKENDS = ("embedded", "isaaclab")

# (default, minimum, maximum) parallel environments per backend. Isaac Lab: the product spec's
# 1024-8192 on a GPU. Embedded: the same ceiling, so every example of the product specification
# (`--num-envs 8192`) runs as written on a laptop; the CPU simulator pays ~0.35 ms of dispatch per
# batched step, so its default is a few hundred envs, which keeps PPO updates frequent
# (isaaclab-and-rlgames.md §2.3); the floor is low so that tests and laptops train tiny batches.
NUM_ENVS = {
    "isaaclab": (4096, 1024, 8192),
    "embedded": (512, 16, 8192),
}
# Frames a skill trains at least before it may stop on reaching its success states. A composite
# is cheaper per decision and learns over frozen sub-skills, so it needs fewer.
MIN_STEPS = {
    "isaaclab": {"primitive": 10_000_000, "composite": 2_000_000},
    "embedded": {"primitive": 100_000, "composite": 50_000},
}
MAX_TIME_LIMIT = 7 * 24 * 60  # minutes; a week is beyond any sane per-skill budget
# Seconds without a record from a trainer after which it is stopped as stalled. The embedded
# trainer reports every epoch (well under a second) after a few seconds of start-up; Isaac Lab
# takes minutes to start (Kit, shaders) before its first epoch. GENHRL_STALL_SECONDS overrides both.
STALL_SECONDS = {"embedded": 120.0, "isaaclab": 900.0}
# The `manage.py train` flag of each option: the command's arguments, its error messages and the
# training dialog's "same as" line all read this one map.
CLI_FLAGS: dict[str, str] = {
    "backend": "--backend",
    "max_time": "--max-time",
    "min_success_states": "--min-success-states",
    "num_envs": "--num-envs",
    "seed": "--seed",
    "new_run": "--new-run",
    "skip_complete": "--skip-complete",
    "headless": "--headless",
    "video": "--video",
    "video_interval": "--video-interval",
    "video_length": "--video-length",
    "min_steps_primitive": "--min-steps-primitive",
    "min_steps_composite": "--min-steps-composite",
    "max_frames": "--max-frames",
    # PPO hyper-parameters (issue 14: sweeps tune them); unset, each skill keeps its own defaults.
    "learning_rate": "--learning-rate",
    "entropy_coef": "--entropy-coef",
    "horizon_length": "--horizon-length",
    "mini_epochs": "--mini-epochs",
    # Issue 13: a flat baseline trains the task's root as one policy on primitive actions;
    # `baseline_of` names the hierarchical session whose frame budget and seed it takes.
    "flat": "--flat",
    "baseline_of": "--baseline-of",
}
# What a person reads for each option: the training dialog's field labels, the comparison's
# configuration rows and the sweep forms all read this one map (the raw name stays the key).
OPTION_LABELS: dict[str, str] = {
    "backend": "Backend",
    "max_time": "Max time per skill",
    "min_success_states": "Min success states",
    "num_envs": "Parallel environments",
    "seed": "Random seed",
    "new_run": "New run",
    "skip_complete": "Skip complete skills",
    "headless": "Headless",
    "video": "Record videos",
    "video_interval": "Video interval",
    "video_length": "Video length",
    "min_steps_primitive": "Min frames, primitive skills",
    "min_steps_composite": "Min frames, composite skills",
    "max_frames": "Max frames per skill",
    "learning_rate": "Learning rate",
    "entropy_coef": "Entropy coefficient",
    "horizon_length": "Horizon",
    "mini_epochs": "Mini-epochs",
    "flat": "Flat baseline",
    "baseline_of": "Baseline of session",
}


def option_label(name: str) -> str:
    """What a person reads for option `name` (`OPTION_LABELS`); the raw name for one it lacks."""
    return OPTION_LABELS.get(name, name)


BOOLEAN_OPTIONS = ("new_run", "skip_complete", "headless", "video", "flat")
# Options the API's start body does not take: a flat baseline is started from the session it is the
# baseline of (its page, or the CLI), so every start the API documents is one it accepts.
NOT_API_OPTIONS = ("flat", "baseline_of")
# Inclusive ranges of the whole-number options (`num_envs` depends on the backend: NUM_ENVS). The
# OpenAPI document publishes these same numbers.
INTEGER_LIMITS: dict[str, tuple[int, int]] = {
    "min_success_states": (1, 10_000_000),
    "seed": (0, 2**32 - 1),
    "video_interval": (1, 10_000_000),
    "video_length": (1, 100_000),
    "min_steps_primitive": (0, 10**12),
    "min_steps_composite": (0, 10**12),
    "max_frames": (1, 10**12),
    "horizon_length": (1, 4096),
    "mini_epochs": (1, 64),
    "baseline_of": (1, 2**63 - 1),
}
# (minimum, maximum, minimum allowed) of the fractional PPO options.
FLOAT_LIMITS: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0.0, 1.0, False),
    "entropy_coef": (0.0, 1.0, True),
}
# The options that reach rl-games' agent config as overrides (`spec.json` "ppo"); the option
# names are rl-games' own config keys.
PPO_OPTIONS = ("learning_rate", "entropy_coef", "horizon_length", "mini_epochs")


def stall_seconds(backend: str) -> float:
    """How long a trainer of `backend` may send no record before it is stopped (0: never)."""
    configured = getattr(settings, "GENHRL_STALL_SECONDS", None)
    return float(configured) if configured is not None else STALL_SECONDS.get(backend, STALL_SECONDS["isaaclab"])


def backend_problem(backend: str) -> str | None:
    """Why this server cannot train on `backend` now, or None. Checked at start and again at planning."""
    if backend == "isaaclab" and not settings.GENHRL_ISAACLAB_ROOT:
        return "the isaaclab backend needs GENHRL_ISAACLAB_ROOT (the Isaac Lab folder holding isaaclab.sh)"
    return None


class ConfigError(ValueError):
    """Invalid training options; `errors` maps each field name to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{field}: {msg}" for field, msgs in errors.items() for msg in msgs)
        )


@dataclass(frozen=True)
class TrainingConfig:
    backend: str = "embedded"
    max_time: float = 180.0  # minutes per skill; fractions allowed (tests use seconds)
    min_success_states: int = 50
    num_envs: int = 512
    seed: int = 42
    new_run: bool = False
    skip_complete: bool = True
    headless: bool = True
    video: bool = False
    video_interval: int = 2000
    video_length: int = 200
    min_steps_primitive: int = 100_000
    min_steps_composite: int = 50_000
    # Hard cap on frames per skill; not a product option: benchmarks and tests use it to make a
    # run a fixed amount of work.
    max_frames: int | None = None
    # PPO hyper-parameters for every skill of the session; None keeps the skill's own (embedded.json
    # `ppo`, else the trainer's defaults for primitives and composites).
    learning_rate: float | None = None
    entropy_coef: float | None = None
    horizon_length: int | None = None
    mini_epochs: int | None = None
    # A flat baseline (issue 13): the root skill alone, as one policy over primitive actions, with
    # the root's reward and success; `baseline_of` is the hierarchical session it is compared with.
    flat: bool = False
    baseline_of: int | None = None

    @property
    def max_time_seconds(self) -> float:
        return self.max_time * 60.0

    def min_steps(self, is_primitive: bool) -> int:
        return self.min_steps_primitive if is_primitive else self.min_steps_composite

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def ppo_overrides(self) -> dict[str, Any]:
        """The PPO options that were set, by rl-games config key (the spec's `ppo`)."""
        return {name: getattr(self, name) for name in PPO_OPTIONS if getattr(self, name) is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """Rebuild a config stored by `to_json` (a session's `config`); unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_changes(self, **changes: Any) -> TrainingConfig:
        return replace(self, **changes)

    @classmethod
    def defaults(cls, backend: str) -> TrainingConfig:
        num_envs = NUM_ENVS[backend][0]
        steps = MIN_STEPS[backend]
        return cls(
            backend=backend,
            num_envs=num_envs,
            min_steps_primitive=steps["primitive"],
            min_steps_composite=steps["composite"],
        )

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, task: Task | None = None, strict: bool = False) -> TrainingConfig:
        """Validate untrusted options; missing ones take their defaults.

        The backend is the one asked for, else the task's, else GENHRL_DEFAULT_BACKEND; the
        defaults and ranges of `num_envs` and the minimum steps depend on it. `None` values count
        as missing, so a CLI option that was not given can be passed through as `None`.

        The command line and the forms give text: numbers are then ASCII digits only (no "1_000",
        no other scripts' digits). `strict` (the JSON API) takes JSON types only: numbers as
        numbers, booleans as booleans.
        """
        errors: dict[str, list[str]] = {}
        given = {k: v for k, v in data.items() if v is not None}
        known = {f.name for f in fields(cls)}
        for key in sorted(set(given) - known):
            errors.setdefault(key, []).append("unknown option")

        if not isinstance(given.get("backend", ""), str):
            errors.setdefault("backend", []).append(f"must be one of {', '.join(BACKENDS)}")
            given.pop("backend")
        backend = given.get("backend") or (task.backend if task is not None else None)
        backend = backend or settings.GENHRL_DEFAULT_BACKEND
        if backend not in BACKENDS:
            errors.setdefault("backend", []).append(f"must be one of {', '.join(BACKENDS)}")
            backend = settings.GENHRL_DEFAULT_BACKEND
        base = cls.defaults(backend)
        values: dict[str, Any] = {"backend": backend}

        def take(name: str, parse: Any, *args: Any) -> None:
            if name not in given:
                return
            try:
                values[name] = parse(given[name], *args, strict=strict)
            except ValueError as exc:
                errors.setdefault(name, []).append(str(exc))

        _, envs_min, envs_max = NUM_ENVS[backend]
        take("max_time", _number, 0.0, float(MAX_TIME_LIMIT), False)
        take("num_envs", _integer, envs_min, envs_max)
        for name, (low, high) in INTEGER_LIMITS.items():
            take(name, _integer, low, high)
        for name, (low, high, inclusive) in FLOAT_LIMITS.items():
            take(name, _number, low, high, inclusive)
        for flag in BOOLEAN_OPTIONS:
            take(flag, _boolean)
        if "baseline_of" in values and not values.get("flat", False):
            errors.setdefault("baseline_of", []).append(f"only with {CLI_FLAGS['flat']}")
        if values.get("flat") and backend != "embedded":
            errors.setdefault("flat", []).append("a flat baseline trains on the embedded backend only")
        if "num_envs" in errors and backend == "isaaclab":
            errors["num_envs"].append("the Isaac Lab range is 1024-8192")
        if errors:
            raise ConfigError(errors)
        return replace(base, **values)


_ASCII_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_ASCII_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _integer(value: Any, minimum: int, maximum: int, *, strict: bool = False) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        value = int(value)
    elif isinstance(value, str) and not strict:
        text = value.strip()
        if not _ASCII_INTEGER.fullmatch(text):
            raise ValueError("must be a whole number")
        value = int(text)
    elif not isinstance(value, int):
        raise ValueError("must be a whole number")
    if not minimum <= value <= maximum:
        raise ValueError(f"must be between {minimum} and {maximum}")
    return value


def _number(value: Any, minimum: float, maximum: float, inclusive_min: bool, *, strict: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        if strict or not _ASCII_NUMBER.fullmatch(value.strip()):
            raise ValueError("must be a number")
    elif not isinstance(value, int | float):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"must be more than {minimum:g} and at most {maximum:g}") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    too_small = number < minimum if inclusive_min else number <= minimum
    if (too_small or number > maximum) and inclusive_min:
        raise ValueError(f"must be between {minimum:g} and {maximum:g}")
    if too_small or number > maximum:
        raise ValueError(f"must be more than {minimum:g} and at most {maximum:g}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean(value: Any, *, strict: bool = False) -> bool:
    if isinstance(value, bool):
        return value
    if strict:
        raise ValueError("must be true or false")
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be true or false")
