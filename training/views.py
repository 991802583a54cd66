"""Training pages: configure and start a session, watch it, cancel or retry it, plus the small live
pieces other pages embed (the navigation indicator, the dashboard card, the task page's panel,
the task cards' badges and "Train selected").

Pages start and cancel through `training.services`, the verbs the API and `manage.py train` use,
read through `training.queries`, and render a session from `training.snapshots.progress_snapshot`,
the snapshot every SSE `progress` event carries, so the page, the API and the stream never
disagree. A start or cancel wakes this process's worker and relay through the verbs' signals.

Live progress: the progress dialog (or page) listens to the session's SSE stream
(`/api/tasks/<task>/training/progress/<id>`) with htmx's SSE extension, and on each event fetches
`_session_progress.html` from `session_progress`: what is shown is always read from the database,
so a missed, repeated or late event does no harm, and reopening shows the current state at once.

Each view renders a full page, or for htmx the partial it swaps. Dialogs load into
`#modal-root` (base.html); the same URLs work as plain pages without JavaScript.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from tasks.models import Task
from training import comparison, permissions, queries, services
from training.comparison import HistoryFilter
from training.config import ConfigError, TrainingConfig
from training.estimates import estimate_time
from training.explore_forms import HistoryForm
from training.forms import UNITS, BulkTrainForm, TrainingConfigForm, cli_command
from training.lab_forms import preset_config_form
from training.models import STAGE_ORDER, SessionStatus, TrainingSession
from training.snapshots import progress_snapshot

MODAL_TARGET = "modal-root"
CONFIG_FORM = "config-form"  # the dialog's form posts into itself
# Sent (HX-Trigger) after a start or cancel: the indicator, the dashboard card, the task panel and
# the task's card badge refresh at once instead of at their next poll.
TRAINING_CHANGED = "training-changed"
LOG_LINES = 80
CURVE_TAGS = ("success_states", "mean_reward")
SESSIONS_LISTED = 50


# -- access helpers ------------------------------------------------------------------------------
# Who may do what is decided in training.permissions (pages, API and stream share it): any
# signed-in user views; starting needs `training.start_training`; cancel and retry are for the
# session's owner and staff (retry also needs the start permission).
def _get_task(robot: str, name: str) -> Task:
    return get_object_or_404(Task, robot=robot, name=name)


def _get_task_to_start(request: HttpRequest, robot: str, name: str) -> Task:
    return permissions.require_can_start(request, _get_task(robot, name))


def _get_session_for_user(request: HttpRequest, pk: int) -> TrainingSession:
    """A session this user may watch: 404 if none, 403 if not allowed."""
    return permissions.get_session_for_viewer(request, pk)


def _get_session_to_cancel(request: HttpRequest, pk: int) -> TrainingSession:
    return permissions.require_can_cancel(request, _get_session_for_user(request, pk))


def _get_session_to_retry(request: HttpRequest, pk: int) -> TrainingSession:
    return permissions.require_can_resume(request, _get_session_for_user(request, pk))


# -- small helpers -------------------------------------------------------------------------------
def _in_modal(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and htmx.target == MODAL_TARGET


def _vary(response: HttpResponse) -> HttpResponse:
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def _changed(response: HttpResponse, *sessions: TrainingSession) -> HttpResponse:
    """Tell the page what changed: `training-changed` (with the task and session), and for each task
    `training-changed-<task id>`, which its panel and card badge listen to. (A per-task event name,
    not a `[detail.task==N]` trigger filter: htmx evaluates filters as code, which the CSP forbids.)"""
    for session in sessions:
        trigger_client_event(response, f"{TRAINING_CHANGED}-{session.task_id}", {"session": session.pk})
    if len(sessions) == 1:
        return trigger_client_event(response, TRAINING_CHANGED, {"task": sessions[0].task_id, "session": sessions[0].pk})
    return trigger_client_event(response, TRAINING_CHANGED, {"tasks": [s.task_id for s in sessions]})


# -- configure and start -------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def configure(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """The configuration dialog (or page); POST starts the session and shows its progress."""
    if request.method == "GET":
        task = _get_task(robot, name)
        from_preset = preset_config_form(request, task)  # `?preset=<id>`: the form as a preset saved it
        if from_preset is not None:
            form, _, _ = from_preset
        else:
            form = TrainingConfigForm(task=task, initial_config=_config_from(request, task))
        return _render_config(request, task, form)
    task = _get_task_to_start(request, robot, name)
    form = TrainingConfigForm(request.POST, task=task)
    if not form.is_valid():
        return _render_config(request, task, form, status=422)
    try:
        session = services.start_session(task, form.config, owner=request.user)  # type: ignore[arg-type]
    except ConfigError as exc:
        form.add_config_errors(exc)
        return _render_config(request, task, form, status=422)
    except services.SessionAlreadyActive as exc:
        return _render_config(request, task, form, status=409, already=exc.session)
    return _started(request, session)


def _config_from(request: HttpRequest, task: Task) -> TrainingConfig | None:
    """`?from=<session>`: the settings of one of this task's sessions, to change and run again."""
    raw = request.GET.get("from", "")
    if not raw.isdigit():
        return None
    session = task.training_sessions.filter(pk=int(raw)).first()
    if session is None:
        return None
    if session.config.get("flat"):
        # A flat baseline's settings (the hierarchy's whole budget as every skill's minimum) are
        # no hierarchical session's: start from the session it was the baseline of.
        base = session.config.get("baseline_of")
        session = task.training_sessions.filter(pk=base).first() if base else None
        if session is None:
            return None
    # Never repeat a deletion by accident: a retry keeps what the earlier run trained.
    return session.training_config().with_changes(new_run=False)


def _render_config(
    request: HttpRequest, task: Task, form: TrainingConfigForm, *, status: int = 200,
    already: TrainingSession | None = None,
) -> HttpResponse:
    if _in_modal(request):
        template = "training/_config_dialog.html"
    elif request.htmx and request.htmx.target == CONFIG_FORM:  # type: ignore[attr-defined]
        template = "training/_config_form.html"
    else:
        template = "training/configure.html"
    rows = queries.skill_status_rows(task)
    config = form.best_effort_config()
    context = {
        "task": task,
        "form": form,
        "status_rows": [row for row in rows if row["defined"]],
        "totals": queries.totals(rows),
        "estimate": estimate_time(task, config, rows),
        "cli": cli_command(task, config) if form.config is not None or not form.is_bound else "",
        # The running session: the one a start just collided with (409), else any active one.
        "active": already or queries.active_session(task),
        "in_dialog": template != "training/configure.html",
        "units": UNITS,
    }
    return _vary(render(request, template, context, status=status))


@require_GET
def estimate(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """The dialog's estimate and CLI line for the options as they are being typed (query string)."""
    task = _get_task(robot, name)
    form = TrainingConfigForm(request.GET, task=task)
    valid = form.is_valid()
    config = form.best_effort_config()
    rows = queries.skill_status_rows(task)
    context = {
        "task": task,
        "estimate": estimate_time(task, config, rows),
        "cli": cli_command(task, config) if valid else "",
    }
    return render(request, "training/_estimate.html", context)


def _started(request: HttpRequest, session: TrainingSession) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        response = _render_session(request, session, in_dialog=True, template="training/_session_dialog.html")
        retarget(response, f"#{MODAL_TARGET}")
        reswap(response, "innerHTML")
        return _changed(response, session)
    messages.success(request, f"Training of {session.task.name} is queued as session {session.pk}.")
    return redirect("training:session", pk=session.pk)


# -- one session ---------------------------------------------------------------------------------
@require_GET
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress dialog (htmx into the modal) or the session's full page."""
    session = _get_session_for_user(request, pk)
    in_dialog = _in_modal(request)
    template = "training/_session_dialog.html" if in_dialog else "training/session.html"
    return _vary(_render_session(request, session, in_dialog=in_dialog, template=template))


@require_GET
def session_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The live part of the progress view, fetched on every SSE `progress` event (or poll).

    `shown` is the state of the action buttons the client has; they are sent again (out of band)
    only when it changed, so a button is never replaced under a person's pointer.
    """
    session = _get_session_for_user(request, pk)
    in_dialog = request.GET.get("dialog") == "1"
    context = _progress_context(request, session, in_dialog=in_dialog)
    context["actions_oob"] = request.GET.get("shown") != context["actions_key"]
    return render(request, "training/_session_progress.html", context)


@require_http_methods(["GET", "POST"])
def session_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: a confirmation page (without JavaScript). POST: ask the session to stop."""
    session = _get_session_to_cancel(request, pk)
    if request.method == "GET":
        return render(request, "training/cancel_confirm.html", {"session": session})
    session = services.request_cancel(session, actor=services.actor_for(request.user))
    if request.htmx:  # type: ignore[attr-defined]
        in_dialog = request.GET.get("dialog") == "1"
        context = _progress_context(request, session, in_dialog=in_dialog)
        context["actions_oob"] = True
        return _changed(render(request, "training/_session_progress.html", context), session)
    messages.info(request, _cancel_message(session))
    return redirect("training:session", pk=session.pk)


def _cancel_message(session: TrainingSession) -> str:
    if session.status == SessionStatus.CANCELLED:
        return f"Session {session.pk} was cancelled."
    if session.is_terminal:
        return f"Session {session.pk} had already ended ({session.get_status_display().lower()})."
    return f"Session {session.pk} is stopping; completed skills and their success states are kept."


@require_POST
def session_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Resume the session as a new, linked session: skills it completed are not trained again."""
    previous = _get_session_to_retry(request, pk)
    try:
        session = _start_again(request, previous)
    except services.SessionAlreadyActive as exc:
        # Someone started it meanwhile: show that session instead.
        return _show_session(request, exc.session or previous)
    except (ConfigError, services.NotResumable) as exc:
        messages.error(request, f"Could not start {previous.task.name} again: {exc}")
        return _show_session(request, previous)
    if _in_modal(request):
        return _started(request, session)
    messages.success(request, f"Training of {session.task.name} started again as session {session.pk}.")
    return _show_session(request, session)


def _start_again(request: HttpRequest, previous: TrainingSession) -> TrainingSession:
    """The same resume as the API's and `train --resume`: a new session linked to this one, with its
    settings but never `new_run` (that would delete what the first run trained)."""
    return services.resume_session(previous, actor=services.actor_for(request.user), owner=request.user)


def _show_session(request: HttpRequest, session: TrainingSession) -> HttpResponse:
    if _in_modal(request):
        response = _render_session(request, session, in_dialog=True, template="training/_session_dialog.html")
        return _changed(response, session)
    url = reverse("training:session", kwargs={"pk": session.pk})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)  # type: ignore[attr-defined]


def _render_session(request: HttpRequest, session: TrainingSession, *, in_dialog: bool, template: str) -> HttpResponse:
    context = _progress_context(request, session, in_dialog=in_dialog)
    return render(request, template, context)


def _progress_context(request: HttpRequest, session: TrainingSession, *, in_dialog: bool) -> dict[str, Any]:
    """Everything the progress view shows, read from the database now."""
    snapshot = progress_snapshot(session)
    focus_runs = queries.focus_runs(session)
    focus = focus_runs[0] if focus_runs else None
    failed = session.status in (SessionStatus.FAILED, SessionStatus.INTERRUPTED)
    allowed = permissions.can_cancel(request.user, session)
    return {
        "session": session,
        "s": snapshot,
        "task": session.task,
        "in_dialog": in_dialog,
        "stages": _stages(snapshot),
        "focus": focus,
        # Curves and output of each skill training now (or of the last one that ran).
        "panels": [
            {
                "focus": run, "suffix": f"-{index}" if index else "",
                "curves": {tag: queries.curve_points(run, tag) for tag in CURVE_TAGS},
                "log": queries.log_tail(run, limit=LOG_LINES),
            }
            for index, run in enumerate(focus_runs)
        ] or [{"focus": None, "suffix": "", "curves": {}, "log": []}],
        "hints": queries.failure_hints(session) if failed else [],
        "may_cancel": allowed,
        "may_retry": permissions.can_resume(request.user, session),
        "actions_key": f"{session.status}:{int(session.cancel_requested_at is not None)}:{int(allowed)}",
        "settings_summary": _settings_summary(snapshot["config"]),
        "worker_slots": settings.GENHRL_WORKER_SLOTS,
    }


def _stages(snapshot: dict[str, Any]) -> list[dict[str, str]]:
    """The stepper: each stage done, current or to come; the last one carries the outcome."""
    current = STAGE_ORDER.index(snapshot["stage"])
    steps = []
    for index, stage in enumerate(STAGE_ORDER):
        if snapshot["terminal"] and stage == "complete":
            state = "done" if snapshot["status"] == SessionStatus.COMPLETED else snapshot["status"]
        elif index < current:
            state = "done"
        elif index == current:
            state = "current"
        else:
            state = "todo"
        steps.append({"name": str(stage), "label": stage.label, "state": state})
    return steps


def _settings_summary(config: dict[str, Any]) -> list[str]:
    cfg = TrainingConfig.from_json(config)
    parts = [
        f"{cfg.num_envs:,} envs",
        f"{cfg.min_success_states:,} success states",
        f"{cfg.max_time:g} min/skill",
        f"seed {cfg.seed}",
    ]
    if cfg.new_run:
        parts.append("new run")
    if not cfg.skip_complete:
        parts.append("retrain complete skills")
    if cfg.video:
        parts.append("videos")
    return parts


@require_GET
def sessions(request: HttpRequest) -> HttpResponse:
    """Every active session, and the history of all sessions: filtered, sorted, paginated, with a
    checkbox per row to compare 2-4 of them (issue 13a). Bad filters are shown and list nothing."""
    form = HistoryForm(request.GET or None)
    context: dict[str, Any] = {**queries.dashboard_context(), "form": form, "choices": comparison.history_choices()}
    if request.GET and not form.is_valid():
        return render(request, "training/sessions.html", {**context, "history": [], "page": None}, status=400)
    chosen = form.history_filter() if request.GET else HistoryFilter()
    page = Paginator(comparison.history_sessions(chosen), SESSIONS_LISTED).get_page(
        form.cleaned_data.get("page") if request.GET else 1)
    context.update({"history": page.object_list, "page": page, "query": form.query_without_page() if request.GET else "",
                    "filtered": chosen != HistoryFilter(), "compare_max": comparison.COMPARE_MAX})
    return render(request, "training/sessions.html", context)


@require_GET
def indicator(request: HttpRequest) -> HttpResponse:
    """The navigation's live count of active sessions (polled by every page)."""
    count = queries.active_count()
    page = urlsplit(getattr(request.htmx, "current_url_abs_path", None) or request.path).path  # type: ignore[attr-defined]
    context = {"active_count": count, "is_current": page.startswith(reverse("training:sessions"))}
    return render(request, "training/_nav_indicator.html", context)


@require_GET
def dashboard_card(request: HttpRequest) -> HttpResponse:
    """The dashboard's training card, polled; it also refreshes the "training now" number."""
    context = {**queries.dashboard_context(), "oob": True, "with_stat": request.GET.get("stat") == "1"}
    return render(request, "training/_active_sessions.html", context)


@require_GET
def task_panel(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """The task page's training panel; while a session is active it polls itself, and it
    refreshes the skill tree's status badges out of band."""
    task = _get_task(robot, name)
    return render(request, "training/_task_panel.html", {**queries.task_training_context(task), "oob": True})


@require_GET
def task_badge(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """A task card's training badge, and its button out of band ("Train" or "View progress"):
    refreshed on `training-changed-<task id>`, which a start from the page or the watcher sends."""
    task = queries.with_latest_session(_get_task(robot, name))
    return render(request, "training/_task_badge.html", {"task": task, "button_oob": True})


# At most this many tasks per watcher: a task list page shows far fewer.
WATCH_MAX_TASKS = 200
WATCH_STATE = re.compile(r"(\d{1,12}):(\d{1,12}):([a-z_]{0,20})")


@require_GET
def task_watch(request: HttpRequest) -> HttpResponse:
    """The watcher of a page that shows tasks' training state (task page, task list), polled every
    second: `?s=<task>:<session>:<status>~...` is what the page shows. 204 when nothing changed (one
    small query); else the watcher with the new state, and `training-changed-<task id>` (HX-Trigger)
    for each task that changed, which its panel, card badge and card button listen to. This is how a
    session started from a terminal, the API or another user reaches an open page within a second.
    """
    raw = request.GET.get("s", "")
    parts = [part for part in raw.split("~") if part]
    matches = [WATCH_STATE.fullmatch(part) for part in parts]
    if len(parts) > WATCH_MAX_TASKS or not all(matches):
        return HttpResponseBadRequest(
            f"s: expected up to {WATCH_MAX_TASKS} items <task id>:<session id>:<status> separated by ~",
            content_type="text/plain",
        )
    shown = {int(m.group(1)): f"{int(m.group(2))}:{m.group(3)}" for m in matches if m}
    now = queries.training_states(shown)
    changed = [pk for pk, state in shown.items() if pk in now and now[pk] != state]
    if not changed:
        return HttpResponse(status=204)
    response = render(request, "training/_task_watch.html", {"watch_state": _watch_param({**shown, **now})})
    for pk in changed:
        trigger_client_event(response, f"{TRAINING_CHANGED}-{pk}", {"task": pk})
    return trigger_client_event(response, TRAINING_CHANGED, {"tasks": changed})


def _watch_param(states: dict[int, str]) -> str:
    return "~".join(f"{pk}:{state}" for pk, state in sorted(states.items()))


@require_POST
def bulk_start(request: HttpRequest) -> HttpResponse:
    """Queue a session with default settings for each selected task; report what started.

    They run side by side or one after another as the workers' slots allow (GENHRL_WORKER_SLOTS).
    """
    form = BulkTrainForm(request.POST)
    started: list[TrainingSession] = []
    running: list[tuple[Task, TrainingSession | None]] = []
    refused: list[tuple[Task, str]] = []
    trained: list[Task] = []  # every skill already trained: nothing queued unless asked to retrain
    if form.is_valid():
        retrain = form.cleaned_data["retrain"]
        for task in form.tasks():
            if not permissions.can_start(request.user, task):
                refused.append((task, "you need the “start training” permission (the Researchers group)"))
                continue
            if not retrain and queries.active_session(task) is None:
                totals = queries.totals(queries.skill_status_rows(task))
                if totals["total"] and not totals["pending"]:
                    trained.append(task)
                    continue
            try:
                options = {"skip_complete": False} if retrain else {}
                started.append(services.start_session(task, options, owner=request.user))
            except services.SessionAlreadyActive as exc:
                running.append((task, exc.session))
            except ConfigError as exc:
                refused.append((task, str(exc)))
    context = {
        "form": form, "started": started, "running": running, "refused": refused, "trained": trained,
        "worker_slots": settings.GENHRL_WORKER_SLOTS,
        "badges": _badges_after(started, running),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return _changed(render(request, "training/_bulk_report.html", context), *started)
    _bulk_messages(request, started, running, refused, trained)
    return redirect("task_list")


def _badges_after(started: list[TrainingSession], running: list[tuple[Task, TrainingSession | None]]) -> list[Task]:
    tasks = []
    for session in started:
        task = session.task
        task.training_status, task.training_session_id = session.status, session.pk  # type: ignore[attr-defined]
        tasks.append(task)
    for task, session in running:
        if session is not None:
            task.training_status, task.training_session_id = session.status, session.pk  # type: ignore[attr-defined]
            tasks.append(task)
    return tasks


def _bulk_messages(
    request: HttpRequest,
    started: list[TrainingSession],
    running: list[tuple[Task, TrainingSession | None]],
    refused: list[tuple[Task, str]],
    trained: list[Task],
) -> None:
    """The "Train selected" report as messages, for the page without JavaScript."""
    if started:
        names = ", ".join(s.task.name for s in started)
        messages.success(request, f"Queued {len(started)} training session(s): {names}.")
    for task, session in running:
        where = f" (session {session.pk}, {session.status})" if session else ""
        messages.info(request, f"{task.name} is already training{where}.")
    for task, error in refused:
        messages.error(request, f"{task.name} was not started: {error}")
    if trained:
        names = ", ".join(task.name for task in trained)
        messages.info(request, f"Nothing to train in {names}: every skill is trained. Tick “Retrain” to train them again.")
    if not (started or running or refused or trained):
        messages.warning(request, "Select at least one task to train.")
