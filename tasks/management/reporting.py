"""What the import commands print, shared by `import_tasks` and `startup_import`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tasks.importer import ImportReport


def write_report(command: BaseCommand, report: ImportReport) -> None:
    """Print a report in order on stdout, so each warning or failure sits under its task."""
    styles = {"error": command.style.ERROR, "warning": command.style.WARNING}
    for kind, text in report.lines():
        style = styles.get(kind)
        command.stdout.write(style(text) if style else text)
