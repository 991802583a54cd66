"""The verbs of training: find a task, start, cancel and resume a session.

`manage.py train`, the pages, the API, the admin and the engine all go through these, so a session
started from the terminal is recorded exactly like one started from a page, and every rule (one
active session per task, validated options, cancel as a database request) lives in one place.
Each verb writes its state change with an event row and then sends its signal
(`training.signals`): the SSE relay and an embedded worker in this process hear it at once, other
processes through the database.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from tasks.models import Task
from training import leases, paths, queueing
from training.config import ConfigError, TrainingConfig, backend_problem
from training.models import (
    IllegalTransition,
    SessionEvent,
    SessionStatus,
    SkillStatus,
    Stage,
    TrainingSession,
)
from training.queries import active_session
from training.signals import notify_changed, notify_queued

logger = logging.getLogger(__name__)

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
    """No task matches, or several robots have one by that name (`robots` lists them)."""

    def __init__(self, name: str, robot: str | None, robots: list[str] | None = None) -> None:
        self.name, self.robot, self.robots = name, robot, robots or []
        if self.ambiguous:
            message = f"task {name!r} exists for several robots ({', '.join(self.robots)}): choose one"
        else:
            message = f"no task named {name!r}" + (f" for robot {robot!r}" if robot else "")
        super().__init__(message)

    @property
    def ambiguous(self) -> bool:
        return len(self.robots) > 1

    def for_terminal(self) -> str:
        """The same, phrased for `manage.py` commands."""
        if self.ambiguous:
            return f"Task {self.name!r} exists for several robots ({', '.join(self.robots)}); pass --robot"
        where = f" for robot {self.robot!r}" if self.robot else ""
        return f"No task named {self.name!r}{where}. See: python manage.py list_tasks"


def actor_for(user: Any | None) -> str:
    """How a person shows up in the event history."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "system"
    return f"user:{user.get_username()}"


def find_task(name: str, robot: str | None = None) -> Task:
    """The task called `name` (case-sensitive) of `robot`, which may be left out when only one robot
    has a task of that name; `TaskNotFound` when there is none, or several to choose from."""
    if "\x00" in name or "\x00" in (robot or ""):
        raise TaskNotFound(name, robot)  # no row can hold NUL; PostgreSQL refuses the query itself
    tasks = Task.objects.filter(name=name)
    if robot:
        tasks = tasks.filter(robot=robot)
    found = list(tasks.order_by("robot")[:20])
    if len(found) != 1:
        raise TaskNotFound(name, robot, [t.robot for t in found])
    return found[0]


def start_session(
    task: Task,
    config: TrainingConfig | Mapping[str, Any],
    *,
    owner: Any | None = None,
    actor: str | None = None,
    worker_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    resumed_from: TrainingSession | None = None,
    workspace: str = "",
) -> TrainingSession:
    """Validate the options and queue a new session for `task`, on `queue` (workers serve one each).

    `workspace` (a sweep trial's) makes it train in folders of its own (training/paths.py), from
    scratch, away from the task's own success states and policies.

    With `worker_id` the new session is claimed for that worker in the same transaction (queued
    -> running): the CLI supervises its own session, and no other worker may pick it up first.

    Raises `ConfigError` (field -> messages) for bad options, including the isaaclab backend
    without GENHRL_ISAACLAB_ROOT, and `SessionAlreadyActive` when the task already trains: the
    database's conditional unique constraint decides, so concurrent starts give one winner.
    A session whose worker stopped heartbeating is marked interrupted first, so a crashed run
    does not block the task forever. Nothing is launched here; a worker or the CLI runs it.
    """
    cfg = config if isinstance(config, TrainingConfig) else TrainingConfig.from_data(config, task=task)
    if cfg.flat:
        cfg = flat_baseline_config(task, cfg)
        # Its own folders: the flat policy never replaces the root's hierarchical one.
        # Each baseline has folders of its own, so a second one never counts the first one's
        # success states as its own.
        workspace = workspace or f"flat-{cfg.baseline_of or 'task'}-{secrets.token_hex(4)}"
    problem = backend_problem(cfg.backend)
    if problem:
        raise ConfigError({"backend": [problem]})
    try:
        paths.task_dir(task, workspace)
    except paths.UnsafePathError as exc:
        raise ConfigError({"task": [str(exc)]}) from exc
    leases.reap_stale_sessions(task=task)
    who = actor or actor_for(owner)
    try:
        with transaction.atomic():
            session = TrainingSession.objects.create(
                task=task, owner=owner if getattr(owner, "pk", None) else None,
                config=cfg.to_json(), backend=cfg.backend, queue=queue or DEFAULT_QUEUE,
                resumed_from=resumed_from, workspace=workspace,
            )
            created = f"resumes session {resumed_from.pk}" if resumed_from else "session created"
            SessionEvent.objects.create(
                session=session, kind=SessionEvent.Kind.STATUS, to_state=SessionStatus.QUEUED,
                actor=who, message=created,
            )
            if worker_id:
                leases.claim(session, worker_id, actor=who, message="supervised by the process that started it")
    except IntegrityError:
        raise SessionAlreadyActive(active_session(task)) from None
    if worker_id:
        notify_changed(session.pk)
    else:
        notify_queued(session.pk)
    return session


def flat_budget(session: TrainingSession) -> int:
    """The frames a hierarchical session trained: every skill run's frames, summed.

    A composite's frame is one high-level decision (docs/ARCHITECTURE.md), so this is what the
    session's trainers counted, not the simulator steps underneath; the README says so too.
    """
    return int(session.skill_runs.aggregate(total=Sum("frames"))["total"] or 0)


def flat_budget_problem(session: TrainingSession) -> str:
    """Why `session`'s frames are not the whole hierarchy's budget ("" when they are): a session
    that skipped skills trained earlier, or resumed another, counted only part of the frames."""
    if session.resumed_from_id:
        return f"session {session.pk} resumed session {session.resumed_from_id}, so its frames are only part of the training"
    if session.skill_runs.filter(status=SkillStatus.SKIPPED).exists():
        return (f"session {session.pk} skipped skills trained before it, so its frames are only part of the training: "
                "use a session that trained every skill (a --new-run)")
    return ""


def flat_baseline_config(task: Task, cfg: TrainingConfig) -> TrainingConfig:
    """A flat baseline's settings: the hierarchical session's frame budget and seed (`baseline_of`),
    or `max_frames` as the budget when it names none. ConfigError when the session cannot be one."""
    root = task.skills.filter(name=task.root_skill).first()
    if root is None or root.is_primitive:
        raise ConfigError({"flat": [f"{task.name} has no composite root skill: it is flat already"]})
    if cfg.baseline_of is None:
        if cfg.max_frames is None:
            raise ConfigError({"baseline_of": ["a flat baseline needs --baseline-of SESSION (or --max-frames)"]})
        budget, seed = cfg.max_frames, cfg.seed
    else:
        base = TrainingSession.objects.filter(pk=cfg.baseline_of).first()
        if base is None:
            raise ConfigError({"baseline_of": [f"there is no session {cfg.baseline_of}"]})
        if base.task_id != task.pk:
            raise ConfigError({"baseline_of": [f"session {base.pk} trained another task ({base.task.name})"]})
        if base.config.get("flat"):
            raise ConfigError({"baseline_of": [f"session {base.pk} is itself a flat baseline"]})
        if base.status != SessionStatus.COMPLETED:
            raise ConfigError({"baseline_of": [f"session {base.pk} is {base.status}; only a completed session has a budget"]})
        problem = flat_budget_problem(base)
        if problem:
            raise ConfigError({"baseline_of": [problem]})
        budget = flat_budget(base)
        if budget <= 0:
            raise ConfigError({"baseline_of": [f"session {base.pk} trained no frames"]})
        seed = int(base.config.get("seed", cfg.seed))
    # Train exactly the budget: no early stop before it (min frames) and none after it (max).
    return cfg.with_changes(
        seed=seed, max_frames=budget, min_steps_composite=budget, min_steps_primitive=budget,
        skip_complete=False, new_run=False,
    )


def request_cancel(session: TrainingSession, *, actor: str, message: str = "cancel requested") -> TrainingSession:
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
                session=session, kind=SessionEvent.Kind.CANCEL_REQUESTED, actor=actor, message=message
            )
    session.refresh_from_db()
    try:
        if session.status == SessionStatus.QUEUED:
            session.transition_to(SessionStatus.CANCELLED, actor=actor, message="cancelled before it started")
            session.set_stage(Stage.COMPLETE, actor=actor)
            queueing.touch_queue(session.queue)  # the sessions behind it moved up
        elif session.status == SessionStatus.RUNNING:
            session.transition_to(SessionStatus.CANCELLING, actor=actor, message="cancel requested")
    except IllegalTransition:
        # The supervisor moved it meanwhile (claimed, finished); the request row still stands.
        session.refresh_from_db()
    notify_changed(session.pk)
    return session


def latest_resumable_session(task: Task) -> TrainingSession:
    """The task's latest session (`SessionQuerySet.task_state`: never an ended flat baseline, which
    is resumed from its own page), if it can be resumed; else `NotResumable` saying why."""
    session = task.training_sessions.latest_state()
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
        worker_id=worker_id, queue=session.queue, resumed_from=session, workspace=session.workspace,
    )
    SessionEvent.objects.create(
        session=session, kind=SessionEvent.Kind.NOTE, actor=actor, message=f"resumed as session {new.pk}"
    )
    return new


