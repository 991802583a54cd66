"""The API of running a lab (issue 14): presets, sweeps, workers and the queue.

Routers added to the one `NinjaAPI` (`training/api/views.py`), so they share its authentication
(Bearer token or session + CSRF) and its error answers (400 with field messages, 401, 403, 404).
Each operation: access helper, validate, a verb of a domain module, answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BeforeValidator, ConfigDict, StrictBool, StrictStr, WithJsonSchema

from training import monitoring, permissions, presets, queueing, services, sweeps
from training.api.schemas import FieldProblems, Problem, training_options_schema
from training.config import ConfigError, TrainingConfig
from training.lab_models import Preset, Sweep
from training.models import TrainingSession

QUEUE_NAME = r"^[A-Za-z0-9_.-]{1,100}$"
presets_router = Router(tags=["presets"])
sweeps_router = Router(tags=["sweeps"])
workers_router = Router(tags=["workers"])
queue_router = Router(tags=["queue"])


# -- shapes -----------------------------------------------------------------------------------------
class PresetOut(Schema):
    id: int
    name: str
    owner: str
    shared: bool
    options: dict[str, Any]
    problems: list[str] = Field(description="What no longer validates (empty: usable as saved).")


def _json_int(value: Any) -> int:
    """A JSON integer: 3 or 3.0, never "3" or true (pydantic's lax mode would take those)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be a whole number")
    return int(value)


JsonInt = Annotated[int, BeforeValidator(_json_int)]


class PresetIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=100, pattern=r"^[^/\x00-\x1f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f]*$")
    shared: StrictBool = False
    # Checked by `TrainingConfig.from_data(strict=True)`, the start body's own check (JSON types only).
    options: Annotated[dict[str, Any], WithJsonSchema(training_options_schema())] = Field(
        default_factory=dict, description="Training options, as the start body takes them."
    )
    task: StrictStr | None = Field(None, description="Check the options against this task (its backend); default: none.")
    robot: StrictStr | None = None


class SweepIn(Schema):
    model_config = ConfigDict(extra="forbid")

    task: StrictStr
    robot: StrictStr | None = None
    name: StrictStr = ""
    method: Literal["grid", "random", "search"]
    metric: Literal["success_rate", "frames", "wall_time"] = "success_rate"
    seeds: list[JsonInt] = Field(min_length=1, max_length=sweeps.MAX_SEEDS)
    budget: Annotated[JsonInt, Field(ge=0, le=sweeps.MAX_BUDGET)] = Field(
        0, description="Settings to try (random, search)."
    )
    space: dict[str, Any] = Field(
        description="Per option: a list of values, or {low, high, log} (random and search). Options: "
        + ", ".join(sweeps.PARAMS) + "."
    )
    base: dict[str, Any] = Field(default_factory=dict, description="Options every trial shares.")
    preset: StrictStr | None = Field(None, description="A preset as the base (base options go on top).")
    random_seed: Annotated[JsonInt, Field(ge=0, le=2**31 - 1)] | None = None


class SettingOut(Schema):
    setting: int
    rank: int | None
    params: dict[str, Any]
    mean: float | None
    std: float | None = Field(description="Sample standard deviation over seeds (null below two results).")
    values: list[float]
    trials: list[int] = Field(description="Trial numbers of this setting, one per seed.")


class TrialOut(Schema):
    number: int
    setting: int
    seed: int
    params: dict[str, Any]
    session_id: int | None
    status: str
    value: float | None
    error: str


class SweepOut(Schema):
    id: int
    name: str
    task: str
    robot: str
    method: str
    metric: str
    maximize: bool
    status: str
    note: str
    seeds: list[int]
    space: dict[str, Any]
    base: dict[str, Any]
    progress: dict[str, int]
    ranking: list[SettingOut]
    trials: list[TrialOut]
    url: str


class WorkerOut(Schema):
    worker_id: str
    hostname: str
    alive: bool
    queue: str
    slots: int
    busy_slots: int
    heartbeat_at: str
    cpu_count: int
    cpu_percent: float
    load_1: float | None
    memory_total: int
    memory_used: int
    gpus: list[dict[str, Any]]
    gpu_note: str
    sessions: list[dict[str, Any]]


class PlaceOut(Schema):
    session_id: int
    task: str
    owner: str | None
    position: int | None = Field(description="1 = claimed next; null while held by its owner's limit.")
    held: str


class QueueOut(Schema):
    queue: str
    sessions: list[PlaceOut]


class MoveIn(Schema):
    model_config = ConfigDict(extra="forbid")

    to: Literal["top", "up", "down", "bottom"]


# -- presets ----------------------------------------------------------------------------------------
def _preset_out(preset: Preset) -> dict[str, Any]:
    return {
        "id": preset.pk, "name": preset.name, "owner": preset.owner.get_username(), "shared": preset.shared,
        "options": preset.options, "problems": presets.problems(preset, None),
    }


@presets_router.get("", response={200: list[PresetOut], 401: Problem}, url_name="presets", operation_id="preset_list",
                    summary="Presets you may use")
def preset_list(request: HttpRequest) -> Any:
    """Your presets and the lab's shared ones."""
    return [_preset_out(p) for p in presets.visible_to(request.user)]


@presets_router.post("", response={201: PresetOut, 400: FieldProblems, 401: Problem, 403: Problem, 404: Problem},
                     url_name="preset_create", operation_id="preset_create", summary="Save a preset")
def preset_create(request: HttpRequest, body: PresetIn) -> Any:
    """Save options as your preset `name` (replacing yours of that name). Sharing with the lab needs the
    `training.share_preset` permission (staff grant it)."""
    task = None
    if body.task:
        try:
            task = services.find_task(body.task, body.robot)
        except services.TaskNotFound as exc:
            raise HttpError(404, str(exc)) from None
    config = TrainingConfig.from_data(body.options, task=task, strict=True)
    try:
        preset, _ = presets.save(request.user, body.name, config, shared=body.shared)
    except presets.SharingNotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except ValueError as exc:
        raise ConfigError({"name": [str(exc)]}) from None
    return Status(201, _preset_out(preset))


@presets_router.delete("/{int:preset_id}", response={204: None, 401: Problem, 403: Problem, 404: Problem},
                       url_name="preset_delete", operation_id="preset_delete", summary="Delete a preset")
def preset_delete(request: HttpRequest, preset_id: int) -> Any:
    preset = get_object_or_404(Preset, pk=preset_id)
    if not presets.can_change(request.user, preset):
        raise PermissionDenied("only its owner or staff may delete a preset")
    preset.delete()
    return Status(204, None)


# -- sweeps -----------------------------------------------------------------------------------------
def _sweep_out(sweep: Sweep) -> dict[str, Any]:
    trials = list(sweep.trials.select_related("session").order_by("number"))
    return {
        "id": sweep.pk, "name": sweep.name, "task": sweep.task.name, "robot": sweep.task.robot,
        "method": sweep.method, "metric": sweep.metric, "maximize": sweeps.MAXIMIZE[Sweep.Metric(sweep.metric)],
        "status": sweep.status, "note": sweep.note, "seeds": sweep.seeds, "space": sweep.space, "base": sweep.base,
        "progress": sweeps.progress(sweep),
        "ranking": [
            {"setting": r.setting, "rank": r.rank, "params": r.params, "mean": r.mean, "std": r.std, "values": r.values,
             "trials": [t.number for t in r.trials]}
            for r in sweeps.ranking(sweep, trials)
        ],
        "trials": [
            {"number": t.number, "setting": t.setting, "seed": t.seed, "params": t.params, "session_id": t.session_id,
             "status": sweeps.trial_status(t, sweep), "value": t.value, "error": t.error}
            for t in trials
        ],
        "url": reverse("training:sweep", kwargs={"pk": sweep.pk}),
    }


@sweeps_router.post("", response={201: SweepOut, 400: FieldProblems, 401: Problem, 403: Problem, 404: Problem},
                    url_name="sweep_create", operation_id="sweep_create", summary="Start a sweep")
def sweep_create(request: HttpRequest, body: SweepIn) -> Any:
    """Plan a sweep of one task and queue its first trial (each trial is an ordinary session, one at a
    time). Needs the start permission; 400 names what does not validate."""
    try:
        task = services.find_task(body.task, body.robot)
    except services.TaskNotFound as exc:
        raise HttpError(404, str(exc)) from None
    permissions.require_can_start(request, task)
    base: Any = body.base
    if body.preset:
        try:
            preset = presets.find(body.preset, request.user)
        except presets.PresetNotFound as exc:
            raise HttpError(404, str(exc)) from None
        base = presets.config_for(preset, task, body.base, strict=True)
    sweep = sweeps.create(
        task, owner=request.user, method=body.method, metric=body.metric, space=body.space, seeds=body.seeds,
        budget=body.budget, base=base, name=body.name, random_seed=body.random_seed,
    )
    sweep.refresh_from_db()
    return Status(201, _sweep_out(sweep))


@sweeps_router.get("/{int:sweep_id}", response={200: SweepOut, 401: Problem, 404: Problem},
                   url_name="sweep", operation_id="sweep_get", summary="A sweep, its trials and its ranking")
def sweep_get(request: HttpRequest, sweep_id: int) -> Any:
    sweep = get_object_or_404(Sweep.objects.select_related("task"), pk=sweep_id)
    if sweep.is_running:
        sweeps.score(sweep)
    return _sweep_out(sweep)


@sweeps_router.post("/{int:sweep_id}/cancel", response={200: SweepOut, 401: Problem, 403: Problem, 404: Problem},
                    url_name="sweep_cancel", operation_id="sweep_cancel", summary="Cancel a sweep")
def sweep_cancel(request: HttpRequest, sweep_id: int) -> Any:
    """Its active trial is cancelled; trials not yet run never will be. Its owner and staff."""
    sweep = get_object_or_404(Sweep.objects.select_related("task"), pk=sweep_id)
    if not (request.user.is_staff or (sweep.owner_id is not None and sweep.owner_id == request.user.pk)):
        raise PermissionDenied("only the sweep's owner or staff may cancel it")
    return _sweep_out(sweeps.cancel(sweep, actor=services.actor_for(request.user)))


# -- workers and the queue --------------------------------------------------------------------------
@workers_router.get("", response={200: list[WorkerOut], 401: Problem}, url_name="workers", operation_id="worker_list",
                    summary="Workers: hosts, slots, figures and what they train")
def worker_list(request: HttpRequest) -> Any:
    found = []
    for entry in monitoring.workers():
        row = entry["worker"]
        found.append({
            "worker_id": row.worker_id, "hostname": row.hostname, "alive": entry["alive"], "queue": row.queue,
            "slots": row.slots, "busy_slots": row.busy_slots, "heartbeat_at": row.heartbeat_at.isoformat(),
            "cpu_count": row.cpu_count, "cpu_percent": row.cpu_percent, "load_1": row.load_1,
            "memory_total": row.memory_total, "memory_used": row.memory_used, "gpus": row.gpus,
            "gpu_note": row.gpu_note, "sessions": row.sessions,
        })
    return found


def _queue_out(queue: str) -> dict[str, Any]:
    places = queueing.plan(queue)
    sessions = TrainingSession.objects.select_related("task", "owner").in_bulk([p.session_id for p in places])
    return {"queue": queue, "sessions": [
        {"session_id": p.session_id, "task": sessions[p.session_id].task.name,
         "owner": sessions[p.session_id].owner.get_username() if sessions[p.session_id].owner_id else None,
         "position": p.position, "held": p.held}
        for p in places if p.session_id in sessions
    ]}


@queue_router.get("", response={200: QueueOut, 400: FieldProblems, 401: Problem}, url_name="queue",
                  operation_id="queue_get", summary="A queue in the order workers will claim it")
def queue_get(
    request: HttpRequest, queue: str = Query(services.DEFAULT_QUEUE, pattern=QUEUE_NAME, description="The queue's name."),
) -> Any:
    return _queue_out(queue)


@queue_router.post("/{int:session_id}/move", response={200: QueueOut, 400: FieldProblems, 401: Problem, 403: Problem,
                                                       404: Problem, 409: Problem},
                   url_name="queue_move", operation_id="queue_move", summary="Move a queued session (staff)")
def queue_move(request: HttpRequest, session_id: int, body: MoveIn) -> Any:
    if not request.user.is_staff:
        raise PermissionDenied("only staff may reorder the queue")
    session = get_object_or_404(TrainingSession, pk=session_id)
    try:
        session = queueing.move(session, body.to, actor=services.actor_for(request.user))
    except queueing.NotQueued as exc:
        return Status(409, {"detail": str(exc)})
    return _queue_out(session.queue)
