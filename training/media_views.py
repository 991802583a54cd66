"""Issue 13b's pages: a session's videos, downloads and flat baseline; a task's policies and
evaluations. Videos are served with HTTP range requests (seeking works); archives are zips
streamed as they are built. Every file is looked up inside its run, skill or evaluation folder
(training/artifacts.py, training/evaluations.py), never built from a name in the URL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from tasks.models import Skill, Task
from training import artifacts, evaluations, paths, permissions, services
from training.config import ConfigError
from training.eval_models import Evaluation
from training.models import SessionStatus, SkillRun

# Each position has at most 18 digits: a longer one cannot be a position in any file, and Python
# refuses to parse a number of thousands of digits (a 500 otherwise).
RANGE = re.compile(r"bytes=(\d{1,18})?-(\d{1,18})?")
VIDEOS_SHOWN = 24  # newest first; a long run records hundreds
CHUNK = 256 * 1024


# -- streamed bodies ----------------------------------------------------------------------------------
def _streamed(request: HttpRequest, chunks: Iterator[bytes]) -> Iterator[bytes] | AsyncIterator[bytes]:
    """`chunks` as the body of a StreamingHttpResponse that really streams.

    Under ASGI (daphne), Django turns a plain iterator into a list before the first byte goes out:
    a big zip or video would be built whole in memory, and a client that leaves would not stop
    it. So there each chunk is pulled in a worker thread by an async iterator, one at a time, and
    the producer is closed when the client goes away. Under WSGI the iterator is served as it is.
    """
    if not isinstance(request, ASGIRequest):
        return chunks

    async def pull() -> AsyncIterator[bytes]:
        step = sync_to_async(next, thread_sensitive=False)
        try:
            while (chunk := await step(chunks, None)) is not None:
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await sync_to_async(close, thread_sensitive=False)()

    return pull()


def _file_chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


# -- byte ranges --------------------------------------------------------------------------------------
def _ranged_file(request: HttpRequest, path: Path, content_type: str) -> HttpResponse:
    """The file, or the one byte range asked for (206 + Content-Range; 416 if unsatisfiable).

    Django has no Range support of its own for views; one range is what browsers send when a
    person seeks a <video>. A header that is not one valid range (several ranges, `bytes=10-5`)
    is ignored and the whole file sent, as RFC 9110 allows.
    """
    size = path.stat().st_size
    header = request.headers.get("Range", "").strip()
    match = RANGE.fullmatch(header) if header else None
    start, end, status = 0, size - 1, 200
    if match is not None and (match[1] or match[2]):
        if match[1]:
            first = int(match[1])
            if match[2] is None or int(match[2]) >= first:  # else: not a valid range, ignored
                start, end, status = first, min(int(match[2]), size - 1) if match[2] else size - 1, 206
        else:  # a suffix: the last N bytes
            start, end, status = max(size - int(match[2]), 0), size - 1, 206
            if int(match[2]) == 0:
                start = size  # nothing to send: unsatisfiable
        if status == 206 and start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
    length = max(end - start + 1, 0)
    response = StreamingHttpResponse(_streamed(request, _file_chunks(path, start, length)), status=status,
                                     content_type=content_type)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    return response


def _zip_response(request: HttpRequest, entries: list[tuple[str, Path]], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_streamed(request, artifacts.zip_stream(entries)), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


# -- a session ---------------------------------------------------------------------------------------
@require_GET
def session_media(request: HttpRequest, pk: int) -> HttpResponse:
    """The session page's videos, downloads and flat-baseline part (loaded after the page)."""
    session = permissions.get_session_for_viewer(request, pk)
    config = session.config or {}
    flats = list(session.task.training_sessions.filter(config__baseline_of=session.pk).order_by("-created_at")[:5])
    for flat in flats:
        flat.compare_url = compare_url(session.pk, flat.pk)  # type: ignore[attr-defined]
    videos = artifacts.session_videos(session)
    context = {
        "session": session,
        "videos": videos[:VIDEOS_SHOWN],
        "videos_hidden": max(len(videos) - VIDEOS_SHOWN, 0),
        "has_logs": bool(artifacts.tensorboard_runs([session])),
        "is_flat": bool(config.get("flat")),
        "baseline_of": config.get("baseline_of"),
        "may_train_flat": (
            session.status == SessionStatus.COMPLETED and not config.get("flat")
            and session.backend == "embedded" and permissions.can_start(request.user, session.task)
            and session.task.skills.filter(name=session.task.root_skill, is_primitive=False).exists()
            and not services.flat_budget_problem(session)
        ),
        "flat_baselines": flats,
        "compare_url": compare_url(config["baseline_of"], session.pk) if config.get("baseline_of") else "",
    }
    return render(request, "training/_session_media.html", context)


def compare_url(*session_ids: int) -> str:
    """The comparison page of these sessions."""
    return f"{reverse('training:compare')}?sessions={','.join(str(int(i)) for i in session_ids)}"


@require_GET
def run_video(request: HttpRequest, pk: int, folder: str, name: str) -> HttpResponse:
    run = get_object_or_404(SkillRun.objects.select_related("session"), pk=pk)
    permissions.get_session_for_viewer(request, run.session_id)
    path = artifacts.video_file(run, folder, name)
    if path is None:
        raise Http404("this run recorded no such video")
    return _ranged_file(request, path, "video/mp4")


@require_GET
def session_logs(request: HttpRequest, pk: int) -> HttpResponse:
    """The session's TensorBoard logs (each run's `summaries/`) as one zip, one folder per run."""
    session = permissions.get_session_for_viewer(request, pk)
    runs = artifacts.tensorboard_runs([session])
    if not runs:
        raise Http404("this session wrote no TensorBoard logs")
    return _zip_response(request, runs, artifacts.safe_archive_name(f"s{session.pk}", session.task.name, "tensorboard"))


@require_POST
def train_flat(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a flat baseline of this (completed, hierarchical) session: its settings, budget and seed."""
    session = permissions.get_session_for_viewer(request, pk)
    permissions.require_can_start(request, session.task)
    config = session.training_config().with_changes(flat=True, baseline_of=session.pk, new_run=False)
    try:
        started = services.start_session(session.task, config, owner=request.user, actor=services.actor_for(request.user))
    except ConfigError as exc:
        messages.error(request, f"Could not start a flat baseline: {exc}")
        return _go(request, reverse("training:session", kwargs={"pk": session.pk}))
    except services.SessionAlreadyActive as exc:
        messages.error(request, f"{session.task.name} is training already ({exc}); try again when it ends.")
        return _go(request, reverse("training:session", kwargs={"pk": session.pk}))
    messages.success(request, f"Flat baseline of session {session.pk} started as session {started.pk}.")
    return _go(request, reverse("training:session", kwargs={"pk": started.pk}))


def _go(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if getattr(request, "htmx", False) else redirect(url)


# -- a task's policies and evaluations ---------------------------------------------------------------
def _task(robot: str, name: str) -> Task:
    return get_object_or_404(Task, robot=robot, name=name)


@require_GET
def task_policies(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """The task page's "Policies" card: download, Evaluate, the latest evaluation of each skill."""
    return _policies(request, _task(robot, name))


def _policies(request: HttpRequest, task: Task) -> HttpResponse:
    latest = evaluations.latest_by_skill(task)
    rows = [
        {"skill": skill, "has_policy": paths.has_policy(skill), "evaluation": latest.get(skill.pk)}
        for skill in task.skills.filter(defined=True).order_by("order")
    ]
    context = {
        "task": task, "rows": rows, "may_evaluate": permissions.can_start(request.user, task),
        "any_active": any(r["evaluation"] is not None and r["evaluation"].is_active for r in rows),
        "episodes": evaluations.DEFAULT_EPISODES, "max_episodes": evaluations.MAX_EPISODES,
    }
    return render(request, "training/_task_policies.html", context)


@require_GET
def skill_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """The skill's published policy folder as a zip."""
    skill = get_object_or_404(Skill.objects.select_related("task"), pk=pk)
    if not permissions.can_view(request.user):
        raise Http404
    if not paths.has_policy(skill):
        raise Http404(f"{skill.name} has no published policy")
    folder = paths.policy_dir(skill)
    label = f"{skill.task.name}-{skill.name}-policy"
    return _zip_response(request, [(artifacts.safe_archive_name(label)[:-4], folder)], artifacts.safe_archive_name(label))


@require_POST
def evaluate_skill(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue an evaluation of the skill's policy and run it in a background process."""
    skill = get_object_or_404(Skill.objects.select_related("task"), pk=pk)
    task = permissions.require_can_start(request, skill.task)
    back = task.get_absolute_url()
    if task.backend != "embedded":
        messages.error(request, "Evaluate from the page runs on the embedded backend; use manage.py evaluate on the GPU host.")
        return _go(request, back)
    try:
        evaluation = evaluations.request_evaluation(
            skill, episodes=request.POST.get("episodes", evaluations.DEFAULT_EPISODES), video=True,
            owner=request.user, actor=services.actor_for(request.user),
        )
        evaluations.start_in_background(evaluation)
    except evaluations.EvaluationError as exc:
        messages.error(request, f"Could not evaluate {skill.name}: {exc}")
        return _go(request, back)
    if getattr(request, "htmx", False):
        return _policies(request, task)
    messages.success(request, f"Evaluating {skill.name} ({evaluation.episodes} episodes) in the background.")
    return redirect(back)


@require_GET
def evaluation_video(request: HttpRequest, pk: int) -> HttpResponse:
    evaluation = get_object_or_404(Evaluation.objects.select_related("skill__task"), pk=pk)
    if not permissions.can_view(request.user):
        raise Http404
    path = evaluations.video_path(evaluation)
    if path is None or evaluation.status != Evaluation.Status.COMPLETED:
        raise Http404("this evaluation has no video")
    return _ranged_file(request, path, "video/mp4")
