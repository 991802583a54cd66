"""GenHRL tasks and their skills, as imported from GenHRL's on-disk layout.

The files on disk stay the source of a task's definition; these rows are what the portal shows,
searches and trains from. Re-importing a task updates its rows in place (skills keep their ids, so
training history stays attached).
"""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class Task(models.Model):
    """One GenHRL task (`skills/<task>/skill_library.json`) of one robot."""

    class Backend(models.TextChoices):
        EMBEDDED = "embedded", "Embedded 2-D simulator (CPU)"
        ISAACLAB = "isaaclab", "Isaac Lab (GPU)"

    name = models.CharField(max_length=200)
    robot = models.CharField(max_length=100)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.ISAACLAB)
    description = models.TextField(blank=True)
    root_skill = models.CharField(max_length=200, help_text="Name of the hierarchy's root skill.")
    # The task's folder `<Robot>_generated/skills/<task>/`, absolute.
    source_path = models.CharField(max_length=1000)
    # `<Robot>_generated/` folder the task was found in, absolute; used by "Rescan".
    robot_path = models.CharField(max_length=1000, blank=True)
    object_config = models.JSONField(default=dict, blank=True)
    hierarchy = models.JSONField(default=dict, blank=True, help_text="The library's `structure` tree.")
    warnings = models.JSONField(default=list, blank=True)
    skill_count = models.PositiveIntegerField(default=0)
    levels = models.PositiveIntegerField(default=0, help_text="Number of hierarchy levels (1 = single skill).")
    imported_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "name"]
        constraints = [models.UniqueConstraint(fields=["robot", "name"], name="task_unique_robot_name")]
        indexes = [
            models.Index(fields=["robot", "name"]),
            models.Index(fields=["-imported_at"]),
            models.Index(fields=["name"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.robot})"

    def get_absolute_url(self) -> str:
        return reverse("task_detail", kwargs={"robot": self.robot, "name": self.name})


class Skill(models.Model):
    """One node of a task's skill library. Names are case-sensitive: GenHRL has case twins."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_primitive = models.BooleanField(default=True)
    level = models.PositiveIntegerField(default=0)
    # Position in the training order (0-based): level first, then depth-first pre-order.
    order = models.PositiveIntegerField(default=0)
    # Direct children in order, as named in the library (may name undefined skills).
    sub_skills = models.JSONField(default=list, blank=True)
    used_by = models.JSONField(default=list, blank=True)
    # False for a sub-skill that is named but never defined: it cannot be trained.
    defined = models.BooleanField(default=True)
    # Per-skill definition for the embedded simulator (`embedded.json` in the skill folder), if any.
    embedded_spec = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["task", "order"]
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="skill_unique_task_name")]

    def __str__(self) -> str:
        return f"{self.task.name}/{self.name}"

    @property
    def kind(self) -> str:
        return "primitive" if self.is_primitive else "composite"
