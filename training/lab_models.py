"""The rows of running a lab on the portal (issue 14): presets, sweeps, workers' figures,
notifications and per-user session limits.

Kept beside `training/models.py` (which imports them, so Django registers them with the `training`
app) because they are built on sessions rather than part of a session's own life:

- `Preset`: a saved training form, personal or shared with the lab;
- `Sweep` and `SweepTrial`: one task trained over a set of settings, each trial an ordinary session;
- `WorkerStatus`, `WorkerSample`, `ResourceSample`: what each worker's heartbeat reports about its
  host, and each trainer's CPU, memory and GPU memory, with a bounded history;
- `NotificationSettings` and `Notification`: who wants to hear when a session ends, and the outbox
  of messages, each retried with backoff until sent or given up;
- `SessionLimit`: how many sessions a user (or, with no user, everyone) may run at once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Preset(models.Model):
    """A named set of training options: the training form, saved to be used again.

    `options` are JSON values keyed by option name, exactly what `TrainingConfig.from_data(strict=True)`
    takes; they are checked again each time the preset is used, so a preset that no longer validates
    (an option removed, a range narrowed) says so instead of starting.
    """

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_presets")
    # Shared presets are seen and used by every signed-in user; sharing needs `training.share_preset`.
    shared = models.BooleanField(default=False)
    description = models.CharField(max_length=300, blank=True)
    options = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        permissions = [("share_preset", "Can share training presets with the lab")]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="training_preset_unique_owner_name"),
            # A shared preset is found by its name alone (`manage.py train --preset NAME`).
            models.UniqueConstraint(fields=["name"], condition=Q(shared=True), name="training_preset_unique_shared_name"),
        ]

    def __str__(self) -> str:
        return self.name if self.shared else f"{self.owner.get_username()}/{self.name}"


class Sweep(models.Model):
    """One task trained over a set of settings; each trial is an ordinary queued session."""

    class Method(models.TextChoices):
        GRID = "grid", "Grid"
        RANDOM = "random", "Random sample"
        SEARCH = "search", "Automated search (Optuna)"

    class Metric(models.TextChoices):
        SUCCESS_RATE = "success_rate", "Success rate of the root skill"
        FRAMES = "frames", "Total frames to complete"
        WALL_TIME = "wall_time", "Wall time to complete"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="sweeps")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_sweeps"
    )
    name = models.CharField(max_length=100)
    method = models.CharField(max_length=20, choices=Method.choices)
    metric = models.CharField(max_length=20, choices=Metric.choices, default=Metric.SUCCESS_RATE)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    # The options every trial shares (validated), then what varies: option -> {"values": [...]} or
    # {"low": x, "high": y, "log": bool}; each setting is trained once per seed.
    base = models.JSONField(default=dict)
    space = models.JSONField(default=dict)
    seeds = models.JSONField(default=list)
    # Settings to try (random and search; a grid tries every combination).
    budget = models.PositiveIntegerField(default=0)
    # Seeds the random sample and the search's sampler, so a sweep can be repeated.
    random_seed = models.PositiveIntegerField(default=0)
    queue = models.CharField(max_length=100, default="default")
    # What it waits for, when it waits (the task busy with another session); empty otherwise.
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "queue"])]

    def __str__(self) -> str:
        return f"sweep {self.pk} {self.name!r} of {self.task}"

    @property
    def is_running(self) -> bool:
        return self.status == self.Status.RUNNING


class SweepTrial(models.Model):
    """One setting of a sweep with one seed: planned first, then queued as a session of its own."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField(help_text="Order of the trials in the sweep, from 0.")
    setting = models.PositiveIntegerField(help_text="Which setting; its seeds share the number.")
    seed = models.BigIntegerField()
    # The options this trial changes (the setting, without the seed).
    params = models.JSONField(default=dict)
    session = models.OneToOneField(
        "training.TrainingSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="sweep_trial"
    )
    # The sweep's metric, once the session ended (None: it has no result, e.g. it failed).
    value = models.FloatField(null=True, blank=True)
    scored = models.BooleanField(default=False)
    # Why it could not be queued (its options did not validate), if so.
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "number"], name="training_sweeptrial_unique_number"),
        ]

    def __str__(self) -> str:
        return f"trial {self.number} of sweep {self.sweep_id}"

    @property
    def workspace(self) -> str:
        """The folder it trains in, away from the task's own results (training/paths.py)."""
        return f"sweep-{self.sweep_id}-trial-{self.number}"


class WorkerStatus(models.Model):
    """A worker as its last heartbeat described it: host figures, slots and what it trains."""

    worker_id = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField(default=0)
    queue = models.CharField(max_length=100, default="default")
    embedded = models.BooleanField(default=False)
    slots = models.PositiveIntegerField(default=1)
    busy_slots = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    cpu_count = models.PositiveIntegerField(default=0)
    cpu_percent = models.FloatField(default=0.0)
    load_1 = models.FloatField(null=True, blank=True)
    memory_total = models.BigIntegerField(default=0)
    memory_used = models.BigIntegerField(default=0)
    # One object per GPU: index, name, utilization (%), memory_used, memory_total (bytes), temperature (°C).
    gpus = models.JSONField(default=list)
    # Why there are no GPU figures ("no NVIDIA driver", "nvidia-ml-py is not installed"), if so.
    gpu_note = models.CharField(max_length=300, blank=True)
    # What it trains now: [{session, task, skills: [{run, skill, cpu_percent, rss, gpu_memory}]}].
    sessions = models.JSONField(default=list)

    class Meta:
        ordering = ["hostname", "worker_id"]
        indexes = [models.Index(fields=["-heartbeat_at"])]

    def __str__(self) -> str:
        return f"worker {self.worker_id}"


class WorkerSample(models.Model):
    """One heartbeat's host figures of a worker: its recent history (bounded per worker)."""

    worker = models.ForeignKey(WorkerStatus, on_delete=models.CASCADE, related_name="samples")
    time = models.DateTimeField(default=timezone.now)
    cpu_percent = models.FloatField()
    memory_used = models.BigIntegerField()
    # [{index, utilization, memory_used, temperature}] per GPU.
    gpus = models.JSONField(default=list)

    class Meta:
        ordering = ["worker", "time", "pk"]
        indexes = [models.Index(fields=["worker", "time"])]

    def __str__(self) -> str:
        return f"{self.worker_id} at {self.time:%H:%M:%S}: cpu {self.cpu_percent:g}%"


class ResourceSample(models.Model):
    """A trainer's CPU, memory and GPU memory at one heartbeat (its process group, summed)."""

    skill_run = models.ForeignKey("training.SkillRun", on_delete=models.CASCADE, related_name="resource_samples")
    time = models.DateTimeField(default=timezone.now)
    elapsed = models.FloatField(help_text="Seconds since the trainer started.")
    cpu_percent = models.FloatField(help_text="100 = one core busy.")
    rss = models.BigIntegerField(help_text="Resident memory of its processes, bytes.")
    gpu_memory = models.BigIntegerField(null=True, blank=True, help_text="GPU memory of its processes, bytes.")
    processes = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["skill_run", "time", "pk"]
        indexes = [models.Index(fields=["skill_run", "time"])]

    def __str__(self) -> str:
        return f"run {self.skill_run_id} at {self.elapsed:g} s: cpu {self.cpu_percent:g}%, rss {self.rss}"


class NotificationSettings(models.Model):
    """What a user wants to hear about their sessions, and where."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_notifications")
    email = models.BooleanField(default=False, help_text="Send an e-mail to the account's address.")
    webhook_url = models.URLField(max_length=500, blank=True)
    on_completed = models.BooleanField(default=True)
    on_failed = models.BooleanField(default=True)
    # Sessions that ended before the user turned notifications on are never announced.
    since = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"notifications of {self.user}"

    @property
    def enabled(self) -> bool:
        return (self.email or bool(self.webhook_url)) and (self.on_completed or self.on_failed)


class Notification(models.Model):
    """One message about one session to one user on one channel: the outbox row.

    Created when a session ends, delivered by a worker's notifier thread (never by the supervisor),
    retried with backoff; a sender claims it first with a conditional UPDATE, so two workers never
    send it twice.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    session = models.ForeignKey("training.TrainingSession", on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_messages")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    # The session's status it announces (completed, failed, interrupted).
    event = models.CharField(max_length=20)
    target = models.CharField(max_length=500, help_text="The address or URL it goes to.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender that claimed it and died leaves it `sending`; after this it may be claimed again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["session", "user", "channel"], name="training_notification_once"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} about session {self.session_id} ({self.status})"


class SessionLimit(models.Model):
    """How many sessions a user may have running at once; the row without a user is everyone's.

    Enforced when a worker claims (training/leases.py): a queued session whose owner is at the limit
    waits, and those behind it go first. 0 means no limit.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="training_limit"
    )
    max_running = models.PositiveIntegerField(default=0)
    updated_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        who = self.user.get_username() if self.user_id else "everyone"
        return f"{who}: {self.max_running or 'no'} limit"
