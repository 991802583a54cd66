"""What the API and the progress stream say about a session and a task, built from the database.

A snapshot is the whole state of one session, so a viewer that misses, repeats or reorders an
event loses nothing: the next snapshot is complete. The same builder serves the status endpoint,
the cancel and start answers and every SSE `progress` event, so they never disagree.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from tasks.models import Task
from training import paths, services
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

# A skill this far along has a usable rate for an ETA; before that the estimate is noise.
ETA_MIN_FRACTION = 0.05


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
    """1 for the next session a worker will claim; None unless the session is queued."""
    if session.status != SessionStatus.QUEUED:
        return None
    ahead = TrainingSession.objects.filter(
        status=SessionStatus.QUEUED, queue=session.queue, created_at__lt=session.created_at
    ).count()
    return ahead + 1


def _skill_fraction(run: SkillRun) -> float:
    """How far one skill is, 0-1: done counts whole; a training skill by its slower criterion."""
    if run.status in SkillStatus.done():
        return 1.0
    if run.status != SkillStatus.TRAINING:
        return 0.0
    states = run.success_states / run.min_success_states if run.min_success_states else 1.0
    frames = run.frames / run.min_frames if run.min_frames else 1.0
    # Never 1.0 while it trains: the trainer still has to stop and publish its policy.
    return max(0.0, min(0.99, states, frames))


def _skill_elapsed(run: SkillRun, now: datetime) -> float:
    if run.status == SkillStatus.TRAINING and run.started_at is not None:
        # The supervisor writes elapsed time every half second; the clock is fresher.
        return max(run.elapsed_seconds, (now - run.started_at).total_seconds())
    return run.elapsed_seconds


def _eta(runs: list[SkillRun], elapsed: dict[int, float], max_seconds: float) -> float | None:
    """Seconds until every planned skill is done, or None while there is nothing to go on.

    The running skill extrapolates its own rate; skills not yet started are guessed from the
    skills this session trained so far (or the running one's estimate), capped by the time limit.
    """
    trained = [elapsed[r.pk] for r in runs if r.status == SkillStatus.COMPLETED and elapsed[r.pk] > 0]
    typical: float | None = sum(trained) / len(trained) if trained else None
    remaining = 0.0
    for run in runs:
        if run.status == SkillStatus.TRAINING:
            spent = elapsed[run.pk]
            fraction = _skill_fraction(run)
            if fraction >= ETA_MIN_FRACTION and spent > 0:
                left = spent * (1 - fraction) / fraction
            elif typical is not None:
                left = typical - spent
            else:
                return None
            left = max(0.0, min(left, max_seconds - spent))
            typical = typical if typical is not None else spent + left
            remaining += left
        elif run.status == SkillStatus.PENDING:
            if typical is None:
                return None
            remaining += min(typical, max_seconds)
    return round(remaining, 1)


def _planned_skills(session: TrainingSession) -> list[dict[str, Any]]:
    """Before the worker plans a session, show the skills it will train, all pending."""
    minimum = int(session.config.get("min_success_states", 0))
    rows = []
    for index, skill in enumerate(session.task.skills.filter(defined=True).order_by("order", "pk")):
        rows.append({
            "id": None, "name": skill.name, "skill_id": skill.pk, "order": index, "level": skill.level,
            "kind": skill.kind, "status": SkillStatus.PENDING.value, "progress": 0.0, "attempt": None,
            "success_states": paths.count_success_states(paths.success_dir(skill)),
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
    elapsed = {run.pk: _skill_elapsed(run, now) for run in runs}
    skills = []
    for run in runs:
        row = services.skill_run_snapshot(run)
        row["name"] = row.pop("skill")
        row.pop("elapsed_seconds")
        row["elapsed_s"] = round(elapsed[run.pk], 1)
        row["progress"] = round(_skill_fraction(run), 3)
        skills.append(row)
    if not runs and session.is_active:
        skills = _planned_skills(session)

    statuses = [s["status"] for s in skills]
    done = sum(1 for s in statuses if s in SkillStatus.done())
    if session.status == SessionStatus.COMPLETED:
        progress = 1.0
    else:
        progress = sum(_skill_fraction(r) for r in runs) / len(runs) if runs else 0.0
    end = session.finished_at or now
    max_seconds = float(session.config.get("max_time", 180.0)) * 60.0
    if session.is_terminal:
        eta: float | None = 0.0
    elif session.status == SessionStatus.QUEUED or not runs:
        eta = None
    else:
        eta = _eta(runs, elapsed, max_seconds)
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
        "skills": skills,
        "totals": {
            "total": len(skills),
            "completed": done,
            "pending": statuses.count(SkillStatus.PENDING),
            "training": statuses.count(SkillStatus.TRAINING),
            "failed": statuses.count(SkillStatus.FAILED),
            "cancelled": statuses.count(SkillStatus.CANCELLED),
        },
        "elapsed_s": round((end - session.started_at).total_seconds(), 1) if session.started_at else 0.0,
        "eta_s": eta,
        "error": session.error,
        "source_time": session.source_time,
        "snapshot_time": time.time(),
        "queue_position": queue_position(session),
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
    active = services.active_session(task)
    latest = task.training_sessions.select_related("task", "owner", "current_skill").first()
    rows = services.skill_status_rows(task)
    skills = [
        {
            "name": row["skill"], "skill_id": row["skill_id"], "order": row["order"], "level": row["level"],
            "kind": row["kind"], "defined": row["defined"], "status": row["status"],
            "success_states": row["success_states"], "min_success_states": row["min_success_states"],
            "has_policy": row["has_policy"], "last_run_at": _iso(row["last_run_at"]),
            "last_result": row["last_result"], "last_error": row["last_error"],
            "last_session_id": row["last_session_id"],
        }
        for row in rows
    ]
    trainable = [s for s in skills if s["defined"]]
    completed = sum(1 for s in trainable if s["status"] == SkillStatus.COMPLETED)
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
        "totals": {"total": len(trainable), "completed": completed, "pending": len(trainable) - completed},
    }
