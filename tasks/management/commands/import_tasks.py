"""`manage.py import_tasks PATH` / `--demo`: import GenHRL tasks and say what happened to each."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.genhrl import GenHRLError
from tasks.importer import import_demo, import_path
from tasks.management.reporting import write_report


class Command(BaseCommand):
    help = (
        "Import GenHRL tasks from an Isaac Lab tree, a <Robot>_generated folder or one task folder "
        "(or the bundled demo with --demo). Re-importing updates tasks in place."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", help="Isaac Lab tree, <Robot>_generated folder or task folder")
        parser.add_argument("--demo", action="store_true", help="import the bundled PointMass demo tasks")

    def handle(self, *args: Any, path: str | None, demo: bool, **options: Any) -> None:
        if bool(path) == demo:
            raise CommandError("give either a PATH or --demo")
        try:
            report = import_demo() if demo else import_path(path or "")
        except GenHRLError as exc:
            raise CommandError(str(exc)) from exc
        write_report(self, report)
        if report.failed:
            count = len(report.failed)
            raise CommandError(f"{count} task{'' if count == 1 else 's'} failed to import")
