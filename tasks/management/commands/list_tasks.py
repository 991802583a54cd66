"""`manage.py list_tasks [--robot R] [--json]`: the imported tasks, like GenHRL's `genhrl list`."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks.models import Task

# `genhrl list` shows the first 100 characters of each description.
DESCRIPTION_CHARS = 100


def task_rows(robot: str | None = None) -> list[dict[str, Any]]:
    """One dict per task, sorted by robot then name; reads stored counts, never the skills."""
    tasks = Task.objects.order_by("robot", "name").only(
        "name", "robot", "skill_count", "levels", "backend", "description", "imported_at"
    )
    if robot:
        tasks = tasks.filter(robot=robot)
    return [
        {
            "name": task.name,
            "robot": task.robot,
            "skills": task.skill_count,
            "levels": task.levels,
            "backend": task.backend,
            "description": task.description,
            "imported_at": task.imported_at.isoformat(),
        }
        for task in tasks.iterator(chunk_size=500)
    ]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 3] + "..."


class Command(BaseCommand):
    help = "List the imported GenHRL tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--robot", help="only this robot's tasks (case-sensitive, e.g. G1)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args: Any, robot: str | None, as_json: bool, **options: Any) -> None:
        rows = task_rows(robot)
        if as_json:
            self.stdout.write(json.dumps({"tasks": rows}, indent=2))
            return
        if not rows:
            where = f" for robot {robot!r}" if robot else ""
            self.stdout.write(f"No tasks{where}. Import some with: python manage.py import_tasks PATH (or --demo)")
            return
        width = max(len(row["name"]) for row in rows)
        current_robot = None
        for row in rows:
            if row["robot"] != current_robot:
                current_robot = row["robot"]
                self.stdout.write(self.style.MIGRATE_HEADING(f"Robot {current_robot}:"))
            self.stdout.write(
                f"  {row['name']:<{width}}  {row['skills']:>3} skills  {row['levels']} levels  "
                f"{row['backend']:<8}  imported {row['imported_at'][:16].replace('T', ' ')}"
            )
            if row["description"]:
                self.stdout.write(f"      {_short(row['description'])}")
        self.stdout.write(f"{len(rows)} task{'' if len(rows) == 1 else 's'}")
