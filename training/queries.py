"""Read-only questions about training, for pages, the API, commands and the engine.

Every function here reads; none writes. A page or a command that needs training data asks here
(never another page's module), so the `tasks` pages, the training pages, `manage.py status` and
the status API show the same rows. Queries are bounded by what they return, not by how much
history the database holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber

from tasks.models import Task
from training import outcomes, paths, queueing
from training.config import TrainingConfig, backend_problem
from training.models import LogLine, MetricPoint, SessionStatus, SkillRun, SkillStatus, TrainingSession

# A task's JSON columns (its scene and skill tree) are large and no list of sessions shows them.
TASK_BULK = ("task__object_config", "task__hierarchy", "task__warnings", "task__description")
CURVE_POINTS = 240  # per curve on a page: more is not visible in 640 pixels
RECENT_RESULTS = 6
ACTIVE_LISTED = 8  # active sessions listed on the dashboard card and the Training page; the rest counted


def active_session(task: Task) -> TrainingSession | None:
    """The task's queued, running or cancelling session, if any (there is at most one)."""
    return task.training_sessions.filter(status__in=SessionStatus.active()).first()


def _default_min_success_states(task: Task) -> int:
    session = task.training_sessions.latest_state()
    if session is not None:
        return int(session.config.get("min_success_states", TrainingConfig.min_success_states))
    return TrainingConfig.min_success_states


# -- a task's skills --------------------------------------------------------------------------------
def skill_status_rows(task: Task) -> list[dict[str, Any]]:
    """One row per skill of `task`, in training order, for `manage.py status` and the status API.

    Keys: `skill`, `skill_id`, `order`, `level`, `kind` ("primitive"/"composite"), `is_primitive`,
    `defined`, `status`, `success_states` (counted on disk now), `unreadable_files` (state files
    that could not be read safely, so not counted: see `training.trainer.safeload`),
    `min_success_states` (of the
    active, else latest, session; else the default 50), `has_policy`, `last_run_at` (datetime or
    None), `last_result` (the latest run's status or None), `last_error` (first line or ""),
    `last_session_id`, `last_run_elapsed_s` (seconds the latest run trained, or None), `todo_reason`
    (why a skill with enough success states or a policy still needs training, else "").

    `status` is `training`/`pending` while an active session holds the skill; otherwise
    `completed` when there are enough success states and a policy, else the latest run's
    `failed`/`cancelled`, else `pending`; `undefined` for a sub-skill that is named but never
    defined (it cannot be trained).
    """
    minimum = _default_min_success_states(task)
    active = active_session(task)
    # A flat baseline's run of the root (in its own workspace) is not the root's last run.
    counted = task.training_sessions.task_state()
    latest_run = SkillRun.objects.filter(skill=OuterRef("pk"), session__in=counted).order_by("-pk").values("pk")[:1]
    skills = list(task.skills.order_by("order", "pk").annotate(latest_run_id=Subquery(latest_run)))
    runs = SkillRun.objects.in_bulk([s.latest_run_id for s in skills if s.latest_run_id])
    rows = []
    for skill in skills:
        run = runs.get(skill.latest_run_id) if skill.latest_run_id else None
        count, unreadable = paths.success_states_detail(paths.success_dir(skill))
        policy = paths.has_policy(skill)
        if not skill.defined:
            status = "undefined"
        elif active is not None and run is not None and run.session_id == active.pk and run.is_active:
            status = run.status
        elif count >= minimum and policy:
            status = SkillStatus.COMPLETED.value
        elif run is not None and run.status in (SkillStatus.FAILED, SkillStatus.CANCELLED):
            status = str(run.status)
        else:
            status = SkillStatus.PENDING.value
        rows.append({
            "skill": skill.name,
            "skill_id": skill.pk,
            "order": skill.order,
            "level": skill.level,
            "kind": skill.kind,
            "is_primitive": skill.is_primitive,
            "defined": skill.defined,
            "status": status,
            "success_states": count,
            "unreadable_files": unreadable,
            "min_success_states": minimum,
            "has_policy": policy,
            "last_run_at": (run.finished_at or run.started_at) if run else None,
            "last_result": str(run.status) if run else None,
            "last_error": run.error.splitlines()[0] if run and run.error else "",
            "last_session_id": run.session_id if run else None,
            "last_run_elapsed_s": round(run.elapsed_seconds, 1) if run and run.elapsed_seconds else None,
            "todo_reason": _todo_reason(skill.defined, status, count, minimum, policy),
        })
    return rows


def _todo_reason(defined: bool, status: str, count: int, minimum: int, policy: bool) -> str:
    """Why a skill still counts as "to train" although it may look done (e.g. "54/50"), or ""."""
    if not defined or status in (SkillStatus.COMPLETED, SkillStatus.TRAINING):
        return ""
    if count >= minimum and not policy:
        return "has enough success states but no published policy (its last run did not finish)"
    if policy and count < minimum:
        return f"has a policy but {minimum - count} success states too few"
    return ""


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Trainable skills of `skill_status_rows`: how many, how many completed, how many to train."""
    trainable = [row for row in rows if row["defined"]]
    completed = sum(1 for row in trainable if row["status"] == SkillStatus.COMPLETED)
    return {"total": len(trainable), "completed": completed, "pending": len(trainable) - completed}


def undefined_sub_skills(task: Task) -> list[tuple[str, str]]:
    """(composite, sub-skill) pairs where a defined composite names a sub-skill that is not defined."""
    skills = list(task.skills.all())
    defined = {s.name for s in skills if s.defined}
    return [
        (skill.name, str(sub))
        for skill in sorted(skills, key=lambda s: (s.order, s.pk))
        if skill.defined and not skill.is_primitive
        for sub in skill.sub_skills
        if sub not in defined
    ]


# -- a session's runs ---------------------------------------------------------------------------------
def done_in_resumed_chain(session: TrainingSession) -> dict[int, int]:
    """Skill id -> session id, for skills done (completed/skipped) in the sessions `session` resumes."""
    done: dict[int, int] = {}
    seen: set[int] = set()
    previous_id = session.resumed_from_id
    while previous_id is not None and previous_id not in seen:
        seen.add(previous_id)
        runs = SkillRun.objects.filter(session_id=previous_id, status__in=SkillStatus.done())
        for skill_id in runs.values_list("skill_id", flat=True):
            done.setdefault(skill_id, previous_id)
        previous_id = (
            TrainingSession.objects.filter(pk=previous_id).values_list("resumed_from_id", flat=True).first()
        )
    return done


def focus_runs(session: TrainingSession) -> list[SkillRun]:
    """The runs the curves and the output follow: those training now (in training order), else the
    last one that ran; none before the first starts."""
    runs = session.skill_runs.select_related("skill")
    training = list(runs.filter(status=SkillStatus.TRAINING).order_by("order"))
    if training:
        return training
    last = runs.filter(started_at__isnull=False).order_by("-started_at", "-pk").first()
    return [last] if last is not None else []


def log_tail(skill_run: SkillRun, *, after_seq: int | None = None, limit: int = 200) -> list[LogLine]:
    """The newest `limit` stored output lines of a run, oldest first (after `after_seq` if given)."""
    lines = skill_run.log_lines.order_by("-seq")
    if after_seq is not None:
        lines = lines.filter(seq__gt=after_seq)
    return list(reversed(lines[:limit]))


def curve_points(run: SkillRun, tag: str, limit: int = CURVE_POINTS) -> list[tuple[int, float]]:
    """At most `limit` (frames, value) pairs of a run's curve, evenly thinned, with the last one."""
    points = MetricPoint.objects.filter(skill_run=run, tag=tag)
    count = points.count()
    if count <= limit:
        return list(points.order_by("step").values_list("step", "value"))
    stride = -(-count // limit)
    thinned = (
        points.annotate(row=Window(RowNumber(), order_by=[F("step").asc(), F("pk").asc()]))
        .annotate(slot=F("row") % stride)
        .filter(slot=1)
        .order_by("step")
        .values_list("step", "value")
    )
    result = list(thinned)
    last = points.order_by("-step", "-pk").values_list("step", "value").first()
    if last is not None and (not result or result[-1] != last):
        result.append(last)
    return result


def failure_codes(session: TrainingSession) -> set[str]:
    """Why a session ended unfinished, as `outcomes.Code` values (what the hints are keyed on).

    From its failed runs' codes, its status, and for a session that failed before any run
    started, the same checks its planning made (the backend, undefined sub-skills).
    """
    failed = session.skill_runs.filter(status=SkillStatus.FAILED)
    codes = set(failed.values_list("stop_reason", flat=True))
    if session.status == SessionStatus.INTERRUPTED:
        codes.add(outcomes.Code.INTERRUPTED)
    if session.status == SessionStatus.FAILED and not session.skill_runs.filter(started_at__isnull=False).exists():
        if backend_problem(session.backend):
            codes.add(outcomes.Code.BACKEND_UNAVAILABLE)
        if undefined_sub_skills(session.task):
            codes.add(outcomes.Code.UNDEFINED_SUB_SKILL)
    return codes


def failure_hints(session: TrainingSession) -> list[str]:
    """Actionable advice for a session that failed or was interrupted (`outcomes.hints`)."""
    return outcomes.hints(failure_codes(session), session.config)


# -- lists across sessions ------------------------------------------------------------------------------
def active_sessions(limit: int = ACTIVE_LISTED) -> list[TrainingSession]:
    """The first `limit` queued, running and cancelling sessions, with how many skills are done.

    Sessions at work (running, cancelling) come first, then the queue in claim order. A sweep
    or a batch can queue hundreds, so a list shows only these few; `active_summary` counts them all.
    Two queries whatever the queue holds: the page's cost is bounded by what it shows.
    """
    waiting = Case(When(status=SessionStatus.QUEUED, then=Value(1)), default=Value(0), output_field=IntegerField())
    sessions = list(
        TrainingSession.objects.filter(status__in=SessionStatus.active())
        .select_related("task", "owner", "current_skill")
        .defer(*TASK_BULK, "current_skill__embedded_spec")
        .order_by(waiting, *queueing.ORDER)[:limit]
    )
    counts = {
        row["session_id"]: row
        for row in SkillRun.objects.filter(session__in=[s.pk for s in sessions]).values("session_id").annotate(
            total=Count("pk"), done=Count("pk", filter=Q(status__in=SkillStatus.done())),
        )
    } if sessions else {}
    for session in sessions:
        row = counts.get(session.pk, {})
        session.runs_total = row.get("total", 0)  # type: ignore[attr-defined]
        session.runs_done = row.get("done", 0)  # type: ignore[attr-defined]
    return sessions


def active_summary() -> dict[str, int]:
    """How many sessions are active, in all and per status (`queued`, `running`, `cancelling`): one query."""
    per_status = dict(
        TrainingSession.objects.filter(status__in=SessionStatus.active())
        .order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    summary = {str(status): int(per_status.get(status, 0)) for status in SessionStatus.active()}
    summary["total"] = sum(per_status.values())
    return summary


def active_count() -> int:
    return TrainingSession.objects.filter(status__in=SessionStatus.active()).count()


def recent_results(limit: int = RECENT_RESULTS) -> QuerySet[TrainingSession]:
    """The latest sessions that ended (completed, failed, cancelled, interrupted), newest first."""
    return (
        TrainingSession.objects.filter(status__in=SessionStatus.terminal())
        .select_related("task", "owner").defer(*TASK_BULK)
        .order_by("-finished_at", "-pk")[:limit]
    )


def latest_session_annotations() -> dict[str, Subquery]:
    """Per task (annotate a Task queryset): its latest session's status and id, in one query
    (`SessionQuerySet.task_state`: an ended flat baseline is not the task's state)."""
    latest = TrainingSession.objects.task_state().filter(task=OuterRef("pk")).order_by("-created_at", "-pk")
    return {
        "training_status": Subquery(latest.values("status")[:1]),
        "training_session_id": Subquery(latest.values("pk")[:1]),
    }


def training_states(task_ids: Iterable[int]) -> dict[int, str]:
    """Per task id, `"<newest session id>:<its status>"` (`"0:"` when it never trained), in one query.

    Everything a task's panel and card say about its training (start, queue, run, end) changes
    exactly when this does, whoever started the session: the pages' watcher (`views.task_watch`)
    compares it every second.
    """
    rows = (
        Task.objects.filter(pk__in=list(task_ids))
        .annotate(**latest_session_annotations())
        .values_list("pk", "training_session_id", "training_status")
    )
    return {pk: f"{session_id or 0}:{status or ''}" for pk, session_id, status in rows}


def with_latest_session(task: Task) -> Task:
    """`task` with the attributes `latest_session_annotations` gives a queryset (its card badge)."""
    latest = task.training_sessions.latest_state()
    task.training_status = latest.status if latest else None  # type: ignore[attr-defined]
    task.training_session_id = latest.pk if latest else None  # type: ignore[attr-defined]
    return task


def dashboard_context() -> dict[str, Any]:
    """The dashboard's training card: the first active sessions (with queue positions), how many
    are active in all (`active_summary`, `active_more` not listed), and recent results."""
    active = active_sessions()
    places: dict[str, dict[int, Any]] = {}
    for session in active:
        if session.status == SessionStatus.QUEUED:
            # The claim rule's own numbering (training/queueing.py), so the card never disagrees.
            if session.queue not in places:
                # The card lists the head of each queue, so the head is all that needs numbering.
                places[session.queue] = queueing.positions(session.queue, limit=len(active))
            place = places[session.queue].get(session.pk)
            session.queue_position = place.position if place else None  # type: ignore[attr-defined]
    if len(active) < ACTIVE_LISTED:
        # All of them are listed: count them here rather than ask the database again.
        summary = {str(status): sum(s.status == status for s in active) for status in SessionStatus.active()}
        summary["total"] = len(active)
    else:
        summary = active_summary()
    return {
        "active_sessions": active,
        "active_summary": summary,
        "active_total": summary["total"],
        "active_more": max(0, summary["total"] - len(active)),
        "recent_results": list(recent_results()),
    }


def task_training_context(task: Task) -> dict[str, Any]:
    """The task page's training panel and the skill tree's status badges."""
    rows = skill_status_rows(task)
    # A task has at most one active session and nothing is queued after it, so it is the newest.
    latest = task.training_sessions.select_related("current_skill").latest_state()
    active = latest if latest is not None and latest.is_active else None
    return {
        "task": task,
        "active_session": active,
        "last_session": None if active else latest,
        "skill_status": {row["skill_id"]: row for row in rows},
        "training_totals": totals(rows),
    }


def hierarchy_parents(task: Task) -> dict[str, list[str]]:
    """For each skill name, the ordered children list of its parent (first occurrence in the tree).

    Execution order is the order of children under their parent; the task's `hierarchy` is the
    library's structure tree, and the composites' `sub_skills` say the same for trees that lack it.
    """
    siblings: dict[str, list[str]] = {}

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        children = [c.get("name") for c in node.get("children") or [] if isinstance(c, dict)]
        names = [n for n in children if isinstance(n, str)]
        for name in names:
            siblings.setdefault(name, names)
        for child in node.get("children") or []:
            walk(child)

    walk(task.hierarchy)
    for skill in task.skills.filter(is_primitive=False).order_by("order"):
        names = [n for n in skill.sub_skills if isinstance(n, str)]
        for name in names:
            siblings.setdefault(name, names)
    return siblings
