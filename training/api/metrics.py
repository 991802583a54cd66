"""The API of understanding runs (issue 13a): a skill run's TensorBoard metrics and a comparison of
sessions.

Routers added to the one `NinjaAPI` (`training/api/views.py`): same authentication and error
answers. A user sees only the sessions they may view (`training.permissions`); a run is seen
through its session. Reads come from `training.comparison`, as the pages' do.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from training import comparison, metrics, permissions
from training.api.schemas import FieldProblems, Problem
from training.models import SkillRun

runs_router = Router(tags=["metrics"])
compare_router = Router(tags=["metrics"])

SESSIONS_PATTERN = r"^[0-9]{1,18}(,[0-9]{1,18}){1,3}$"


# -- shapes -----------------------------------------------------------------------------------------
class RunTags(Schema):
    run_id: int
    session_id: int
    skill: str
    status: str
    tags: list[str] = Field(description="Every scalar tag in the run's TensorBoard files, sorted.")


class SeriesOut(Schema):
    run_id: int
    tag: str
    total_points: int = Field(description="Points the files hold; at most `max_points` are returned.")
    step: list[int] = Field(description="Frames (the tag's TensorBoard step).")
    wall_time: list[float] = Field(description="Seconds since the epoch when each point was written.")
    value: list[float | None] = Field(description="null where the trainer wrote NaN or infinity.")


class SeriesQuery(Schema):
    tag: str = Field(min_length=1, max_length=300, description="A tag from the run's `tags`.")
    max_points: int = Field(metrics.MAX_POINTS, ge=16, le=10_000,
                            description="Most points returned; longer series keep each bucket's first, last, min and max.")


class CompareQuery(Schema):
    sessions: str = Field(pattern=SESSIONS_PATTERN, description="2 to 4 session ids, separated by commas.")


class CompareSession(Schema):
    id: int
    task: str
    robot: str
    backend: str
    status: str
    owner: str | None
    created_at: str
    seconds: float | None = Field(description="Wall time from start to end (null while it runs).")
    frames: int = Field(description="Frames of all its skills.")


class ConfigRow(Schema):
    option: str
    label: str = Field(description="What the training form calls the option.")
    values: list[Any] = Field(description="One per session, in the order asked (null: not set).")
    differs: bool


class RunCell(Schema):
    run_id: int
    status: str
    seconds: float | None
    frames: int
    success_states: int
    success_rate: float | None
    best_reward: float | None
    stop_reason: str


class SkillRow(Schema):
    skill: str
    runs: list[RunCell | None] = Field(description="One per session (null: that session has no such skill).")


class ComparisonOut(Schema):
    sessions: list[CompareSession]
    config: list[ConfigRow]
    skills: list[SkillRow]
    urls: dict[str, str]


# -- access -----------------------------------------------------------------------------------------
def _get_run_for_viewer(request: HttpRequest, run_id: int) -> SkillRun:
    run = get_object_or_404(SkillRun.objects.select_related("skill"), pk=run_id)
    permissions.get_session_for_viewer(request, run.session_id)
    return run


# -- operations -------------------------------------------------------------------------------------
@runs_router.get("/{int:run_id}/metrics", response={200: RunTags, 401: Problem, 403: Problem, 404: Problem},
                 url_name="run_metrics", operation_id="run_metrics", summary="A skill run's metric tags")
def run_metrics(request: HttpRequest, run_id: int) -> Any:
    """Every scalar tag the run's trainer wrote to TensorBoard (rl-games' rewards, losses, fps, ...)."""
    run = _get_run_for_viewer(request, run_id)
    return {"run_id": run.pk, "session_id": run.session_id, "skill": run.skill.name, "status": run.status,
            "tags": comparison.run_tags(run)}


@runs_router.get("/{int:run_id}/metrics/series",
                 response={200: SeriesOut, 400: FieldProblems, 401: Problem, 403: Problem, 404: Problem},
                 url_name="run_series", operation_id="run_series", summary="One metric of a skill run")
def run_series(request: HttpRequest, run_id: int, query: Query[SeriesQuery]) -> Any:
    """The tag's points, downsampled on the server to at most `max_points` (extremes kept)."""
    run = _get_run_for_viewer(request, run_id)
    found = comparison.run_series(run, query.tag, query.max_points)
    if found is None:
        return Status(404, {"detail": f"run {run.pk} has no metric {query.tag!r}"})
    return {"run_id": run.pk, **found}


@compare_router.get("", response={200: ComparisonOut, 400: FieldProblems, 401: Problem, 403: Problem, 404: Problem},
                    url_name="compare", operation_id="compare", summary="Sessions side by side")
def compare(request: HttpRequest, query: Query[CompareQuery]) -> Any:
    """Two to four sessions: a config diff (`differs`), and per skill each session's run (status,
    time, frames, success states, final success rate, best reward, and the `run_id` whose metrics
    to overlay)."""
    from django.urls import reverse

    try:
        ids = comparison.parse_session_ids(query.sessions)
    except comparison.CompareError as exc:
        return Status(400, {"detail": "invalid request", "errors": {"sessions": [str(exc)]}})
    sessions = [permissions.get_session_for_viewer(request, pk) for pk in ids]
    page = reverse("training:compare") + "?sessions=" + ",".join(str(pk) for pk in ids)
    return {**comparison.compare(sessions), "urls": {"page": page}}
