"""Training sessions, their skill runs, and everything a run reports.

A session trains one task's skills in order, one trainer subprocess per skill (`SkillRun`). The
database is the source of truth for every viewer: the supervisor writes what it learns as it
happens, and each status change is also a `SessionEvent` row, which is the history and the audit
log (who cancelled, what `--new-run` deleted).

Status changes go through `transition_to`, which refuses moves the state machine does not allow
and applies the change with a conditional UPDATE, so two processes (the worker finishing a run and
the web cancelling it) cannot both win.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import Skill, Task


class IllegalTransition(ValueError):
    """A status change the state machine does not allow, or one that lost a race."""


class SessionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    INTERRUPTED = "interrupted", "Interrupted"

    @classmethod
    def active(cls) -> frozenset[str]:
        return _SESSION_ACTIVE

    @classmethod
    def terminal(cls) -> frozenset[str]:
        return _SESSION_TERMINAL

    @classmethod
    def resumable(cls) -> frozenset[str]:
        """Ended without training everything: `services.resume_session` may continue these."""
        return _SESSION_RESUMABLE

    @property
    def color(self) -> str:
        """Bootstrap-style colour name of the badge (`status-<colour>` in the templates)."""
        return _SESSION_COLORS[self]


_SESSION_ACTIVE = frozenset({SessionStatus.QUEUED, SessionStatus.RUNNING, SessionStatus.CANCELLING})
_SESSION_TERMINAL = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED, SessionStatus.INTERRUPTED}
)
_SESSION_RESUMABLE = frozenset({SessionStatus.INTERRUPTED, SessionStatus.FAILED, SessionStatus.CANCELLED})
# Interrupted: the worker stopped heartbeating (crashed, host lost); any active state can end so.
SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    SessionStatus.QUEUED: frozenset(
        {SessionStatus.RUNNING, SessionStatus.CANCELLED, SessionStatus.FAILED, SessionStatus.INTERRUPTED}
    ),
    SessionStatus.RUNNING: frozenset(
        {SessionStatus.CANCELLING, SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.INTERRUPTED}
    ),
    # A cancel that arrives as the last skill completes may still end `completed` or `failed`.
    SessionStatus.CANCELLING: frozenset(
        {SessionStatus.CANCELLED, SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.INTERRUPTED}
    ),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
    SessionStatus.INTERRUPTED: frozenset(),
}


class Stage(models.TextChoices):
    INITIALIZING = "initializing", "Initializing"
    PLANNING = "planning", "Planning"
    TRAINING = "training", "Training"
    COMPLETE = "complete", "Complete"


STAGE_ORDER = [Stage.INITIALIZING, Stage.PLANNING, Stage.TRAINING, Stage.COMPLETE]


class SkillStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    TRAINING = "training", "Training"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def active(cls) -> frozenset[str]:
        return _SKILL_ACTIVE

    @classmethod
    def terminal(cls) -> frozenset[str]:
        return _SKILL_TERMINAL

    @classmethod
    def done(cls) -> frozenset[str]:
        """Statuses that count as done for the session: skipped means already trained."""
        return _SKILL_DONE

    @property
    def color(self) -> str:
        return _SKILL_COLORS[self]


_SKILL_ACTIVE = frozenset({SkillStatus.PENDING, SkillStatus.TRAINING})
_SKILL_TERMINAL = frozenset(
    {SkillStatus.COMPLETED, SkillStatus.FAILED, SkillStatus.SKIPPED, SkillStatus.CANCELLED}
)
_SKILL_DONE = frozenset({SkillStatus.COMPLETED, SkillStatus.SKIPPED})
SKILL_TRANSITIONS: dict[str, frozenset[str]] = {
    # A pending skill fails without training when its session fails before reaching it.
    SkillStatus.PENDING: frozenset(
        {SkillStatus.TRAINING, SkillStatus.SKIPPED, SkillStatus.CANCELLED, SkillStatus.FAILED}
    ),
    SkillStatus.TRAINING: frozenset({SkillStatus.COMPLETED, SkillStatus.FAILED, SkillStatus.CANCELLED}),
    SkillStatus.COMPLETED: frozenset(),
    SkillStatus.FAILED: frozenset(),
    SkillStatus.SKIPPED: frozenset(),
    SkillStatus.CANCELLED: frozenset(),
}

_SESSION_COLORS: dict[str, str] = {
    SessionStatus.QUEUED: "secondary",
    SessionStatus.RUNNING: "primary",
    SessionStatus.CANCELLING: "warning",
    SessionStatus.COMPLETED: "success",
    SessionStatus.FAILED: "danger",
    SessionStatus.CANCELLED: "dark",
    SessionStatus.INTERRUPTED: "warning",
}
_SKILL_COLORS: dict[str, str] = {
    SkillStatus.PENDING: "secondary",
    SkillStatus.TRAINING: "primary",
    SkillStatus.COMPLETED: "success",
    SkillStatus.SKIPPED: "info",
    SkillStatus.FAILED: "danger",
    SkillStatus.CANCELLED: "dark",
}
# Every status value (sessions' and skills') to its colour, for templates that get a plain string.
STATUS_COLORS: dict[str, str] = {str(k): v for k, v in (_SESSION_COLORS | _SKILL_COLORS).items()}


def _apply_transition(
    obj: models.Model,
    allowed: dict[str, frozenset[str]],
    to: str,
    fields: dict[str, Any],
    event: dict[str, Any],
) -> None:
    """Move `obj.status` to `to` with a conditional UPDATE and record the event, in one transaction.

    The object in memory changes only once that transaction committed: a write that fails (the
    database went away) leaves it as the database has it, so the caller can simply try again.
    """
    current: str = obj.status  # type: ignore[attr-defined]
    if to not in allowed[current]:
        raise IllegalTransition(f"{type(obj).__name__} {obj.pk}: {current} -> {to} is not allowed")
    changes = {"status": to, **fields}
    if hasattr(obj, "updated_at"):
        changes["updated_at"] = timezone.now()
    with transaction.atomic():
        updated = type(obj)._default_manager.filter(pk=obj.pk, status=current).update(**changes)
        if not updated:
            obj.refresh_from_db(fields=["status"])
            raise IllegalTransition(
                f"{type(obj).__name__} {obj.pk} is now {obj.status}, no longer {current}"  # type: ignore[attr-defined]
            )
        SessionEvent.objects.create(from_state=current, to_state=to, **event)
    for name, value in changes.items():
        setattr(obj, name, value)


def hierarchical(prefix: str = "") -> Q:
    """Sessions (through `prefix`, e.g. "session__") that are not flat baselines (issue 13: `train
    --flat --baseline-of S`, the root alone in a workspace of its own; `config["flat"]` marks them).

    Not `exclude(config__flat=True)`: a config without the key (older sessions) is NULL there, and
    NOT NULL drops the row.
    """
    return Q(**{f"{prefix}config__flat": False}) | Q(**{f"{prefix}config__flat__isnull": True})


class SessionQuerySet(models.QuerySet["TrainingSession"]):
    def task_state(self) -> SessionQuerySet:
        """The sessions a task's training state is about: its badge and panel, `manage.py status`, the
        status API and the session "Resume" (`--resume`) continues. Its hierarchical sessions, and
        whichever session is active: a running flat baseline still holds the task (nothing else may
        start), but once it ends it is only listed where sessions are (the history, the session it
        is the baseline of), never the task's "latest session", unless someone opens it.
        """
        return self.filter(hierarchical() | Q(status__in=sorted(_SESSION_ACTIVE)))

    def latest_state(self) -> TrainingSession | None:
        """The newest of `task_state()`: what a task's badge, panel, status and resume are about."""
        return self.task_state().order_by("-created_at", "-pk").first()


class TrainingSession(models.Model):
    """One request to train a task's skills, from the CLI or the web; the unit a worker claims."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="training_sessions")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="training_sessions",
    )
    # A validated `training.config.TrainingConfig`, as `to_json()`.
    config = models.JSONField(default=dict)
    # Workers serve one queue each (`training_worker --queue`); the embedded worker serves "default".
    queue = models.CharField(max_length=100, default="default")
    # Place in its queue: workers claim the lowest first (training/queueing.py). The time it was
    # queued, unless staff moved it; a sweep's next trial is queued when the last one ends, so it
    # joins the back of the queue behind everyone who queued meanwhile.
    queue_rank = models.FloatField(default=time.time)
    # "" trains in the task's own folders; a sweep trial trains from scratch in a folder of its own
    # (training/paths.py WORKSPACES), never touching the task's success states and policies.
    workspace = models.CharField(max_length=100, blank=True, default="")
    # A resume is a new session (terminal sessions stay terminal, so their history is never rewritten);
    # this links it to the one it continues.
    resumed_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resumed_by"
    )
    backend = models.CharField(max_length=20, choices=Task.Backend.choices)
    status = models.CharField(max_length=20, choices=SessionStatus.choices, default=SessionStatus.QUEUED)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.INITIALIZING)
    current_skill = models.ForeignKey(
        Skill, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched on every write by the supervisor; changes that a poller or relay can key on.
    updated_at = models.DateTimeField(default=timezone.now)
    # The supervising worker's lease: a stale heartbeat means the worker is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    # Process group of the trainer running now (its leader's pid), for operators; null between skills.
    pid = models.IntegerField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # Trainer wall-clock time (epoch seconds) of the last record applied: end-to-end latency probe.
    source_time = models.FloatField(null=True, blank=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        # Starting spends compute, so it is granted (training.permissions; the Researchers group).
        permissions = [("start_training", "Can start training")]
        constraints = [
            # Concurrent starts (two tabs, CLI and web) must give exactly one winner.
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(status__in=sorted(_SESSION_ACTIVE)),
                name="training_one_active_session_per_task",
            ),
        ]
        indexes = [
            models.Index(fields=["task", "-created_at"]),
            # Workers look for queued sessions; the reaper for stale running ones.
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["status", "queue", "created_at"]),
            # The claim order of a queue (training/queueing.py).
            models.Index(fields=["status", "queue", "queue_rank"]),
            models.Index(fields=["-updated_at"]),
            # The history list and the dashboard's recent results, newest first, read by index
            # instead of sorting every session (issue 11: 17 ms -> 1 ms at 10,000 sessions).
            models.Index(fields=["-created_at", "-id"], name="training_session_created_idx"),
            models.Index(fields=["-finished_at", "-id"], name="training_session_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.task} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in _SESSION_ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in _SESSION_TERMINAL

    @property
    def color(self) -> str:
        return SessionStatus(self.status).color

    def training_config(self) -> Any:
        from training.config import TrainingConfig

        return TrainingConfig.from_json(self.config)

    def transition_to(self, to: str, *, actor: str, message: str = "", **fields: Any) -> None:
        """Change status (refusing illegal moves and lost races) and record the change as an event."""
        now = timezone.now()
        if to == SessionStatus.RUNNING and self.started_at is None:
            fields.setdefault("started_at", now)
        if to in _SESSION_TERMINAL:
            fields.setdefault("finished_at", now)
            fields.setdefault("pid", None)
        _apply_transition(self, SESSION_TRANSITIONS, to, fields, {
            "session": self, "kind": SessionEvent.Kind.STATUS, "message": message, "actor": actor,
        })

    def set_stage(self, stage: str, *, actor: str, message: str = "") -> None:
        """Advance the stage (never backwards) and record it."""
        if STAGE_ORDER.index(stage) < STAGE_ORDER.index(self.stage):
            raise IllegalTransition(f"stage {self.stage} -> {stage} goes backwards")
        if stage == self.stage:
            return
        with transaction.atomic():
            TrainingSession.objects.filter(pk=self.pk).update(stage=stage, updated_at=timezone.now())
            SessionEvent.objects.create(
                session=self, kind=SessionEvent.Kind.STAGE, from_state=self.stage, to_state=stage,
                message=message, actor=actor,
            )
        self.stage = stage


class SkillRun(models.Model):
    """One skill within a session: planned at the start, then trained, skipped or cancelled."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="skill_runs")
    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="runs")
    order = models.PositiveIntegerField(help_text="Position in this session's training order.")
    status = models.CharField(max_length=20, choices=SkillStatus.choices, default=SkillStatus.PENDING)
    # 1 for the first run of this skill that ever trained, across all sessions of the task.
    attempt = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    elapsed_seconds = models.FloatField(default=0.0)
    # The trainer's pid (= its process group) with the local executor; kept after the end for the record.
    pid = models.IntegerField(null=True, blank=True)
    # Where the trainer runs ("local" or "ray") and, for Ray, its job's submission id: stored before
    # the job is submitted, so a crash between the two never leaves a job nobody can find.
    executor = models.CharField(max_length=20, default="local")
    job_id = models.CharField(max_length=200, blank=True, db_index=True)
    exit_code = models.IntegerField(null=True, blank=True)
    # Success states in the skill's folder (all runs), as last reported or counted on disk.
    success_states = models.PositiveIntegerField(default=0)
    min_success_states = models.PositiveIntegerField(default=0)
    start_states = models.PositiveIntegerField(default=0, help_text="Start states the trainer loaded.")
    start_states_from = models.ForeignKey(
        Skill, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The previous sibling in execution order whose success states this run starts from.",
    )
    min_frames = models.BigIntegerField(default=0)
    frames = models.BigIntegerField(default=0)
    epochs = models.PositiveIntegerField(default=0)
    fps = models.FloatField(null=True, blank=True)
    best_reward = models.FloatField(null=True, blank=True)
    last_reward = models.FloatField(null=True, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    run_dir = models.CharField(max_length=1000, blank=True)
    # Why the run ended: target_reached, time_limit, cancelled, crashed, skipped ...
    stop_reason = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    # The last lines of output (the full log is `run_dir/trainer.log`); kept after LogLine pruning.
    log_excerpt = models.TextField(blank=True)
    log_line_count = models.PositiveIntegerField(default=0)
    source_time = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["session", "order"]
        constraints = [
            models.UniqueConstraint(fields=["session", "skill"], name="training_skillrun_unique_session_skill"),
        ]
        indexes = [models.Index(fields=["skill", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.skill.name} in session {self.session_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in _SKILL_ACTIVE

    @property
    def is_terminal(self) -> bool:
        return self.status in _SKILL_TERMINAL

    @property
    def color(self) -> str:
        return SkillStatus(self.status).color

    def transition_to(self, to: str, *, actor: str, message: str = "", **fields: Any) -> None:
        """Change status (refusing illegal moves) and record the change as a session event."""
        now = timezone.now()
        if to == SkillStatus.TRAINING:
            fields.setdefault("started_at", now)
        if to in _SKILL_TERMINAL:
            fields.setdefault("finished_at", now)
            started = fields.get("started_at", self.started_at)
            if started is not None:
                fields.setdefault("elapsed_seconds", (now - started).total_seconds())
        _apply_transition(self, SKILL_TRANSITIONS, to, fields, {
            "session_id": self.session_id, "skill_run": self, "kind": SessionEvent.Kind.SKILL_STATUS,
            "message": message, "actor": actor,
        })


# The curves a trainer's progress records fill (engine/recording.py), by record field.
METRIC_TAGS = ("mean_reward", "mean_episode_length", "success_rate", "success_states", "fps")


class MetricPoint(models.Model):
    """One scalar of a skill run's curve (tag such as `mean_reward`) at a frame count."""

    skill_run = models.ForeignKey(SkillRun, on_delete=models.CASCADE, related_name="metric_points")
    tag = models.CharField(max_length=100)
    step = models.BigIntegerField(help_text="Frames trained when the value was measured.")
    value = models.FloatField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["skill_run", "tag", "step"]
        indexes = [models.Index(fields=["skill_run", "tag", "step"])]

    def __str__(self) -> str:
        return f"{self.tag}@{self.step}={self.value:g}"


class LogLine(models.Model):
    """A line of a trainer's output. Only a recent tail is kept per run; `seq` numbers every line.

    The full output is in the run folder's `trainer.log`. Under a flood of output the supervisor
    stores the newest lines and skips the rest (their `seq` numbers are the gap), so the database
    never falls behind the trainer.
    """

    class Stream(models.TextChoices):
        STDOUT = "stdout", "stdout"
        STDERR = "stderr", "stderr"
        SYSTEM = "system", "supervisor"

    skill_run = models.ForeignKey(SkillRun, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=10, choices=Stream.choices)
    text = models.TextField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["skill_run", "seq"]
        constraints = [models.UniqueConstraint(fields=["skill_run", "seq"], name="training_logline_unique_seq")]

    def __str__(self) -> str:
        return f"{self.seq} {self.stream}: {self.text[:80]}"


class SessionEvent(models.Model):
    """A change in a session's life: status, stage, skill status, cancel request, deletion, warning."""

    class Kind(models.TextChoices):
        STATUS = "status", "Session status"
        STAGE = "stage", "Stage"
        SKILL_STATUS = "skill_status", "Skill status"
        CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
        ARTIFACTS_DELETED = "artifacts_deleted", "Artifacts deleted"
        WARNING = "warning", "Warning"
        NOTE = "note", "Note"

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="events")
    skill_run = models.ForeignKey(
        SkillRun, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    message = models.TextField(blank=True)
    # Who caused it: "user:<username>", "cli:<login>", "worker:<id>", "system".
    actor = models.CharField(max_length=200)
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["time", "pk"]
        indexes = [
            models.Index(fields=["session", "time"]),
            # `ordering` across all sessions (the admin's event list): read in order, never sorted.
            models.Index(fields=["time", "id"], name="training_event_time_idx"),
        ]

    def __str__(self) -> str:
        change = f"{self.from_state} -> {self.to_state}" if self.to_state else self.message[:60]
        return f"{self.kind}: {change}"


from training.eval_models import Evaluation  # noqa: E402, F401  (issue 13: a skill's evaluations)
from training.lab_models import (  # noqa: E402, F401  (issue 14's models, in their own module)
    Notification,
    NotificationSettings,
    Preset,
    ResourceSample,
    SessionLimit,
    Sweep,
    SweepTrial,
    WorkerSample,
    WorkerStatus,
)
from training.tokens import ApiToken  # noqa: E402, F401  (defined beside its helpers; registered here)
