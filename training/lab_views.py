"""Pages for running a lab on the portal (issue 14): presets, sweeps, the Workers page, the queue
(with its staff controls) and notification settings, plus the session page's lab panel (resource
curves, and which sweep a trial belongs to).

Same shape as `training/views.py`: access helper, form, verb of a domain module, respond; the live
parts are partials that poll themselves while there is something to watch.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tasks.models import Task
from training import monitoring, notifications, permissions, presets, queries, queueing, services, sweeps
from training.config import ConfigError
from training.forms import TrainingConfigForm
from training.lab_forms import (
    PRESET_PREFIX,
    LimitForm,
    NotificationForm,
    PresetSaveForm,
    QueueMoveForm,
    SweepForm,
)
from training.lab_models import Preset, Sweep, SweepTrial
from training.models import SessionStatus, TrainingSession
from training.templatetags.lab import preset_bar_context

COMPARE_MAX = 8


# -- access helpers ------------------------------------------------------------------------------
def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("only staff may change the queue")


def _get_preset_to_change(request: HttpRequest, pk: int) -> Preset:
    preset = get_object_or_404(Preset.objects.select_related("owner"), pk=pk)
    if not presets.can_change(request.user, preset):
        raise PermissionDenied("only its owner or staff may change a preset")
    return preset


def _get_sweep(pk: int) -> Sweep:
    return get_object_or_404(Sweep.objects.select_related("task", "owner"), pk=pk)


def _get_sweep_to_cancel(request: HttpRequest, pk: int) -> Sweep:
    sweep = _get_sweep(pk)
    if not (request.user.is_staff or (sweep.owner_id is not None and sweep.owner_id == request.user.pk)):
        raise PermissionDenied("only the sweep's owner or staff may cancel it")
    return sweep


def _partial(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted  # type: ignore[attr-defined]


# -- presets -------------------------------------------------------------------------------------
@require_GET
def preset_list(request: HttpRequest) -> HttpResponse:
    """Your presets and the lab's shared ones, each with what (if anything) no longer validates."""
    rows = [
        {"preset": p, "problems": presets.problems(p, None), "summary": presets.summary(p),
         "may_change": presets.can_change(request.user, p)}
        for p in presets.visible_to(request.user)
    ]
    return render(request, "training/presets.html", {"rows": rows, "can_share": presets.can_share(request.user)})


@require_POST
def preset_save(request: HttpRequest, robot: str, name: str) -> HttpResponse:
    """"Save as preset" in the training dialog: the form's options under a name."""
    task = get_object_or_404(Task, robot=robot, name=name)
    form = TrainingConfigForm(request.POST, task=task)
    save_form = PresetSaveForm(request.POST, prefix=PRESET_PREFIX)
    error = ""
    preset = None
    if not form.is_valid() or form.config is None:
        error = "Fix the highlighted settings first: a preset saves valid settings only."
    elif not save_form.is_valid():
        error = "; ".join(str(m) for messages_ in save_form.errors.values() for m in messages_)
    else:
        try:
            preset, created = presets.save(
                request.user, save_form.cleaned_data["name"], form.config, shared=save_form.cleaned_data["shared"],
            )
        except (ValueError, presets.SharingNotAllowed) as exc:
            error = str(exc)
    if request.htmx:  # type: ignore[attr-defined]
        context = preset_bar_context(request.user, task, selected=preset, saved=preset, save_error=error)
        return render(request, "training/_preset_bar.html", context, status=422 if error else 200)
    if error:
        messages.error(request, f"Preset not saved: {error}")
        return redirect("training:configure", robot=robot, name=name)
    assert preset is not None
    messages.success(request, f"Saved preset {preset}.")
    return redirect(reverse("training:configure", kwargs={"robot": robot, "name": name}) + f"?preset={preset.pk}")


@require_POST
def preset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    preset = _get_preset_to_change(request, pk)
    label = str(preset)
    preset.delete()
    messages.success(request, f"Deleted preset {label}.")
    return redirect("training:presets")


@require_POST
def preset_share(request: HttpRequest, pk: int) -> HttpResponse:
    """Share a preset with the lab, or take it back (needs the share permission to share)."""
    preset = _get_preset_to_change(request, pk)
    shared = request.POST.get("shared") == "1"
    try:
        presets.set_shared(preset, shared, by=request.user)
    except presets.SharingNotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Preset {preset.name} is {'shared with the lab' if shared else 'yours only'} now.")
    return redirect("training:presets")


# -- sweeps --------------------------------------------------------------------------------------
@require_GET
def sweep_list(request: HttpRequest) -> HttpResponse:
    rows = [{"sweep": s, "progress": sweeps.progress(s)} for s in sweeps.visible()[:100]]
    return render(request, "training/sweeps.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def sweep_new(request: HttpRequest) -> HttpResponse:
    """The new-sweep form; POST checks it, plans the trials and queues the first."""
    if request.method == "GET":
        initial: dict[str, Any] = {}
        if request.GET.get("task", "").isdigit():
            initial["task"] = int(request.GET["task"])
        form = SweepForm(user=request.user, initial=initial)
        return render(request, "training/sweep_new.html", {"form": form})
    form = SweepForm(request.POST, user=request.user)
    if form.is_valid():
        task = permissions.require_can_start(request, form.cleaned_data["task"])
        try:
            sweep = sweeps.create(
                task, owner=request.user, method=form.cleaned_data["method"], metric=form.cleaned_data["metric"],
                space=form.space, seeds=form.seed_list, budget=form.cleaned_data.get("budget") or 0,
                base=form.base_options(), name=form.cleaned_data.get("name") or "",
            )
        except ConfigError as exc:
            form.add_sweep_errors(exc)
        else:
            messages.success(request, f"Sweep {sweep.pk} planned; its first trial is queued.")
            return redirect("training:sweep", pk=sweep.pk)
    return render(request, "training/sweep_new.html", {"form": form}, status=422)


def _sweep_context(request: HttpRequest, sweep: Sweep) -> dict[str, Any]:
    trials = list(sweep.trials.select_related("session").order_by("number"))
    ranked = sweeps.ranking(sweep, trials)
    return {
        "sweep": sweep,
        "ranking": ranked,
        "trials": [{"trial": t, "status": sweeps.trial_status(t, sweep)} for t in trials],
        "progress": sweeps.progress(sweep),
        "space": [(name, sweeps.describe(spec)) for name, spec in sweep.space.items()],
        "may_cancel": sweep.is_running and (request.user.is_staff or sweep.owner_id == request.user.pk),
        "maximize": sweeps.MAXIMIZE[Sweep.Metric(sweep.metric)],
    }


@require_GET
def sweep_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A sweep: its trials ranked by its metric (mean and spread over seeds), live while it runs."""
    sweep = _get_sweep(pk)
    if sweep.is_running:
        sweeps.score(sweep)  # a trial that just ended shows its result at once
    template = "training/_sweep_live.html" if _partial(request) else "training/sweep.html"
    return render(request, template, _sweep_context(request, sweep))


@require_POST
def sweep_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    sweep = _get_sweep_to_cancel(request, pk)
    sweeps.cancel(sweep, actor=services.actor_for(request.user))
    messages.info(request, f"Sweep {sweep.pk} cancelled; trials that ran keep their results.")
    return redirect("training:sweep", pk=sweep.pk)


@require_GET
def sweep_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Chosen trials of a sweep side by side: settings, results, and each trial's root-skill curve."""
    sweep = _get_sweep(pk)
    numbers = [int(n) for n in request.GET.getlist("trial") if n.isdigit()][:COMPARE_MAX]
    chosen = list(sweep.trials.filter(number__in=numbers).select_related("session").order_by("number"))
    columns = []
    for trial in chosen:
        session = trial.session
        runs = list(session.skill_runs.select_related("skill").order_by("order")) if session else []
        root = next((r for r in runs if r.skill.name == sweep.task.root_skill), runs[-1] if runs else None)
        columns.append({
            "trial": trial, "session": session, "runs": runs, "root": root,
            "frames": sum(r.frames for r in runs),
            "curve": queries.curve_points(root, "mean_reward") if root else [],
            "status": sweeps.trial_status(trial, sweep),
        })
    params = list(sweep.space)
    return render(request, "training/sweep_compare.html", {"sweep": sweep, "columns": columns, "params": params})


# -- workers and the queue -----------------------------------------------------------------------
@require_GET
def workers(request: HttpRequest) -> HttpResponse:
    """Every worker's host, slots, what it trains and its figures; the list refreshes itself."""
    context = {"workers": monitoring.workers()}
    template = "training/_workers_live.html" if _partial(request) else "training/workers.html"
    return render(request, template, context)


# Rows listed per queue: the front of the queue, which is what moves next; a big sweep or batch
# queues hundreds, and the page (polled every 5 s) stays bounded by what it shows.
QUEUE_PAGE_ROWS = 100
QUEUE_AT_WORK_SHOWN = 8


def _queue_context(request: HttpRequest) -> dict[str, Any]:
    waiting = dict(
        TrainingSession.objects.filter(status=SessionStatus.QUEUED).order_by()
        .values("queue").annotate(n=Count("pk")).values_list("queue", "n")
    )
    queues = sorted(set(waiting) | {services.DEFAULT_QUEUE})
    plans = {queue: queueing.plan(queue, limit=QUEUE_PAGE_ROWS) for queue in queues}
    ids = [p.session_id for places in plans.values() for p in places]
    # Without the task's JSON columns.
    sessions = TrainingSession.objects.select_related("task", "owner").defer(*queries.TASK_BULK).in_bulk(ids)
    trials = {t.session_id: t for t in SweepTrial.objects.filter(session_id__in=ids).select_related("sweep")}
    listed = []
    for queue in queues:
        rows = [{"place": p, "session": sessions.get(p.session_id), "trial": trials.get(p.session_id)}
                for p in plans[queue]]
        rows = [r for r in rows if r["session"] is not None]
        # What the first in line waits behind: the queue's sessions at work now (the first few).
        at_work = list(
            TrainingSession.objects.filter(queue=queue, status__in=[SessionStatus.RUNNING, SessionStatus.CANCELLING])
            .select_related("task", "owner").defer(*queries.TASK_BULK).order_by("started_at", "pk")[:QUEUE_AT_WORK_SHOWN + 1]
        )
        listed.append({"name": queue, "rows": rows, "waiting": waiting.get(queue, 0),
                       "more": max(0, waiting.get(queue, 0) - len(rows)),
                       "at_work": at_work[:QUEUE_AT_WORK_SHOWN], "at_work_more": len(at_work) > QUEUE_AT_WORK_SHOWN})
    running = queueing.running_counts()
    return {
        "queues": listed,
        "default_limit": queueing.default_limit(),
        "limits": [{"row": row, "running": running[row.user_id]} for row in queueing.limit_rows()],
        "is_staff": request.user.is_staff,
    }


@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    """The queues in claim order (held sessions marked); staff reorder them and set limits here."""
    template = "training/_queue_live.html" if _partial(request) else "training/queue.html"
    return render(request, template, _queue_context(request))


@require_POST
def queue_move(request: HttpRequest, pk: int) -> HttpResponse:
    _require_staff(request)
    session = get_object_or_404(TrainingSession, pk=pk)
    form = QueueMoveForm(request.POST)
    if form.is_valid():
        try:
            queueing.move(session, form.cleaned_data["to"], actor=services.actor_for(request.user))
        except queueing.NotQueued as exc:
            messages.error(request, str(exc))
    if _partial(request):
        return render(request, "training/_queue_live.html", _queue_context(request))
    return redirect("training:queue")


@require_POST
def queue_limit(request: HttpRequest) -> HttpResponse:
    """Set (or remove) a user's limit of sessions at once, or everyone's default (staff)."""
    _require_staff(request)
    form = LimitForm(request.POST)
    actor = services.actor_for(request.user)
    if not form.is_valid():
        messages.error(request, "; ".join(str(m) for errors in form.errors.values() for m in errors))
    elif form.cleaned_data["remove"] and form.cleaned_data["username"] is not None:
        queueing.clear_limit(form.cleaned_data["username"], actor=actor)
        messages.success(request, f"{form.cleaned_data['username']} follows the default limit again.")
    elif form.cleaned_data["max_running"] is None:
        messages.error(request, "Give how many sessions at once (0: no limit).")
    else:
        user = form.cleaned_data["username"]
        queueing.set_limit(user, form.cleaned_data["max_running"], actor=actor)
        who = user.get_username() if user is not None else "Everyone"
        messages.success(request, f"{who}: at most {form.cleaned_data['max_running'] or 'unlimited'} session(s) at once.")
    return redirect("training:queue")


# -- notifications -------------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Your choice of being told when your sessions end, and the latest messages sent to you."""
    current = notifications.settings_for(request.user)
    if request.method == "POST":
        form = NotificationForm(request.POST)
        if form.is_valid():
            notifications.save_settings(request.user, **form.cleaned_data)
            messages.success(request, "Notification settings saved.")
            return redirect("training:notifications")
        status = 422
    else:
        form = NotificationForm(initial={
            "email": current.email, "webhook_url": current.webhook_url,
            "on_completed": current.on_completed if current.pk else True,
            "on_failed": current.on_failed if current.pk else True,
        })
        status = 200
    context = {"form": form, "recent": notifications.recent_for(request.user), "address": request.user.email}
    return render(request, "training/notifications.html", context, status=status)


# -- the session page's lab panel ------------------------------------------------------------------
@require_GET
def session_lab(request: HttpRequest, pk: int) -> HttpResponse:
    """A session's trainers' resource curves and, for a sweep trial, its sweep (polled while active)."""
    session = permissions.get_session_for_viewer(request, pk)
    context = {
        "session": session,
        "resources": monitoring.session_resources(session),
        "trial": sweeps.of_session(session),
    }
    return render(request, "training/_session_lab.html", context)
