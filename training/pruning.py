"""Keeping the database and the disk bounded: prune finished sessions' fine rows, delete old sessions.

Two policies, used by `manage.py cleanup_sessions` (cron) and the admin's actions:

**Pruning** (`prune_finished_sessions`). A finished session's log lines and metric points are only
needed in full while people look at it. Once it finished more than `GENHRL_PRUNE_AFTER_DAYS` ago
(default 7), each skill run keeps its newest `GENHRL_PRUNE_KEEP_LOG_LINES` log lines (default 200;
the whole output stays in the run folder's `trainer.log`) and at most
`GENHRL_PRUNE_MAX_POINTS_PER_TAG` metric points per tag (default 200, evenly spread over the run
with the first and last kept, so a curve keeps its shape). Summaries are never touched: the
`SkillRun` row (frames, rewards, success states, `log_excerpt`, errors) and the session's events.
Running it again changes nothing.

**Deletion** (`delete_sessions`). Only terminal sessions are deleted, with their skill runs' run
folders (`SkillRun.run_dir`: checkpoints, TensorBoard summaries, videos, `trainer.log`). The
skill's published `policy/` and its `success_states/` are *not* deleted: they belong to the task
(later sessions start from them and composites load the policy), not to the session that produced
them; `--new-run` is what clears those. `folders_of` lists what would be removed, with sizes, so
the admin's confirmation page and `--dry-run` show it first.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from training import paths
from training.models import LogLine, MetricPoint, SessionEvent, SessionStatus, SkillRun, TrainingSession

logger = logging.getLogger(__name__)

DEFAULT_PRUNE_AFTER_DAYS = 7
DEFAULT_KEEP_LOG_LINES = 200
DEFAULT_MAX_POINTS_PER_TAG = 200
# Deletes go in slices so a run with a million rows never builds one giant IN list.
DELETE_BATCH = 5000
# Sessions handled together by the clean-up: a few queries per batch, memory bounded by the batch.
SESSION_BATCH = 200
# Conditions OR-ed in one statement (SQLite parses a long OR as a deep tree, 1000 levels at most).
OR_CHUNK = 100


def _setting(name: str, default: int) -> int:
    value = int(getattr(settings, name, default))
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {value}")
    return value


# -- pruning ----------------------------------------------------------------------------------------
@dataclass
class PruneReport:
    sessions: int = 0
    runs: int = 0
    log_lines: int = 0
    metric_points: int = 0

    def __str__(self) -> str:
        return (f"{self.log_lines} log lines and {self.metric_points} metric points "
                f"from {self.runs} skill runs of {self.sessions} sessions")


def evenly_spaced(count: int, keep: int) -> list[int]:
    """Indexes of `keep` items spread evenly over `count`, always including the first and last."""
    if keep >= count:
        return list(range(count))
    if keep <= 0:
        return []
    if keep == 1:
        return [count - 1]
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def _delete_pks(model: type[LogLine] | type[MetricPoint], pks: list[int]) -> int:
    deleted = 0
    for start in range(0, len(pks), DELETE_BATCH):
        deleted += model.objects.filter(pk__in=pks[start:start + DELETE_BATCH]).delete()[0]
    return deleted


def prune_finished_sessions(
    *,
    older_than: timedelta | None = None,
    keep_log_lines: int | None = None,
    max_points_per_tag: int | None = None,
    dry_run: bool = False,
    sessions: QuerySet[TrainingSession] | None = None,
    batch_size: int = SESSION_BATCH,
) -> PruneReport:
    """Apply the pruning policy to terminal sessions that finished before `older_than` ago.

    Arguments left out come from the settings above. With `dry_run` nothing is deleted and the
    report counts what would be. Each pruned session gets a note event saying what went.

    Set-based, `batch_size` sessions at a time (by pk): a handful of queries per batch finds the
    runs with too many lines or points, whatever the history holds; only a curve that really has
    too many points is read point by point (its evenly spread keepers are chosen in Python).
    """
    if older_than is None:
        older_than = timedelta(days=_setting("GENHRL_PRUNE_AFTER_DAYS", DEFAULT_PRUNE_AFTER_DAYS))
    if keep_log_lines is None:
        keep_log_lines = _setting("GENHRL_PRUNE_KEEP_LOG_LINES", DEFAULT_KEEP_LOG_LINES)
    if max_points_per_tag is None:
        max_points_per_tag = _setting("GENHRL_PRUNE_MAX_POINTS_PER_TAG", DEFAULT_MAX_POINTS_PER_TAG)
    cutoff = timezone.now() - older_than
    chosen = (sessions if sessions is not None else TrainingSession.objects.all()).filter(
        status__in=SessionStatus.terminal(), finished_at__lt=cutoff
    )
    report = PruneReport()
    last_pk = 0
    while True:
        batch = list(chosen.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return report
        last_pk = batch[-1]
        with transaction.atomic():
            _prune_batch(batch, keep_log_lines, max_points_per_tag, dry_run, report)


def _prune_batch(
    session_ids: list[int], keep_log_lines: int, max_points_per_tag: int, dry_run: bool, report: PruneReport
) -> None:
    """Prune the fine rows of these sessions' runs: one pass over the batch, per kind of row."""
    # order_by(): the model's ordering would join the sessions table to sort by it.
    session_of = dict(SkillRun.objects.filter(session_id__in=session_ids).order_by().values_list("pk", "session_id"))
    # By run id, so the fine rows are read through their (skill_run, ...) indexes, not joined.
    run_ids = list(session_of)
    lines_of: dict[int, int] = {}  # run -> lines removed
    points_of: dict[int, int] = {}
    # Log lines: a run keeps its newest `keep_log_lines`, so it loses (count - keep).
    for run_id, count in (
        LogLine.objects.filter(skill_run_id__in=run_ids).order_by()
        .values("skill_run_id").annotate(n=Count("pk")).filter(n__gt=keep_log_lines)
        .values_list("skill_run_id", "n")
    ):
        lines_of[run_id] = count - keep_log_lines
    if lines_of and not dry_run:
        newest_first = Window(RowNumber(), partition_by=[F("skill_run_id")], order_by=[F("seq").desc()])
        thresholds = (
            LogLine.objects.filter(skill_run_id__in=list(lines_of)).annotate(rank=newest_first)
            .filter(rank=keep_log_lines + 1).values_list("skill_run_id", "seq")
        )
        cuts = list(thresholds)
        for start in range(0, len(cuts), OR_CHUNK):
            doomed = Q()
            for run_id, seq in cuts[start:start + OR_CHUNK]:
                # At or below the first seq we do not keep: the newest `keep_log_lines` stay.
                doomed |= Q(skill_run_id=run_id, seq__lte=seq)
            LogLine.objects.filter(doomed).delete()
    # Metric points: only a curve with more than `max_points_per_tag` points is read and thinned.
    crowded = (
        MetricPoint.objects.filter(skill_run_id__in=run_ids).order_by()
        .values("skill_run_id", "tag").annotate(n=Count("pk")).filter(n__gt=max_points_per_tag)
        .values_list("skill_run_id", "tag", "n")
    )
    for run_id, tag, count in crowded:
        if dry_run:
            dropped = count - len(evenly_spaced(count, max_points_per_tag))
        else:
            pks = list(
                MetricPoint.objects.filter(skill_run_id=run_id, tag=tag).order_by("step", "pk")
                .values_list("pk", flat=True)
            )
            keep = {pks[i] for i in evenly_spaced(len(pks), max_points_per_tag)}
            dropped = _delete_pks(MetricPoint, [pk for pk in pks if pk not in keep])
        points_of[run_id] = points_of.get(run_id, 0) + dropped
    per_session: dict[int, list[int]] = {}
    for run_id in set(lines_of) | set(points_of):
        lines, points = lines_of.get(run_id, 0), points_of.get(run_id, 0)
        if not (lines or points):
            continue
        report.runs += 1
        totals = per_session.setdefault(session_of[run_id], [0, 0])
        totals[0] += lines
        totals[1] += points
    notes = []
    for session_id in sorted(per_session):
        session_lines, session_points = per_session[session_id]
        report.sessions += 1
        report.log_lines += session_lines
        report.metric_points += session_points
        # Someone wondering why an old log is short finds the reason in the history.
        notes.append(SessionEvent(
            session_id=session_id, kind=SessionEvent.Kind.NOTE, actor="system",
            message=(f"pruned {session_lines} old log lines and {session_points} metric points "
                     f"(kept the newest {keep_log_lines} lines per run, {max_points_per_tag} points per curve)"),
        ))
    if notes and not dry_run:
        SessionEvent.objects.bulk_create(notes)


# -- deleting sessions with their run folders -------------------------------------------------------
@dataclass
class RunFolder:
    skill_run_id: int
    skill: str
    path: Path
    size: int  # bytes; 0 when the folder is already gone
    exists: bool


@dataclass
class DeleteReport:
    deleted: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # still active: never deleted
    failed: dict[int, str] = field(default_factory=dict)  # a folder could not be removed: row kept
    folders: list[Path] = field(default_factory=list)
    bytes: int = 0


def folder_size(folder: Path) -> int:
    """Bytes of the files under `folder`, without following symbolic links."""
    total = 0
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # removed while we looked
    return total


def run_folder(run: SkillRun) -> Path | None:
    """The run's own folder, if it is safe to delete; None if the stored path cannot be trusted.

    `run_dir` is a stored string, so it is deleted only when it is `<...>/runs/<this run's pk>`
    inside GENHRL_RUNS_DIR: a bad row must never make a clean-up remove a skill's policy or
    success states, let alone anything outside the training folder.
    """
    try:
        folder = Path(run.run_dir) if run.run_dir else paths.run_dir(run.skill, run.pk)
        resolved = folder.resolve()
        root = paths.runs_root()
    except (paths.UnsafePathError, OSError, ValueError):
        return None
    if folder.is_symlink() or not resolved.is_relative_to(root) or resolved == root:
        return None
    if resolved.name != str(run.pk) or resolved.parent.name != "runs":
        return None
    return resolved


def folders_of(session: TrainingSession) -> list[RunFolder]:
    """The run folders deleting `session` removes, with their sizes (for confirmation and dry runs)."""
    return _folders(session.skill_runs.select_related("skill", "skill__task").order_by("order"))


def _folders(runs: Iterable[SkillRun]) -> list[RunFolder]:
    found = []
    for run in runs:
        folder = run_folder(run)
        if folder is None:
            continue
        exists = folder.is_dir()
        found.append(RunFolder(run.pk, run.skill.name, folder, folder_size(folder) if exists else 0, exists))
    return found


@dataclass
class Doomed:
    """A terminal session the clean-up deletes, with the run folders on disk that go with it."""

    pk: int
    status: str
    finished_at: datetime
    robot: str
    task: str
    folders: list[RunFolder]


def doomed_batches(days: float, *, batch_size: int = SESSION_BATCH) -> Iterator[list[Doomed]]:
    """The sessions `finished_before(days)`, oldest first, `batch_size` at a time with their folders.

    Two queries a batch (the sessions, then their runs), read by keyset so a batch that was just
    deleted, or kept because a folder could not be removed, never shifts the next one.
    """
    cutoff = timezone.now() - timedelta(days=days)
    chosen = TrainingSession.objects.filter(status__in=SessionStatus.terminal(), finished_at__lt=cutoff)
    last: tuple[datetime, int] | None = None
    while True:
        page = chosen
        if last is not None:
            page = page.filter(Q(finished_at__gt=last[0]) | Q(finished_at=last[0], pk__gt=last[1]))
        rows = list(
            page.order_by("finished_at", "pk")
            .values_list("pk", "status", "finished_at", "task__robot", "task__name")[:batch_size]
        )
        if not rows:
            return
        last = (rows[-1][2], rows[-1][0])
        # Most old runs' folders are long gone: one system call each tells, and only the runs whose
        # folder may be there are read whole (with the skill and task their safety check needs).
        runs = SkillRun.objects.filter(session_id__in=[row[0] for row in rows]).order_by("session_id", "order")
        maybe = [pk for pk, run_dir in runs.values_list("pk", "run_dir") if not run_dir or os.path.lexists(run_dir)]
        by_session: dict[int, list[SkillRun]] = {}
        for run in (
            SkillRun.objects.filter(pk__in=maybe).order_by("session_id", "order")
            .select_related("skill__task").only("id", "session_id", "order", "run_dir", "skill__id", "skill__name",
                                                "skill__task__id", "skill__task__name", "skill__task__robot")
        ) if maybe else ():
            by_session.setdefault(run.session_id, []).append(run)
        yield [Doomed(pk, status, finished, robot, task, _folders(by_session.get(pk, [])))
               for pk, status, finished, robot, task in rows]


def delete_doomed(batch: list[Doomed], report: DeleteReport, *, dry_run: bool = False) -> DeleteReport:
    """Delete one batch of `doomed_batches`: folders first, then the rows in one delete.

    As `delete_sessions`: a session whose folder cannot be removed keeps its row (for another try).
    """
    removable: list[int] = []
    for doomed in batch:
        folders = [f for f in doomed.folders if f.exists]
        if not dry_run:
            try:
                for folder in folders:
                    shutil.rmtree(folder.path)
            except OSError as exc:
                logger.warning("could not delete the run folders of session %s: %s", doomed.pk, exc)
                report.failed[doomed.pk] = str(exc)
                continue
        removable.append(doomed.pk)
        report.folders.extend(f.path for f in folders)
        report.bytes += sum(f.size for f in folders)
    if removable and not dry_run:
        TrainingSession.objects.filter(pk__in=removable, status__in=SessionStatus.terminal()).delete()
    report.deleted.extend(removable)
    return report


def delete_sessions(sessions: Iterable[TrainingSession], *, dry_run: bool = False) -> DeleteReport:
    """Delete terminal sessions, their rows and their run folders; active sessions are refused.

    Folders go first and the rows after, so a folder that cannot be removed (permissions, a busy
    file system) leaves the session listed for another try instead of orphaning files on disk.
    A terminal session can no longer change, so nothing can race the delete.
    """
    report = DeleteReport()
    for session in sessions:
        if session.status not in SessionStatus.terminal():
            report.refused.append(session.pk)
            continue
        folders = [f for f in folders_of(session) if f.exists]
        if dry_run:
            report.deleted.append(session.pk)
            report.folders.extend(f.path for f in folders)
            report.bytes += sum(f.size for f in folders)
            continue
        try:
            for folder in folders:
                shutil.rmtree(folder.path)
        except OSError as exc:
            logger.warning("could not delete the run folders of session %s: %s", session.pk, exc)
            report.failed[session.pk] = str(exc)
            continue
        report.folders.extend(f.path for f in folders)
        report.bytes += sum(f.size for f in folders)
        TrainingSession.objects.filter(pk=session.pk, status__in=SessionStatus.terminal()).delete()
        report.deleted.append(session.pk)
    return report


def finished_before(days: float) -> QuerySet[TrainingSession]:
    """Terminal sessions that finished more than `days` days ago (those cleanup_sessions deletes)."""
    cutoff = timezone.now() - timedelta(days=days)
    return TrainingSession.objects.filter(status__in=SessionStatus.terminal(), finished_at__lt=cutoff)


def format_bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    units = ("KB", "MB", "GB", "TB")
    value, index = size / 1024, 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.1f} {units[index]}"
