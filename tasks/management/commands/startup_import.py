"""`manage.py startup_import`: import GENHRL_ISAACLAB_PATH, if set, when the portal starts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tasks.genhrl import GenHRLError
from tasks.importer import import_path
from tasks.management.reporting import write_report


class Command(BaseCommand):
    help = "Import the tasks under settings.GENHRL_ISAACLAB_PATH, if it is set; otherwise do nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.GENHRL_ISAACLAB_PATH
        if not path:
            return
        try:
            report = import_path(path)
        except GenHRLError as exc:
            # A configured path with nothing to import is a deployment mistake: say so loudly.
            raise CommandError(f"GENHRL_ISAACLAB_PATH: {exc}") from exc
        # Tasks that fail are reported but do not stop start-up: the others are still usable.
        write_report(self, report)
