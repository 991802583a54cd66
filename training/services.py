"""The verbs of training, shared by `manage.py train`, the worker and the web.

Every caller goes through these functions, so a session started from the terminal is recorded
exactly like one started from a page, and every rule (one active session per task, validated
options, cancel as a database request, stale leases) lives in one place.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from tasks.models import Skill, Task
from training import paths
from training.config import ConfigError, TrainingConfig
from training.executor import end_orphan_group
from training.models import (
    IllegalTransition,
    LogLine,
    SessionEvent,
    SessionStatus,
    SkillRun,
    SkillStatus,
    Stage,
    TrainingSession,
)
from training.orchestrator import CommandBuilder, Orchestrator, Timings, worker_identity

logger = logging.getLogger(__name__)

# The lease. A supervisor renews its sessions' heartbeat every HEARTBEAT_INTERVAL (the orchestrator
# at least every `Timings.flush_interval` while a trainer runs, the worker loop in the gaps); one
# silent for STALE_AFTER is presumed dead. Workers reap every REAP_INTERVAL, so a killed worker's
# session is marked interrupted within STALE_AFTER + REAP_INTERVAL (40 s; the promise is 60 s).
# GENHRL_LEASE_SECONDS, when the settings define it, replaces STALE_AFTER.
HEARTBEAT_INTERVAL = 5.0
REAP_INTERVAL = 10.0
STALE_AFTER = timedelta(seconds=getattr(settings, "GENHRL_LEASE_SECONDS", 30))
DEFAULT_QUEUE = "default"


class SessionAlreadyActive(Exception):
    """The task already has a queued, running or cancelling session (`session`)."""

    def __init__(self, session: TrainingSession | None) -> None:
        self.session = session
        where = f"session {session.pk} is {session.status}" if session else "another session is active"
        super().__init__(f"this task is already training ({where})")


class NotResumable(Exception):
    """The session cannot be resumed (it completed, is still active, or was resumed already)."""


class TaskNotFound(Exception):
    """No task, or more than one (same name under several robots), matches."""


def actor_for(user: Any | None) -> str:
    """How a person shows up in the event history."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "system"
    return f"user:{user.get_username()}"


def find_task(name: str, robot: str | None = None) -> Task:
    """The task called `name` (of `robot`, required when several robots have one by that name)."""
    tasks = Task.objects.filter(name=name)
    if robot:
        tasks = tasks.filter(robot=robot)
    found = list(tasks[:20])
    if not found:
        where = f" for robot {robot}" if robot else ""
        raise TaskNotFound(f"no task named {name!r}{where}; import it first (manage.py import_tasks)")
    if len(found) > 1:
        robots = ", ".join(sorted(t.robot for t in found))
        raise TaskNotFound(f"task {name!r} exists for several robots ({robots}); choose one with --robot")
    return found[0]


def active_session(task: Task) -> TrainingSession | None:
    """The task's queued, running or cancelling session, if any (there is at most one)."""
    return task.training_sessions.filter(status__in=SessionStatus.active()).first()


def start_session(
    task: Task,
    config: TrainingConfig | Mapping[str, Any],
    *,
    owner: Any | None = None,
    actor: str | None = None,
    worker_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    resumed_from: TrainingSession | None = None,
) -> TrainingSession:
    """Validate the options and queue a new session for `task`, on `queue` (workers serve one each).

    With `worker_id` the new session is claimed for that worker in the same transaction (queued
    -> running): the CLI supervises its own session, and no other worker may pick it up first.

    Raises `ConfigError` (field -> messages) for bad options, including the isaaclab backend
    without GENHRL_ISAACLAB_ROOT, and `SessionAlreadyActive` when the task already trains: the
    database's conditional unique constraint decides, so concurrent starts give one winner.
    A session whose worker stopped heartbeating is marked interrupted first, so a crashed run
    does not block the task forever. Nothing is launched here; a worker or the CLI runs it.
    """
    cfg = config if isinstance(config, TrainingConfig) else TrainingConfig.from_data(config, task=task)
    if cfg.backend == "isaaclab" and not settings.GENHRL_ISAACLAB_ROOT:
        raise ConfigError({"backend": [
            "the isaaclab backend needs GENHRL_ISAACLAB_ROOT (the Isaac Lab folder holding isaaclab.sh)"
        ]})
    try:
        paths.task_dir(task)
    except paths.UnsafePathError as exc:
        raise ConfigError({"task": [str(exc)]}) from exc
    reap_stale_sessions(task=task)
    who = actor or actor_for(owner)
    try:
        with transaction.atomic():
            session = TrainingSession.objects.create(
                task=task, owner=owner if getattr(owner, "pk", None) else None,
                config=cfg.to_json(), backend=cfg.backend, queue=queue or DEFAULT_QUEUE,
                resumed_from=resumed_from,
            )
            created = f"resumes session {resumed_from.pk}" if resumed_from else "session created"
            SessionEvent.objects.create(
                session=session, kind=SessionEvent.Kind.STATUS, to_state=SessionStatus.QUEUED,
                actor=who, message=created,
            )
            if worker_id:
                session.transition_to(
                    SessionStatus.RUNNING, actor=who, message="supervised by the process that started it",
                    worker_id=worker_id, heartbeat_at=timezone.now(),
                )
    except IntegrityError:
        raise SessionAlreadyActive(active_session(task)) from None
    return session


def request_cancel(session: TrainingSession, *, actor: str) -> TrainingSession:
    """Ask for a session to stop; safe to call from any process, any number of times.

    A queued session is cancelled at once. A running one becomes `cancelling` and its supervisor,
    which polls the database, stops the trainer (SIGINT, then SIGTERM, then SIGKILL to its process
    group only), keeps the success states it flushed, and ends the session `cancelled`. A session
    that already ended is returned unchanged.
    """
    session.refresh_from_db()
    if session.is_terminal:
        return session
    now = timezone.now()
    with transaction.atomic():
        first = TrainingSession.objects.filter(pk=session.pk, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, cancel_requested_by=actor, updated_at=now
        )
        if first:
            SessionEvent.objects.create(
                session=session, kind=SessionEvent.Kind.CANCEL_REQUESTED, actor=actor, message="cancel requested"
            )
    session.refresh_from_db()
    try:
        if session.status == SessionStatus.QUEUED:
            session.transition_to(SessionStatus.CANCELLED, actor=actor, message="cancelled before it started")
            session.set_stage(Stage.COMPLETE, actor=actor)
        elif session.status == SessionStatus.RUNNING:
            session.transition_to(SessionStatus.CANCELLING, actor=actor, message="cancel requested")
    except IllegalTransition:
        # The supervisor moved it meanwhile (claimed, finished); the request row still stands.
        session.refresh_from_db()
    return session


def make_orchestrator(
    session: TrainingSession,
    *,
    worker_id: str | None = None,
    actor: str | None = None,
    on_update: Callable[[Orchestrator], None] | None = None,
    command_builder: CommandBuilder | None = None,
    timings: Timings | None = None,
) -> Orchestrator:
    """The supervisor for `session`, to `run()` in this process (the CLI keeps it for Ctrl-C)."""
    return Orchestrator(
        session, worker_id=worker_id, actor=actor, on_update=on_update,
        command_builder=command_builder, timings=timings,
    )


def run_session(session: TrainingSession, **kwargs: Any) -> TrainingSession:
    """Supervise `session` here until it ends; returns it in its terminal state."""
    return make_orchestrator(session, **kwargs).run()


def claim_next_session(worker_id: str | None = None, *, queue: str = DEFAULT_QUEUE) -> TrainingSession | None:
    """Claim the oldest queued session of `queue` for this worker (queued -> running), or None.

    Any number of workers, on any number of hosts, may poll at once; each session is claimed
    once. The claim itself is the conditional UPDATE of `transition_to` (WHERE status = 'queued'),
    which only one writer can win. On PostgreSQL the candidate row is first locked with
    SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers take different rows instead of
    queueing behind one lock; SQLite serializes writers (IMMEDIATE transactions, settings.py).
    """
    worker = worker_id or worker_identity()
    queued = TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=queue).order_by("created_at", "pk")
    if connection.features.has_select_for_update_skip_locked:
        for _ in range(20):
            with transaction.atomic():
                candidate = queued.select_for_update(skip_locked=True).first()
                if candidate is None:
                    return None
                try:
                    _claim(candidate, worker)
                except IllegalTransition:
                    continue  # cancelled between our read and our lock
                return candidate
        return None
    for candidate in queued[:20]:
        try:
            _claim(candidate, worker)
        except IllegalTransition:
            continue
        return candidate
    return None


def _claim(session: TrainingSession, worker: str) -> None:
    session.transition_to(
        SessionStatus.RUNNING, actor=f"worker:{worker}", message=f"claimed by worker {worker}",
        worker_id=worker, heartbeat_at=timezone.now(),
    )


def latest_resumable_session(task: Task) -> TrainingSession:
    """The task's latest session, if it can be resumed; else `NotResumable` saying why."""
    session = task.training_sessions.order_by("-created_at", "-pk").first()
    if session is None:
        raise NotResumable(f"{task.name} has no training session to resume")
    if session.status not in SessionStatus.resumable():
        raise NotResumable(f"the latest session ({session.pk}) of {task.name} is {session.status}; nothing to resume")
    return session


def resume_session(
    session: TrainingSession,
    *,
    actor: str,
    owner: Any | None = None,
    worker_id: str | None = None,
) -> TrainingSession:
    """Continue an interrupted, failed or cancelled session: a new session with its settings.

    For the web ("Resume" on a session page: `resume_session(s, actor=actor_for(user),
    owner=user)`, then wake the worker) and `manage.py train TASK --resume` (with `worker_id`:
    claimed at once, like `start_session`). The new session is queued on the same queue, linked by
    `resumed_from`, and never deletes anything (`--new-run` is dropped). When it plans, every
    skill that completed (or was skipped as complete) in the session it resumes, or in the ones
    that one resumed, is skipped again: it keeps its success states, checkpoints and policy and gets
    no new attempt. The old session stays as it ended (its history is not rewritten); both record
    the resume as events.

    Raises `NotResumable` (completed, still active, or already resumed by a later session) and
    `SessionAlreadyActive` when the task trains in another session.
    """
    session.refresh_from_db()
    if session.status not in SessionStatus.resumable():
        raise NotResumable(f"session {session.pk} is {session.status}; only interrupted, failed or cancelled "
                           "sessions can be resumed")
    later = session.resumed_by.order_by("-pk").first()
    if later is not None:
        raise NotResumable(f"session {session.pk} was already resumed as session {later.pk}")
    config = session.training_config().with_changes(new_run=False)
    new = start_session(
        session.task, config, owner=owner if owner is not None else session.owner, actor=actor,
        worker_id=worker_id, queue=session.queue, resumed_from=session,
    )
    SessionEvent.objects.create(
        session=session, kind=SessionEvent.Kind.NOTE, actor=actor, message=f"resumed as session {new.pk}"
    )
    return new


def _same_host(worker_id: str) -> bool:
    # worker_identity() is "<host>:<pid>:<random>"; a process group is only meaningful on its host.
    return bool(worker_id) and worker_id.rsplit(":", 2)[0] == socket.gethostname()


def end_orphan_trainers(session: TrainingSession) -> list[int]:
    """End the trainer process groups a dead supervisor left behind; returns the groups ended.

    Only groups recorded on the session's training runs, on this host, and verified in /proc to
    still be that run's trainer (a member's argv holds the run's own spec.json path), so a reused
    pid is never signalled. Trainers of the local executor normally die with their supervisor
    (PR_SET_PDEATHSIG); this covers what that misses (grandchildren, non-Linux, a race at launch).
    """
    if not _same_host(session.worker_id):
        return []
    ended = []
    for run in session.skill_runs.filter(status=SkillStatus.TRAINING, pid__isnull=False).exclude(run_dir=""):
        marker = str(Path(run.run_dir) / "spec.json")
        if end_orphan_group(int(run.pid), marker):  # type: ignore[arg-type]
            ended.append(int(run.pid))  # type: ignore[arg-type]
            logger.warning("session %s: ended orphaned trainer process group %s", session.pk, run.pid)
    return ended


def reap_stale_sessions(*, task: Task | None = None, stale_after: timedelta | None = None) -> list[TrainingSession]:
    """Mark running sessions whose supervisor stopped heartbeating as `interrupted`, with the reason.

    A trainer the dead supervisor left on this host is ended first (verified process group).
    Their training skill runs fail and their pending ones are cancelled; completed skills keep
    their results, so `resume_session` (or a new start with skip-complete) continues from them.
    Every worker calls this every REAP_INTERVAL; starts call it for their task.
    """
    cutoff = timezone.now() - (stale_after if stale_after is not None else STALE_AFTER)
    stale = TrainingSession.objects.filter(
        status__in=[SessionStatus.RUNNING, SessionStatus.CANCELLING], heartbeat_at__lt=cutoff
    )
    if task is not None:
        stale = stale.filter(task=task)
    reaped = []
    for session in stale:
        message = (
            f"lease lost: no heartbeat from worker {session.worker_id or '?'} since "
            f"{session.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (worker killed or host lost)"
        )
        try:
            ended = end_orphan_trainers(session)
        except OSError:
            logger.exception("session %s: cannot check for orphaned trainers", session.pk)
            ended = []
        if ended:
            message += f"; ended its orphaned trainer process group {', '.join(map(str, ended))}"
        try:
            with transaction.atomic():
                session.transition_to(
                    SessionStatus.INTERRUPTED, actor="system", message=message,
                    error=f"interrupted: {message}",
                )
                for run in session.skill_runs.filter(status__in=SkillStatus.active()):
                    target = SkillStatus.FAILED if run.status == SkillStatus.TRAINING else SkillStatus.CANCELLED
                    run.transition_to(target, actor="system", message="session interrupted",
                                      error="interrupted: the supervising worker stopped" if target == "failed" else "",
                                      stop_reason="interrupted")
                session.set_stage(Stage.COMPLETE, actor="system")
        except IllegalTransition:
            continue
        reaped.append(session)
    return reaped


def log_tail(skill_run: SkillRun, *, after_seq: int | None = None, limit: int = 200) -> list[LogLine]:
    """The newest `limit` stored output lines of a run, oldest first (after `after_seq` if given)."""
    lines = skill_run.log_lines.order_by("-seq")
    if after_seq is not None:
        lines = lines.filter(seq__gt=after_seq)
    return list(reversed(lines[:limit]))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _default_min_success_states(task: Task) -> int:
    session = active_session(task) or task.training_sessions.order_by("-created_at").first()
    if session is not None:
        return int(session.config.get("min_success_states", TrainingConfig.min_success_states))
    return TrainingConfig.min_success_states


def skill_status_rows(task: Task) -> list[dict[str, Any]]:
    """One row per skill of `task`, in training order, for `manage.py status` and the status API.

    Keys: `skill`, `skill_id`, `order`, `level`, `kind` ("primitive"/"composite"), `is_primitive`,
    `defined`, `status`, `success_states` (counted on disk now), `min_success_states` (of the
    active, else latest, session; else the default 50), `has_policy`, `last_run_at` (datetime or
    None), `last_result` (the latest run's status or None), `last_error` (first line or ""),
    `last_session_id`.

    `status` is `training`/`pending` while an active session holds the skill; otherwise
    `completed` when there are enough success states and a policy, else the latest run's
    `failed`/`cancelled`, else `pending`; `undefined` for a sub-skill that is named but never
    defined (it cannot be trained).
    """
    minimum = _default_min_success_states(task)
    active = active_session(task)
    latest_run = SkillRun.objects.filter(skill=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    skills = list(task.skills.order_by("order", "pk").annotate(latest_run_id=Subquery(latest_run)))
    runs = SkillRun.objects.in_bulk([s.latest_run_id for s in skills if s.latest_run_id])
    rows = []
    for skill in skills:
        run = runs.get(skill.latest_run_id) if skill.latest_run_id else None
        count = paths.count_success_states(paths.success_dir(skill))
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
            "min_success_states": minimum,
            "has_policy": policy,
            "last_run_at": (run.finished_at or run.started_at) if run else None,
            "last_result": str(run.status) if run else None,
            "last_error": run.error.splitlines()[0] if run and run.error else "",
            "last_session_id": run.session_id if run else None,
        })
    return rows


def skill_run_snapshot(run: SkillRun) -> dict[str, Any]:
    skill: Skill = run.skill
    return {
        "id": run.pk,
        "skill": skill.name,
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
        "elapsed_seconds": run.elapsed_seconds,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "exit_code": run.exit_code,
        "stop_reason": run.stop_reason,
        "error": run.error,
        "source_time": run.source_time,
    }


def session_snapshot(session: TrainingSession) -> dict[str, Any]:
    """The whole state of a session as JSON-ready data: what an SSE `progress` event carries.

    Idempotent and complete, so a viewer that misses or repeats an event loses nothing.
    """
    runs = list(session.skill_runs.select_related("skill").order_by("order"))
    done = sum(1 for r in runs if r.status in SkillStatus.done())
    failed = sum(1 for r in runs if r.status == SkillStatus.FAILED)
    training = sum(1 for r in runs if r.status == SkillStatus.TRAINING)
    end = session.finished_at or timezone.now()
    return {
        "id": session.pk,
        "task": session.task.name,
        "robot": session.task.robot,
        "status": session.status,
        "stage": session.stage,
        "active": session.is_active,
        "terminal": session.is_terminal,
        "backend": session.backend,
        "config": session.config,
        "owner": session.owner.get_username() if session.owner_id else None,
        "current_skill": session.current_skill.name if session.current_skill_id else None,
        "created_at": _iso(session.created_at),
        "started_at": _iso(session.started_at),
        "finished_at": _iso(session.finished_at),
        "elapsed_seconds": (end - session.started_at).total_seconds() if session.started_at else 0.0,
        "heartbeat_at": _iso(session.heartbeat_at),
        "cancel_requested": session.cancel_requested_at is not None,
        "error": session.error,
        "source_time": session.source_time,
        "totals": {
            "total": len(runs),
            "done": done,
            "failed": failed,
            "training": training,
            "pending": sum(1 for r in runs if r.status == SkillStatus.PENDING),
        },
        "progress": round(100.0 * done / len(runs), 1) if runs else 0.0,
        "skills": [skill_run_snapshot(r) for r in runs],
    }
