"""Reads for understanding runs (issue 13): the filtered history, a run's TensorBoard metrics, and
two to four sessions side by side. Pages, the API and `manage.py bench_metrics` share them.

Every function reads; none writes. Metric series come from the run folder's event files through
`training.metrics` (TensorBoard's reader, cached per folder, downsampled); the database's
MetricPoint rows stay what the live SVG thumbnails draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from tasks.models import Task
from training import metrics, paths, queries
from training.config import option_label
from training.models import SessionStatus, SkillRun, TrainingSession

COMPARE_MIN = 2
COMPARE_MAX = 4
# The comparison's rows that are facts of the session rather than training options.
FACT_LABELS = {"task": "Task", "robot": "Robot"}

# Sort keys a person may choose, and what they order by (the pk breaks ties, so pages are stable).
SORTS: dict[str, tuple[str, ...]] = {
    "newest": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
    "finished": ("-finished_at", "-pk"),
    "task": ("task__name", "-created_at", "-pk"),
    "status": ("status", "-created_at", "-pk"),
    "owner": ("owner__username", "-created_at", "-pk"),
}


class CompareError(ValueError):
    """A comparison that cannot be made (wrong number of sessions, unknown ids); the message says why."""


@dataclass(frozen=True)
class HistoryFilter:
    """What the history lists: every field optional (empty: no filter)."""

    task: str = ""
    robot: str = ""
    owner: str = ""
    status: str = ""
    backend: str = ""
    since: date | None = None
    until: date | None = None
    sort: str = "newest"


def history_sessions(chosen: HistoryFilter) -> QuerySet[TrainingSession]:
    """Every session that ended matching `chosen` (or, with a status filter, every session of that
    status, active ones too), in its order; paginate the result.

    Filters are equality on indexed columns (task and owner by foreign key, status) and a range on
    `created_at`, so a page of 10,000 sessions costs an indexed scan and one COUNT."""
    sessions = TrainingSession.objects.select_related("task", "owner").defer(*queries.TASK_BULK)
    if chosen.task:
        sessions = sessions.filter(task__in=Task.objects.filter(name__icontains=chosen.task))  # part of a name
    if chosen.robot:
        sessions = sessions.filter(task__in=Task.objects.filter(robot=chosen.robot))
    if chosen.owner:
        sessions = sessions.filter(owner__username=chosen.owner)
    if chosen.status:
        sessions = sessions.filter(status=chosen.status)
    else:
        # Active sessions have their own list above the history; a status filter reaches them too.
        sessions = sessions.filter(status__in=SessionStatus.terminal())
    if chosen.backend:
        sessions = sessions.filter(backend=chosen.backend)
    if chosen.since:
        sessions = sessions.filter(created_at__gte=_day_start(chosen.since))
    if chosen.until:
        sessions = sessions.filter(created_at__lt=_day_start(chosen.until + timedelta(days=1)))
    return sessions.order_by(*SORTS.get(chosen.sort, SORTS["newest"]))


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def history_choices() -> dict[str, list[str]]:
    """The values the history's filters offer: task names, robots, owners that have sessions."""
    from django.contrib.auth import get_user_model

    # EXISTS per task and per user (both few), never a join over every session of the history.
    tasks = Task.objects.filter(Exists(TrainingSession.objects.filter(task=OuterRef("pk"))))
    users = get_user_model().objects.filter(Exists(TrainingSession.objects.filter(owner=OuterRef("pk"))))
    return {
        "tasks": list(tasks.order_by("name").values_list("name", flat=True).distinct()),
        "robots": list(Task.objects.order_by("robot").values_list("robot", flat=True).distinct()),
        "owners": list(users.order_by("username").values_list("username", flat=True)),
        "statuses": [value for value, _ in SessionStatus.choices],
        "backends": [value for value, _ in Task.Backend.choices],
    }


# -- metrics of one run ------------------------------------------------------------------------------
def run_tags(run: SkillRun) -> list[str]:
    """Every scalar tag in the run's TensorBoard files ([] before its first summary)."""
    folder = paths.summaries_dir(run.run_dir)
    return metrics.tags(folder) if folder is not None else []


def run_series(run: SkillRun, tag: str, max_points: int = metrics.MAX_POINTS) -> dict[str, Any] | None:
    """The run's `tag`, downsampled to at most `max_points`; None if the run has no such tag."""
    folder = paths.summaries_dir(run.run_dir)
    found = metrics.series(folder, tag) if folder is not None else None
    return metrics.payload(found, max_points) if found is not None else None


# -- comparison ----------------------------------------------------------------------------------------
def parse_session_ids(raw: str) -> list[int]:
    """`"12,15"` → [12, 15]: 2-4 distinct ids, in the order given; CompareError otherwise."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        raise CompareError("sessions must be session ids separated by commas, e.g. 12,15")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise CompareError(f"choose {COMPARE_MIN} to {COMPARE_MAX} different sessions to compare")
    return ids


def _seconds(run: SkillRun) -> float | None:
    if run.elapsed_seconds:
        return round(run.elapsed_seconds, 1)
    if run.started_at and run.finished_at:
        return round((run.finished_at - run.started_at).total_seconds(), 1)
    return None


def _run_row(run: SkillRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.pk, "status": run.status, "seconds": _seconds(run), "frames": run.frames,
        "success_states": run.success_states, "success_rate": run.success_rate, "best_reward": run.best_reward,
        "stop_reason": run.stop_reason,
    }


def _session_seconds(session: TrainingSession) -> float | None:
    if session.started_at and session.finished_at:
        return round((session.finished_at - session.started_at).total_seconds(), 1)
    return None


def _label(option: str) -> str:
    """The training form's label of `option` (the raw name for one the form does not know)."""
    return FACT_LABELS.get(option) or option_label(option)


def compare(sessions: list[TrainingSession]) -> dict[str, Any]:
    """Sessions side by side: what each is, a config diff, and a per-skill table.

    `config` has one row per option any of them set, `differs` when their values are not all the
    same (an option one session lacks counts as different). `skills` matches runs by skill name
    (sessions of different tasks share the skills they have in common), in the first session's
    training order, then the others' own skills. Each run names its `run_id`, whose metrics the
    overlay reads."""
    runs = {s.pk: list(s.skill_runs.select_related("skill").order_by("order")) for s in sessions}
    heads = [{
        "id": s.pk, "task": s.task.name, "robot": s.task.robot, "backend": s.backend, "status": s.status,
        "owner": s.owner.get_username() if s.owner else None,
        "created_at": s.created_at.isoformat(), "seconds": _session_seconds(s),
        "frames": sum(r.frames for r in runs[s.pk]),
    } for s in sessions]
    facts = {"task": [s.task.name for s in sessions], "robot": [s.task.robot for s in sessions],
             "backend": [s.backend for s in sessions]}
    options = sorted({key for s in sessions for key in s.config} - set(facts))
    config = [{"option": name, "label": _label(name), "values": values, "differs": len({repr(v) for v in values}) > 1}
              for name, values in facts.items()]
    missing = object()
    for name in options:
        raw = [s.config.get(name, missing) for s in sessions]
        config.append({
            "option": name, "label": _label(name), "values": [None if v is missing else v for v in raw],
            "differs": len({"<unset>" if v is missing else repr(v) for v in raw}) > 1,
        })
    names: list[str] = []
    for s in sessions:
        names.extend(r.skill.name for r in runs[s.pk] if r.skill.name not in names)
    by_name = {s.pk: {r.skill.name: r for r in runs[s.pk]} for s in sessions}
    skills = [{"skill": name, "runs": [_run_row(by_name[s.pk].get(name)) for s in sessions]} for name in names]
    # The overlay opens on the skill most sessions have, the latest in training order on a tie:
    # the root, for a hierarchical session and its flat baseline (which has no other skill).
    shared = max(reversed(names), key=lambda name: sum(name in by_name[s.pk] for s in sessions), default="")
    return {"sessions": heads, "config": config, "skills": skills, "overlay_skill": shared}
