"""`manage.py status TASK [--robot R] [--json]`: a task's skills in training order, with training state.

`build_status_rows` and `STATUS_COLUMNS` are the extension points: add a key to each row and a
column to the list, and both the text and the JSON output carry it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Task
from training import queries, services


def build_status_rows(task: Task) -> list[dict[str, Any]]:
    """One row per skill in training order (undefined, untrainable skills last), with training state.

    Training columns come from `training.queries.skill_status_rows`, the same rows the web pages
    and the status API show, so the terminal and the portal never disagree.
    """
    rows = []
    for row in sorted(queries.skill_status_rows(task), key=lambda r: (not r["defined"], r["order"])):
        last_run_at = row["last_run_at"]
        rows.append(
            {
                "name": row["skill"],
                "level": row["level"],
                # An undefined skill has no kind and no place in the training order.
                "is_primitive": row["is_primitive"] if row["defined"] else None,
                "order": row["order"] if row["defined"] else None,
                "defined": row["defined"],
                "status": row["status"],
                "success_states": row["success_states"],
                "min_success_states": row["min_success_states"],
                "has_policy": row["has_policy"],
                "last_run_at": last_run_at.isoformat() if last_run_at else None,
                "last_run_elapsed_s": row["last_run_elapsed_s"],
                "last_result": row["last_result"],
                "last_error": row["last_error"],
                "todo_reason": row["todo_reason"],
            }
        )
    return rows


def _last_run(row: dict[str, Any]) -> str:
    if not row["last_run_at"]:
        return "never"
    when = row["last_run_at"][:16].replace("T", " ")
    elapsed = row.get("last_run_elapsed_s")
    took = f" ({_duration(elapsed)})" if elapsed is not None else ""
    return f"{when}{took} {row['last_result']}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _kind(row: dict[str, Any]) -> str:
    if not row["defined"]:
        return "undefined (cannot be trained)"
    return "primitive" if row["is_primitive"] else "composite"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict[str, Any]], str]
    align: str = "<"


STATUS_COLUMNS: list[Column] = [
    Column("#", lambda row: str(row["order"] + 1) if row["defined"] else "-", ">"),
    Column("SKILL", lambda row: row["name"]),
    Column("LEVEL", lambda row: str(row["level"]) if row["defined"] else "-", ">"),
    Column("KIND", _kind),
    Column("STATUS", lambda row: row["status"]),
    Column("SUCCESS STATES", lambda row: f"{row['success_states']}/{row['min_success_states']}", ">"),
    Column("POLICY", lambda row: "yes" if row["has_policy"] else "no"),
    Column("LAST RUN", _last_run),
]


def format_status(task: Task, rows: list[dict[str, Any]], columns: list[Column] = STATUS_COLUMNS) -> list[str]:
    """The text output: a header line, one aligned line per row, then the task's import warnings."""
    lines = [
        f"{task.name} (robot {task.robot}, {task.backend}): {task.skill_count} skills, "
        f"{task.levels} levels, root skill {task.root_skill}"
    ]
    cells = [[column.value(row) for column in columns] for row in rows]
    widths = [max([len(column.header), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]

    def render(values: list[str]) -> str:
        return "  ".join(
            f"{value:{column.align}{width}}" for value, column, width in zip(values, columns, widths, strict=True)
        ).rstrip()

    lines.append("  " + render([column.header for column in columns]))
    lines.extend("  " + render(line) for line in cells)
    if task.warnings:
        lines.append(f"{len(task.warnings)} import warning{'' if len(task.warnings) == 1 else 's'}:")
        lines.extend(f"  - {warning}" for warning in task.warnings)
    return lines


class Command(BaseCommand):
    help = (
        "Show a task's skills in training order with level, kind, training status, success states, "
        "whether a policy exists and the last run (like `genhrl status`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task", help="task name (case-sensitive)")
        parser.add_argument("--robot", help="robot, needed when several robots have a task of that name")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args: Any, task: str, robot: str | None, as_json: bool, **options: Any) -> None:
        try:
            found = services.find_task(task, robot)
        except services.TaskNotFound as exc:
            raise CommandError(exc.for_terminal()) from None
        rows = build_status_rows(found)
        if as_json:
            self.stdout.write(json.dumps({"task": found.name, "robot": found.robot, "skills": rows}, indent=2))
            return
        for line in format_status(found, rows):
            self.stdout.write(line)
