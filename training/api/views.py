"""The training API: status, start, cancel, resume and the live progress stream of a task.

Paths follow the product spec (`/api/tasks/{task_name}/training/...`). `robot` may be left out
when only one robot has a task of that name; task names are case-sensitive (GenHRL has case
twins). Each view reads: access helper (404/403), validate, call a verb of `training.services`,
answer. Who may do what is decided in `training.permissions` (any signed-in user views; starting
needs the `training.start_training` permission; cancel and resume are for the session's owner and
staff). The OpenAPI document is `/api/openapi.json`, its page `/api/docs`.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

import genhrl_site.converters  # noqa: F401  (registers the `name` path converter)
from tasks.models import Task
from training import permissions, presets, queries, services
from training.api import schemas
from training.api.auth import api_auth
from training.config import CLI_FLAGS, NOT_API_OPTIONS, ConfigError, TrainingConfig
from training.models import TrainingSession
from training.snapshots import progress_snapshot, session_urls, task_status
from training.sse import can_watch, progress_events

api = NinjaAPI(
    title="GenHRL Portal API",
    version="1",
    description=(
        "Train GenHRL skill hierarchies from scripts and pages. Authenticate with "
        "`Authorization: Bearer <token>` (`manage.py create_api_token USER`) or, from a browser, "
        "the session cookie plus the `X-CSRFToken` header on POST. Any signed-in user may read "
        "status and progress; starting needs the `training.start_training` permission (the "
        "Researchers group; staff implicitly); cancel and resume are for the session's owner and staff."
    ),
    auth=api_auth(),
    urls_namespace="api",
)

START_BODY = {
    "required": False,
    "content": {"application/json": {"schema": schemas.training_options_schema()}},
}


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event: its name and its `data`, a line of JSON of the given shape."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }


# Before OpenAPI 3.2's `itemSchema`, the `schema` of `text/event-stream` describes each event.
STREAM_RESPONSE = {
    200: {
        "description": (
            "`text/event-stream`. The current state at once as event `progress`, then one `progress` "
            "per change; each `data` is a JSON ProgressSnapshot. A session that ended sends its last "
            "`progress`, then `done` (`{session_id, status, error}`), and the stream closes. `notice` "
            "says the server lost (or found again) its database. Lines starting with `:` are "
            "keep-alive comments."
        ),
        "content": {
            "text/event-stream": {
                "schema": {
                    "title": "ProgressEvent",
                    "oneOf": [
                        _event("progress", {"$ref": "#/components/schemas/ProgressSnapshot"}),
                        _event("done", schemas.StreamDone.model_json_schema()),
                        _event("notice", schemas.StreamNotice.model_json_schema()),
                    ],
                }
            }
        },
    }
}


# -- errors ---------------------------------------------------------------------------------------
class BadParameters(ValueError):
    """A query parameter that cannot be used; `errors` maps it to its messages (answered 400)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(str(errors))


@api.exception_handler(BadParameters)
def _bad_query(request: HttpRequest, exc: BadParameters) -> HttpResponse:
    return api.create_response(request, {"detail": "invalid request", "errors": exc.errors}, status=400)


@api.exception_handler(ConfigError)
def _bad_options(request: HttpRequest, exc: ConfigError) -> HttpResponse:
    return api.create_response(request, {"detail": "invalid training options", "errors": exc.errors}, status=400)


@api.exception_handler(presets.PresetInvalid)
def _preset_invalid(request: HttpRequest, exc: presets.PresetInvalid) -> HttpResponse:
    # The preset, not the request, is what needs fixing: say so (its options as field messages).
    return api.create_response(request, {"detail": exc.detail, "errors": exc.errors}, status=400)


@api.exception_handler(NinjaValidationError)
def _bad_parameters(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    # Same 400 shape as bad options, rather than ninja's 422 list of pydantic errors.
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        field = str(error.get("loc", ["request"])[-1])
        errors.setdefault(field, []).append(str(error.get("msg", "invalid")))
    return api.create_response(request, {"detail": "invalid request", "errors": errors}, status=400)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja's own 400s (a body it cannot parse) get the same shape as every other 400.
    if exc.status_code == 400:
        return api.create_response(request, {"detail": "invalid request", "errors": {"body": [str(exc)]}}, status=400)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    # The access helpers in training.permissions raise Django's exception; say why, as JSON.
    return api.create_response(request, {"detail": str(exc) or "permission denied"}, status=403)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    # ninja's default hides the message unless DEBUG; ours name only what the client sent.
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = str(exc) if str(exc) != "Unauthorized" else "authentication required: a Bearer token or a session"
    response = api.create_response(request, {"detail": detail}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="genhrl"'
    return response


# -- access helpers -------------------------------------------------------------------------------
def _get_task(task_name: str, robot: str | None) -> Task:
    """The task by exact (case-sensitive) name; 404 if none, 400 if `robot` is needed to choose."""
    try:
        return services.find_task(task_name, robot)
    except services.TaskNotFound as exc:
        if exc.ambiguous:
            raise BadParameters({"robot": [str(exc)]}) from None
        raise HttpError(404, str(exc)) from None


def _get_session_to_watch(request: HttpRequest, task: Task, session_id: int) -> TrainingSession:
    """One of the task's sessions whose stream this user may read; 404 if not the task's, else 403.

    The stream also asks the channel manager (`sse.can_watch`), the single rule that every
    event stream obeys, so this endpoint can never be more open than django-eventstream's view.
    """
    session = permissions.get_session_for_viewer(request, session_id, task=task)
    if not can_watch(request.user, session.pk):
        raise PermissionDenied("you may not watch this session")
    return session


def _get_active_session_to_cancel(request: HttpRequest, task: Task) -> TrainingSession:
    """The task's active session if this user may stop it (its owner, or staff); 404 if none."""
    session = queries.active_session(task)
    if session is None:
        raise HttpError(404, f"task {task.name!r} has no queued or running session")
    return permissions.require_can_cancel(request, session)


def _get_session_to_resume(request: HttpRequest, task: Task) -> TrainingSession:
    """The task's latest session if it ended unfinished and this user may resume it.

    404 if there is none (or it completed); 403 if the user is neither its owner nor staff. The
    caller answers 409 first when the task is training, so this never sees an active session.
    """
    try:
        session = services.latest_resumable_session(task)
    except services.NotResumable as exc:
        raise HttpError(404, str(exc)) from None
    return permissions.require_can_resume(request, session)


def _already_training(exc: services.SessionAlreadyActive) -> Status:
    other = exc.session
    return Status(409, {
        "detail": str(exc),
        "session_id": other.pk if other else None,
        "status": other.status if other else None,
        "urls": session_urls(other) if other else None,
    })


def _started(session: TrainingSession) -> Status:
    snapshot = progress_snapshot(session.pk)
    return Status(201, {
        "session_id": session.pk,
        "status": snapshot["status"],
        "queue_position": snapshot["queue_position"],
        "urls": snapshot["urls"],
    })


def _options(request: HttpRequest) -> dict[str, Any]:
    """The start body as a dict; an empty body means every default."""
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a body nested thousands of levels deep.
        raise ConfigError({"body": ["must be a JSON object of training options"]}) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError({"body": ["must be a JSON object of training options"]})
    # A flat baseline is started from its hierarchical session (its page, or `manage.py train
    # --flat --baseline-of`); the start body takes the options it documents only.
    refused = {name: [f"not a start option of the API: use the session page or manage.py train {CLI_FLAGS[name]}"]
               for name in NOT_API_OPTIONS if name in data}
    if refused:
        raise ConfigError(refused)
    return data


# -- operations -----------------------------------------------------------------------------------
@api.get(
    "/tasks/{name:task_name}/training/status",
    response={200: schemas.TaskStatus, 400: schemas.FieldProblems, 401: schemas.Problem, 404: schemas.Problem},
    url_name="training_status",
    operation_id="training_status",
    summary="Training status of a task",
)
def training_status(request: HttpRequest, task_name: str, robot: str | None = None) -> Any:
    """The active session (if any), every skill's status and success states, and totals."""
    return task_status(_get_task(task_name, robot))


@api.post(
    "/tasks/{name:task_name}/training/start",
    response={
        201: schemas.Started,
        400: schemas.FieldProblems,
        401: schemas.Problem,
        403: schemas.Problem,
        404: schemas.Problem,
        409: schemas.AlreadyTraining,
    },
    url_name="training_start",
    operation_id="training_start",
    summary="Start training a task",
    openapi_extra={"requestBody": START_BODY},
)
def training_start(
    request: HttpRequest, task_name: str, robot: str | None = None,
    preset: str | None = Query(None, min_length=1, max_length=201, description="A preset: yours or shared, or OWNER/NAME."),
) -> Any:
    """Queue a session with the options in the JSON body (the same checks as `manage.py train`).

    With `preset` (yours or a shared one; `owner/name` for another's shared one), its options are the
    base and the body's go on top; a preset that no longer validates is answered 400 naming it.
    403 without the `training.start_training` permission; 409 if the task already has a queued,
    running or cancelling session. The caller becomes the session's owner.
    """
    task = permissions.require_can_start(request, _get_task(task_name, robot))
    if preset is not None:
        try:
            saved = presets.find(preset, request.user)
        except presets.PresetNotFound as exc:
            raise HttpError(404, str(exc)) from None
        config = presets.config_for(saved, task, _options(request), strict=True)
    else:
        config = TrainingConfig.from_data(_options(request), task=task, strict=True)
    try:
        session = services.start_session(task, config, owner=request.user)
    except services.SessionAlreadyActive as exc:
        return _already_training(exc)
    return _started(session)


@api.post(
    "/tasks/{name:task_name}/training/cancel",
    response={200: schemas.ProgressSnapshot, 400: schemas.FieldProblems, 401: schemas.Problem,
              403: schemas.Problem, 404: schemas.Problem},
    url_name="training_cancel",
    operation_id="training_cancel",
    summary="Cancel the task's active session",
)
def training_cancel(request: HttpRequest, task_name: str, robot: str | None = None) -> Any:
    """Ask the active session to stop: a queued one ends at once, a running one becomes `cancelling`.

    Only the session's owner and staff may (403 otherwise); 404 if nothing is queued or running.
    The trainer is stopped gracefully and keeps the success states it collected.
    """
    session = _get_active_session_to_cancel(request, _get_task(task_name, robot))
    session = services.request_cancel(session, actor=services.actor_for(request.user))
    return progress_snapshot(session.pk)


@api.post(
    "/tasks/{name:task_name}/training/resume",
    response={
        201: schemas.Started,
        400: schemas.FieldProblems,
        401: schemas.Problem,
        403: schemas.Problem,
        404: schemas.Problem,
        409: schemas.AlreadyTraining,
    },
    url_name="training_resume",
    operation_id="training_resume",
    summary="Resume the task's latest unfinished session",
)
def training_resume(request: HttpRequest, task_name: str, robot: str | None = None) -> Any:
    """Continue the task's latest failed, cancelled or interrupted session from the skills it finished.

    A new session with the same options is queued (linked to the old one; the caller owns it);
    completed skills are skipped, nothing is deleted. Only the old session's owner and staff may
    (403 otherwise), and they need the start permission; 404 if the latest session completed, was
    already resumed or there is none; 409 if the task is training now.
    """
    task = _get_task(task_name, robot)
    active = queries.active_session(task)
    if active is not None:
        return _already_training(services.SessionAlreadyActive(active))
    previous = _get_session_to_resume(request, task)
    try:
        # Whoever resumes owns the new session: they chose to spend the compute (as with start).
        session = services.resume_session(previous, actor=services.actor_for(request.user), owner=request.user)
    except services.SessionAlreadyActive as exc:
        return _already_training(exc)
    except services.NotResumable as exc:
        # Resumed by someone else between our read and now.
        raise HttpError(404, str(exc)) from None
    return _started(session)


@api.get(
    "/tasks/{name:task_name}/training/progress/{int:session_id}",
    response={400: schemas.FieldProblems, 401: schemas.Problem, 403: schemas.Problem, 404: schemas.Problem},
    url_name="training_progress",
    operation_id="training_progress",
    summary="Live progress of a session (Server-Sent Events)",
    openapi_extra={"responses": STREAM_RESPONSE},
)
def training_progress(request: HttpRequest, task_name: str, session_id: int, robot: str | None = None) -> Any:
    """`text/event-stream` of the session's snapshots, live from whichever process trains it."""
    session = _get_session_to_watch(request, _get_task(task_name, robot), session_id)
    response = StreamingHttpResponse(
        progress_events(session.pk, request.user.pk), content_type="text/event-stream"
    )
    # Proxies must neither cache nor buffer a live stream.
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# Issue 14's routers (presets, sweeps, workers, the queue): same authentication and error answers.
from training.api import lab  # noqa: E402  (after `api` and its handlers exist)

api.add_router("/presets", lab.presets_router)
api.add_router("/sweeps", lab.sweeps_router)
api.add_router("/workers", lab.workers_router)
api.add_router("/queue", lab.queue_router)

# Issue 13a's routers (a run's metrics, sessions side by side).
from training.api import metrics as metrics_api  # noqa: E402

api.add_router("/runs", metrics_api.runs_router)
api.add_router("/compare", metrics_api.compare_router)
