"""What the pages, the API and the progress stream say about a session and a task, from the database.

A snapshot is the whole state of one session, so a viewer that misses, repeats or reorders an
event loses nothing: the next snapshot is complete. This one builder serves the status endpoint,
the cancel and start answers, every SSE `progress` event and the progress pages, so they never
disagree.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from tasks.models import Task
from training import estimates, paths, queries, queueing
from training.config import stall_seconds
from training.models import SessionEvent, SessionStatus, SkillRun, SkillStatus, TrainingSession

WARNINGS_SHOWN = 5
# A training skill that has sent nothing for this share of its stall limit is flagged to viewers.
QUIET_WARNING_AT = 0.5


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _with_robot(url: str, task: Task) -> str:
    return f"{url}?{urlencode({'robot': task.robot})}"


def session_urls(session: TrainingSession) -> dict[str, str]:
    """Where a client goes next: status, progress stream, cancel, and the page a person opens."""
    task = session.task
    kwargs = {"task_name": task.name}
    return {
        "status": _with_robot(reverse("api:training_status", kwargs=kwargs), task),
        "progress": _with_robot(
            reverse("api:training_progress", kwargs={**kwargs, "session_id": session.pk}), task
        ),
        "cancel": _with_robot(reverse("api:training_cancel", kwargs=kwargs), task),
        "page": _page_url(session),
    }


def _page_url(session: TrainingSession) -> str:
    return reverse("training:session", kwargs={"pk": session.pk})


def queue_position(session: TrainingSession) -> int | None:
    """1 for the next session a worker will claim; None unless the session is queued, or while it is
    held by its owner's limit of running sessions (training/queueing.py: the claim rule itself)."""
    place = queueing.place_of(session)
    return place.position if place is not None else None


def skill_run_snapshot(run: SkillRun, now: datetime) -> dict[str, Any]:
    """One skill of a session's snapshot."""
    skill = run.skill
    return {
        "id": run.pk,
        "name": skill.name,
        "skill_id": skill.pk,
        "order": run.order,
        "level": skill.level,
        "kind": skill.kind,
        "status": run.status,
        "attempt": run.attempt,
        "success_states": run.success_states,
        "min_success_states": run.min_success_states,
        "start_states": run.start_states,
        "frames": run.frames,
        "min_frames": run.min_frames,
        "epochs": run.epochs,
        "fps": run.fps,
        "best_reward": run.best_reward,
        "last_reward": run.last_reward,
        "success_rate": run.success_rate,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "stop_reason": run.stop_reason,
        "error": run.error,
        "source_time": run.source_time,
        "elapsed_s": round(estimates.skill_elapsed(run, now), 1),
        "progress": round(estimates.skill_fraction(run), 3),
    }


def warnings(session: TrainingSession, runs: list[SkillRun]) -> list[dict[str, Any]]:
    """What a viewer should notice now: a training skill gone quiet (before the stall watchdog
    stops it), then the session's newest warnings (GPU buffers, a database outage it rode out)."""
    found: list[dict[str, Any]] = []
    if session.is_active:
        limit = stall_seconds(session.backend)
        now = time.time()
        for run in runs:
            if run.status != SkillStatus.TRAINING or not limit:
                continue
            last = run.source_time or (run.started_at.timestamp() if run.started_at else None)
            quiet = now - last if last is not None else 0.0
            if quiet >= limit * QUIET_WARNING_AT:
                found.append({
                    "skill": run.skill.name, "kind": "quiet", "time": None,
                    "message": f"{run.skill.name} has sent no progress for {quiet:.0f} s; it is stopped as "
                    f"stalled after {limit:.0f} s without progress.",
                })
    events = (
        session.events.filter(kind=SessionEvent.Kind.WARNING)
        .select_related("skill_run__skill").order_by("-time", "-pk")[:WARNINGS_SHOWN]
    )
    for event in events:
        found.append({
            "skill": event.skill_run.skill.name if event.skill_run_id else None, "kind": "event",
            "time": _iso(event.time), "message": event.message,
        })
    return found


def _planned_skills(session: TrainingSession) -> list[dict[str, Any]]:
    """Before the worker plans a session, show the skills it will train, all pending."""
    minimum = int(session.config.get("min_success_states", 0))
    rows = []
    for index, skill in enumerate(session.task.skills.filter(defined=True).order_by("order", "pk")):
        rows.append({
            "id": None, "name": skill.name, "skill_id": skill.pk, "order": index, "level": skill.level,
            "kind": skill.kind, "status": SkillStatus.PENDING.value, "progress": 0.0, "attempt": None,
            "success_states": paths.count_success_states(paths.success_dir(skill, session.workspace)),
            "min_success_states": minimum, "start_states": 0, "frames": 0, "min_frames": 0, "epochs": 0,
            "fps": None, "best_reward": None, "last_reward": None, "success_rate": None, "elapsed_s": 0.0,
            "started_at": None, "finished_at": None, "exit_code": None, "stop_reason": "", "error": "",
            "source_time": None,
        })
    return rows


def progress_snapshot(session: TrainingSession | int) -> dict[str, Any]:
    """The whole state of a session, JSON-ready: the data of every SSE `progress` event.

    `progress` is 0-1; `elapsed_s`/`eta_s` are seconds; `source_time` is the trainer's wall-clock
    time (epoch seconds) of the last record applied, and `snapshot_time` when this was read, so a
    client can measure latency end to end.
    """
    if isinstance(session, int):
        session = TrainingSession.objects.select_related("task", "owner", "current_skill").get(pk=session)
    now = timezone.now()
    runs = list(session.skill_runs.select_related("skill").order_by("order"))
    elapsed = {run.pk: estimates.skill_elapsed(run, now) for run in runs}
    skills = [skill_run_snapshot(run, now) for run in runs]
    if not runs and session.is_active:
        skills = _planned_skills(session)

    statuses = [s["status"] for s in skills]
    done = sum(1 for s in statuses if s in SkillStatus.done())
    if session.status == SessionStatus.COMPLETED:
        progress = 1.0
    else:
        progress = sum(estimates.skill_fraction(r) for r in runs) / len(runs) if runs else 0.0
    place = queueing.place_of(session)
    end = session.finished_at or now
    max_seconds = float(session.config.get("max_time", 180.0)) * 60.0
    if session.is_terminal:
        eta: float | None = 0.0
    elif session.status == SessionStatus.QUEUED or not runs:
        eta = None
    else:
        eta = estimates.eta(runs, elapsed, max_seconds)
    return {
        "session_id": session.pk,
        "task": session.task.name,
        "robot": session.task.robot,
        "backend": session.backend,
        "status": session.status,
        "stage": session.stage,
        "active": session.is_active,
        "terminal": session.is_terminal,
        "progress": round(progress, 4),
        "current_skill": session.current_skill.name if session.current_skill_id else None,
        # Every skill training now: several when the skill tree lets them train side by side.
        "training_skills": [row["name"] for row in skills if row["status"] == SkillStatus.TRAINING],
        "skills": skills,
        "totals": {
            "total": len(skills),
            "completed": done,
            "pending": statuses.count(SkillStatus.PENDING),
            "training": statuses.count(SkillStatus.TRAINING),
            "failed": statuses.count(SkillStatus.FAILED),
            "cancelled": statuses.count(SkillStatus.CANCELLED),
            # Every skill not done, whatever stopped it: pending, training, failed or cancelled.
            "remaining": len(skills) - done,
        },
        "elapsed_s": round((end - session.started_at).total_seconds(), 1) if session.started_at else 0.0,
        "eta_s": eta,
        "error": session.error,
        "warnings": warnings(session, runs),
        "source_time": session.source_time,
        "snapshot_time": time.time(),
        "queue_position": place.position if place is not None else None,
        # Why a queued session waits behind later ones (its owner's limit of running sessions), or "".
        "queue_held": place.held if place is not None else "",
        "cancel_requested": session.cancel_requested_at is not None,
        "owner": session.owner.get_username() if session.owner_id else None,
        "worker": session.worker_id,
        "config": session.config,
        "created_at": _iso(session.created_at),
        "started_at": _iso(session.started_at),
        "finished_at": _iso(session.finished_at),
        "heartbeat_at": _iso(session.heartbeat_at),
        "urls": session_urls(session),
    }


def task_status(task: Task) -> dict[str, Any]:
    """The status endpoint's answer: the active session (if any), every skill, and totals.

    Skills that are named but never defined cannot be trained, so they are listed but not counted.
    """
    active = queries.active_session(task)
    latest = task.training_sessions.select_related("task", "owner", "current_skill").latest_state()
    rows = queries.skill_status_rows(task)
    skills = [
        {
            "name": row["skill"], "skill_id": row["skill_id"], "order": row["order"], "level": row["level"],
            "kind": row["kind"], "defined": row["defined"], "status": row["status"],
            "success_states": row["success_states"], "unreadable_files": row["unreadable_files"],
            "min_success_states": row["min_success_states"],
            "has_policy": row["has_policy"], "last_run_at": _iso(row["last_run_at"]),
            "last_result": row["last_result"], "last_error": row["last_error"],
            "last_session_id": row["last_session_id"],
        }
        for row in rows
    ]
    session = None
    if active is not None:
        active = TrainingSession.objects.select_related("task", "owner", "current_skill").get(pk=active.pk)
        session = progress_snapshot(active)
    return {
        "task": task.name,
        "robot": task.robot,
        "backend": task.backend,
        "training": active is not None,
        "session": session,
        "last_session": None if latest is None else {
            "session_id": latest.pk,
            "status": latest.status,
            "created_at": _iso(latest.created_at),
            "finished_at": _iso(latest.finished_at),
            "error": latest.error,
            "urls": session_urls(latest),
        },
        "skills": skills,
        "totals": queries.totals(rows),
    }
