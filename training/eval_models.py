"""A skill's evaluations (issue 13): its published policy run for N episodes, and the result.

Kept beside `training/models.py` (which imports it, so Django registers it with the `training` app).
An evaluation is `queued` (row made), `running` (a process evaluates it; `pid` is that process),
then `completed` with its result, or `failed`/`interrupted`. The result fields are written in the
same update that sets `completed`, so a killed evaluation never leaves a half result that looks
done (`training/evaluations.py` marks it interrupted when its process is gone).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tasks.models import Skill


class Evaluation(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"
        INTERRUPTED = "interrupted", "interrupted"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    skill = models.ForeignKey(Skill, on_delete=models.CASCADE, related_name="evaluations")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, blank=True)
    backend = models.CharField(max_length=20, default="embedded")
    episodes = models.PositiveIntegerField()
    seed = models.PositiveBigIntegerField(default=0)
    video = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The process that evaluates it (`manage.py evaluate`), while it runs.
    pid = models.IntegerField(null=True, blank=True)
    # The result: set together with `completed`, never before.
    successes = models.PositiveIntegerField(null=True, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    mean_return = models.FloatField(null=True, blank=True)
    # The clip, relative to the evaluation's folder (training/paths.py evaluation_dir); "" if none.
    video_file = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["skill", "-created_at"])]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.skill} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
