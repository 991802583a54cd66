"""The API's shapes, for its OpenAPI document and to check its answers.

The start body is described here but validated by `training.config.TrainingConfig.from_data`, the
same code as `manage.py train`, so the web and the terminal accept exactly the same options.
"""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from training.config import BACKENDS, FLOAT_LIMITS, INTEGER_LIMITS, MAX_TIME_LIMIT, NUM_ENVS, backend_problem

_ENVS_LOW = min(low for _, low, _ in NUM_ENVS.values())
_ENVS_HIGH = max(high for _, _, high in NUM_ENVS.values())


def _limits(name: str) -> dict[str, int]:
    low, high = INTEGER_LIMITS[name]
    return {"ge": low, "le": high}


class TrainingOptions(Schema):
    """Training options; every one is optional and takes its default (in brackets) when left out."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["embedded", "isaaclab"] | None = Field(
        None, description="Simulator [the task's backend, else GENHRL_DEFAULT_BACKEND]."
    )
    max_time: float | None = Field(
        None, gt=0, le=MAX_TIME_LIMIT, description="Max time per skill in minutes, fractions allowed [180]."
    )
    min_success_states: int | None = Field(
        None, **_limits("min_success_states"), description="Success states a skill needs to complete [50]."
    )
    num_envs: int | None = Field(
        None, ge=_ENVS_LOW, le=_ENVS_HIGH,
        description="Parallel environments; the range depends on the backend: "
        + "; ".join(f"{name} {default} ({low}-{high})" for name, (default, low, high) in NUM_ENVS.items()) + ".",
    )
    seed: int | None = Field(None, **_limits("seed"), description="Random seed [42].")
    new_run: bool | None = Field(None, description="Delete this task's earlier training data first [false].")
    skip_complete: bool | None = Field(
        None, description="Skip skills that already have enough success states and a policy [true]."
    )
    headless: bool | None = Field(None, description="Run the simulator without a window [true].")
    video: bool | None = Field(None, description="Record videos while training [false].")
    video_interval: int | None = Field(
        None, **_limits("video_interval"), description="Steps between recorded videos [2000]."
    )
    video_length: int | None = Field(None, **_limits("video_length"), description="Steps per recorded video [200].")
    min_steps_primitive: int | None = Field(
        None, **_limits("min_steps_primitive"),
        description="Frames a primitive skill trains at least [Isaac Lab 10,000,000; embedded 100,000].",
    )
    min_steps_composite: int | None = Field(
        None, **_limits("min_steps_composite"),
        description="Frames a composite skill trains at least [Isaac Lab 2,000,000; embedded 50,000].",
    )
    max_frames: int | None = Field(
        None, **_limits("max_frames"), description="Hard cap on frames per skill, for benchmarks and tests [none]."
    )
    learning_rate: float | None = Field(
        None, gt=FLOAT_LIMITS["learning_rate"][0], le=FLOAT_LIMITS["learning_rate"][1],
        description="PPO learning rate for every skill [each skill's own: 1e-3].",
    )
    entropy_coef: float | None = Field(
        None, ge=FLOAT_LIMITS["entropy_coef"][0], le=FLOAT_LIMITS["entropy_coef"][1],
        description="PPO entropy coefficient for every skill [each skill's own: 0 primitives, 0.01 composites].",
    )
    horizon_length: int | None = Field(
        None, **_limits("horizon_length"), description="PPO horizon (steps per env per update) [each skill's own: 16 / 8]."
    )
    mini_epochs: int | None = Field(
        None, **_limits("mini_epochs"), description="PPO mini-epochs per update [each skill's own: 5 / 4]."
    )


def training_options_schema() -> dict[str, Any]:
    """`TrainingOptions` as JSON Schema, offering only the backends this server can train on now."""
    schema = TrainingOptions.model_json_schema()
    available = [name for name in BACKENDS if not backend_problem(name)]
    schema["properties"]["backend"]["anyOf"] = [{"enum": available, "type": "string"}, {"type": "null"}]
    return schema


class SessionUrls(Schema):
    status: str
    progress: str = Field(description="The session's `text/event-stream`.")
    cancel: str
    page: str = Field(description="The page a person opens to watch the session.")


class SkillProgress(Schema):
    id: int | None = Field(description="The skill run; null before the session is planned.")
    name: str
    skill_id: int
    order: int
    level: int
    kind: Literal["primitive", "composite"]
    status: str
    progress: float = Field(description="0-1.")
    attempt: int | None
    success_states: int
    min_success_states: int
    start_states: int
    frames: int
    min_frames: int
    epochs: int
    fps: float | None
    best_reward: float | None
    last_reward: float | None
    success_rate: float | None
    elapsed_s: float
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    stop_reason: str
    error: str
    source_time: float | None


class SessionTotals(Schema):
    total: int
    completed: int = Field(description="Trained or skipped (already had enough success states).")
    pending: int
    training: int
    failed: int
    cancelled: int


class Warning(Schema):
    skill: str | None = Field(description="The skill it is about, if any.")
    kind: Literal["quiet", "event"] = Field(
        description="`quiet`: a training skill sent no progress for a while (live); `event`: a recorded warning."
    )
    time: str | None
    message: str


class ProgressSnapshot(Schema):
    """The whole state of a session: the status answer's `session` and every SSE `progress` event."""

    session_id: int
    task: str
    robot: str
    backend: str
    status: Literal["queued", "running", "cancelling", "completed", "failed", "cancelled", "interrupted"]
    stage: Literal["initializing", "planning", "training", "complete"]
    active: bool
    terminal: bool
    progress: float = Field(description="0-1 over every planned skill.")
    current_skill: str | None = Field(description="The skill started last (see training_skills).")
    training_skills: list[str] = Field(description="Every skill training now, in training order.")
    skills: list[SkillProgress]
    totals: SessionTotals
    elapsed_s: float
    eta_s: float | None = Field(description="Rough seconds left; null while there is nothing to go on.")
    error: str
    warnings: list[Warning] = Field(description="What a viewer should notice now, newest recorded last.")
    source_time: float | None = Field(
        description="Trainer wall-clock time (epoch seconds) of the record behind this state."
    )
    snapshot_time: float = Field(description="Server wall-clock time (epoch seconds) this was read.")
    queue_position: int | None = Field(
        description="1 = next to start; null unless queued, or while held by the owner's session limit."
    )
    queue_held: str = Field("", description="Why a queued session waits behind later ones (its owner's limit), or empty.")
    cancel_requested: bool
    owner: str | None
    worker: str
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    urls: SessionUrls


class StreamDone(Schema):
    """The data of the `done` event that ends a finished session's stream."""

    session_id: int
    status: str = Field(description="The session's terminal status, or `deleted`.")
    error: str


class StreamNotice(Schema):
    """The data of a `notice` event: the server cannot reach its database (or can again)."""

    database: Literal["unavailable", "available"]
    message: str


class SkillStatus(Schema):
    name: str
    skill_id: int
    order: int
    level: int
    kind: Literal["primitive", "composite"]
    defined: bool = Field(description="False for a sub-skill that is named but never defined.")
    status: str
    success_states: int
    unreadable_files: int = Field(
        description="Success-state files that could not be read safely (not unpickled, not counted)."
    )
    min_success_states: int
    has_policy: bool
    last_run_at: str | None
    last_result: str | None
    last_error: str
    last_session_id: int | None


class StatusTotals(Schema):
    total: int = Field(description="Skills that can be trained.")
    completed: int
    pending: int


class SessionSummary(Schema):
    session_id: int
    status: str
    created_at: str
    finished_at: str | None
    error: str
    urls: SessionUrls


class TaskStatus(Schema):
    task: str
    robot: str
    backend: str
    training: bool = Field(description="True while a session is queued, running or cancelling.")
    session: ProgressSnapshot | None = Field(description="The active session, if any.")
    last_session: SessionSummary | None = Field(
        description="The latest session, active or not; a flat baseline only while it is active."
    )
    skills: list[SkillStatus]
    totals: StatusTotals


class Started(Schema):
    session_id: int
    status: str
    queue_position: int | None
    urls: SessionUrls


class Problem(Schema):
    detail: str


class FieldProblems(Schema):
    detail: str
    errors: dict[str, list[str]] = Field(description="Messages by option name.")


class AlreadyTraining(Schema):
    detail: str
    session_id: int | None
    status: str | None
    urls: SessionUrls | None
