"""`manage.py cleanup_sessions --older-than DAYS [--dry-run]`: the admin's clean-up, from cron.

In order: sessions whose worker stopped heartbeating are marked interrupted; terminal sessions that
finished more than DAYS days ago are deleted with their run folders (never a skill's published
policy or success states: see `training.pruning`); the remaining finished sessions' log lines and
metric points are pruned by the policy in `training.pruning`. With `--dry-run` nothing changes and
everything that would be removed is printed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import leases, pruning

# What each line says it does: the plan in a dry run, the deed in a real one.
DOING = {"delete": "deleting", "remove": "removing", "mark": "marked"}


def _verb(verb: str, dry_run: bool) -> str:
    return f"would {verb}" if dry_run else DOING[verb]


class Command(BaseCommand):
    help = (
        "Mark stale sessions interrupted, delete finished sessions older than DAYS days with their run "
        "folders (skills' policies and success states are kept), and prune old log lines and metric "
        "points. --dry-run prints what would be done and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than", type=float, required=True, metavar="DAYS",
            help="Delete terminal sessions that finished more than DAYS days ago.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be removed; change nothing.")
        parser.add_argument(
            "--no-prune", action="store_true",
            help="Skip pruning the log lines and metric points of the sessions that are kept.",
        )

    def handle(self, *args: Any, older_than: float, dry_run: bool, no_prune: bool, **options: Any) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days")
        self._reap(dry_run)

        # Batch by batch (a few queries each, memory bounded by the batch): the same lines as one pass.
        report = pruning.DeleteReport()
        for batch in pruning.doomed_batches(older_than):
            for session in batch:
                self.stdout.write(
                    f"{_verb('delete', dry_run)} session {session.pk} of {session.robot}/{session.task} "
                    f"({session.status}, finished {session.finished_at:%Y-%m-%d %H:%M})"
                )
                for folder in session.folders:
                    if folder.exists:
                        self.stdout.write(f"  {_verb('remove', dry_run)} {folder.path} ({pruning.format_bytes(folder.size)})")
            pruning.delete_doomed(batch, report, dry_run=dry_run)
        for pk, error in report.failed.items():
            self.stderr.write(f"session {pk} kept: could not remove its run folders: {error}")
        self.stdout.write(
            f"{'Would delete' if dry_run else 'Deleted'} {len(report.deleted)} sessions and "
            f"{len(report.folders)} run folders ({pruning.format_bytes(report.bytes)})."
        )

        if not no_prune:
            pruned = pruning.prune_finished_sessions(dry_run=dry_run)
            self.stdout.write(f"{'Would prune' if dry_run else 'Pruned'} {pruned}.")
        if report.failed:
            raise CommandError(f"{len(report.failed)} sessions could not be deleted")

    def _reap(self, dry_run: bool) -> None:
        if dry_run:
            pks = leases.stale_sessions()  # the reaper's rule, read-only
        else:
            pks = [s.pk for s in leases.reap_stale_sessions()]
        for pk in pks:
            self.stdout.write(f"{_verb('mark', dry_run)} session {pk} interrupted (no heartbeat)")
