"""Importing GenHRL tasks from disk into Task and Skill rows.

`import_path` accepts an Isaac Lab tree, one `<Robot>_generated/` folder or one task folder and
imports every task it designates, each in its own transaction: a task that fails leaves its
previous rows (if any) untouched and does not stop the others. Re-importing updates rows in
place, so skills keep their primary keys and the training history attached to them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.db import DatabaseError, transaction

from tasks.genhrl import GenHRLError, TaskInfo, find_task_dirs, parse_task
from tasks.models import Skill, Task

logger = logging.getLogger(__name__)

DEMO_ROBOT_DIR = Path(__file__).resolve().parent / "demo" / "PointMass_generated"

Status = Literal["added", "updated", "unchanged", "failed"]
_TASK_FIELDS = (
    "backend",
    "description",
    "root_skill",
    "source_path",
    "robot_path",
    "object_config",
    "hierarchy",
    "warnings",
    "skill_count",
    "levels",
)
_SKILL_FIELDS = (
    "description",
    "is_primitive",
    "level",
    "order",
    "sub_skills",
    "used_by",
    "defined",
    "embedded_spec",
)


@dataclass
class TaskResult:
    """What happened to one task folder."""

    robot: str
    name: str
    status: Status
    path: str
    error: str = ""  # failed only: names the file and the problem
    warnings: list[str] = field(default_factory=list)
    task_id: int | None = None
    skills: int = 0
    levels: int = 0
    backend: str = ""

    @property
    def label(self) -> str:
        return f"{self.robot}/{self.name}"


@dataclass
class ImportReport:
    """The outcome of one `import_path` call, one TaskResult per task folder found."""

    path: str
    results: list[TaskResult] = field(default_factory=list)

    def _with(self, status: Status) -> list[TaskResult]:
        return [result for result in self.results if result.status == status]

    @property
    def added(self) -> list[TaskResult]:
        return self._with("added")

    @property
    def updated(self) -> list[TaskResult]:
        return self._with("updated")

    @property
    def unchanged(self) -> list[TaskResult]:
        """Tasks whose rows already matched the files: nothing was written (shown as "skipped")."""
        return self._with("unchanged")

    @property
    def failed(self) -> list[TaskResult]:
        return self._with("failed")

    @property
    def warning_count(self) -> int:
        return sum(len(result.warnings) for result in self.results)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} skipped (unchanged), {len(self.failed)} failed, "
            f"{self.warning_count} warning{'' if self.warning_count == 1 else 's'}"
        )

    def lines(self) -> list[tuple[Literal["info", "warning", "error"], str]]:
        """The report as printable lines, each tagged so a command can route and style it."""
        verbs = {"added": "added", "updated": "updated", "unchanged": "skipped", "failed": "FAILED"}
        out: list[tuple[Literal["info", "warning", "error"], str]] = [("info", f"Importing from {self.path}")]
        for result in self.results:
            verb = f"{verbs[result.status]:<8}"
            if result.status == "failed":
                out.append(("error", f"  {verb} {result.label}: {result.error}"))
            else:
                unchanged = ", unchanged" if result.status == "unchanged" else ""
                out.append(
                    (
                        "info",
                        f"  {verb} {result.label} ({result.skills} skills, {result.levels} levels, "
                        f"{result.backend}{unchanged})",
                    )
                )
            out.extend(("warning", f"    warning: {warning}") for warning in result.warnings)
        out.append(("info", f"Summary: {self.summary()}"))
        return out


def import_path(path: Path | str) -> ImportReport:
    """Import every GenHRL task under `path` (Isaac Lab tree, robot folder or task folder).

    Raises GenHRLError when the path does not exist or holds no GenHRL task; a task that cannot
    be imported is reported as failed in the returned report instead.
    """
    task_dirs = find_task_dirs(Path(path))
    report = ImportReport(path=str(Path(path).expanduser().resolve()))
    for task_dir in task_dirs:
        report.results.append(import_task_dir(task_dir))
    return report


def import_demo() -> ImportReport:
    """Import the bundled embedded-simulator demo tasks (robot PointMass)."""
    return import_path(DEMO_ROBOT_DIR)


def import_task_dir(task_dir: Path) -> TaskResult:
    """Import one `<Robot>_generated/skills/<task>` folder in its own transaction."""
    robot_folder = task_dir.parent.parent.name
    fallback_robot = robot_folder.removesuffix("_generated") or robot_folder
    try:
        info = parse_task(task_dir)
    except (GenHRLError, OSError) as exc:
        # OSError: a folder that vanished or became unreadable between listing and reading.
        error = str(exc) if isinstance(exc, GenHRLError) else f"{task_dir}: cannot be read: {exc}"
        logger.warning("GenHRL import failed: %s", error)
        return TaskResult(robot=fallback_robot, name=task_dir.name, status="failed", path=str(task_dir), error=error)
    result = TaskResult(
        robot=info.robot,
        name=info.name,
        status="failed",
        path=str(task_dir),
        warnings=list(info.warnings),
        skills=len(info.skills),
        levels=info.levels,
        backend=_backend(info),
    )
    try:
        with transaction.atomic():
            result.status, result.task_id = _save(info)
    except DatabaseError as exc:
        # Includes ProtectedError: e.g. a removed skill still referenced by training history.
        logger.warning("GenHRL import of %s failed in the database: %s", task_dir, exc)
        result.status = "failed"
        result.error = f"{task_dir}: could not be saved: {exc}"
    return result


def _backend(info: TaskInfo) -> str:
    return (Task.Backend.EMBEDDED if info.all_embedded else Task.Backend.ISAACLAB).value


def _task_values(info: TaskInfo) -> dict[str, Any]:
    return {
        "backend": _backend(info),
        "description": info.description,
        "root_skill": info.root_skill,
        "source_path": str(info.task_dir),
        "robot_path": str(info.robot_dir),
        "object_config": info.object_config,
        "hierarchy": info.structure,
        "warnings": info.warnings,
        "skill_count": len(info.skills),
        "levels": info.levels,
    }


def _save(info: TaskInfo) -> tuple[Status, int]:
    """Create or update the task's rows to match `info`; writes nothing when they already match."""
    values = _task_values(info)
    task = Task.objects.select_for_update().filter(robot=info.robot, name=info.name).first()
    created = task is None
    if task is None:
        task = Task.objects.create(robot=info.robot, name=info.name, **values)
        existing: dict[str, Skill] = {}
    else:
        existing = {skill.name: skill for skill in task.skills.all()}

    to_create: list[Skill] = []
    to_update: list[Skill] = []
    for skill_info in info.skills:
        skill_values = {name: getattr(skill_info, name) for name in _SKILL_FIELDS}
        skill = existing.pop(skill_info.name, None)
        if skill is None:
            to_create.append(Skill(task=task, name=skill_info.name, **skill_values))
        elif any(getattr(skill, name) != value for name, value in skill_values.items()):
            for name, value in skill_values.items():
                setattr(skill, name, value)
            to_update.append(skill)
    removed = list(existing.values())

    task_changed = any(getattr(task, name) != value for name, value in values.items())
    if not created and not (task_changed or to_create or to_update or removed):
        return "unchanged", task.pk

    if removed:
        Skill.objects.filter(pk__in=[skill.pk for skill in removed]).delete()
    if to_update:
        Skill.objects.bulk_update(to_update, list(_SKILL_FIELDS))
    if to_create:
        Skill.objects.bulk_create(to_create)
    if not created:
        for name, value in values.items():
            setattr(task, name, value)
        # Saved even when only skills changed, so updated_at says when the task last changed.
        task.save()
    return ("added" if created else "updated"), task.pk
