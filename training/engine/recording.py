"""Recording a trainer's output: records and lines in, database rows out.

A `Recorder` belongs to one running trainer. `absorb` takes what the executor's readers collected
(lines and parsed records, docs/ARCHITECTURE.md) and applies each record with one handler per
kind; `write` stores everything new in one transaction. Nothing here decides when to stop a
trainer or how a run ended: it only keeps the facts (`done`, `errors`, `target_seen_at`) that
supervision and `outcomes.judge` use.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from training.executor import Output
from training.models import METRIC_TAGS, LogLine, MetricPoint, SessionStatus, SkillRun, TrainingSession

# Trainer metrics stored as curves, by record field.
METRIC_FIELDS = METRIC_TAGS
TAIL_LINES = 60  # kept in memory for the run's `log_excerpt` and crash reports
# While the database is unreachable, what waits for it stays bounded: the newest lines (the log
# file has every line) and enough metric points for a long outage.
MAX_UNWRITTEN_LINES = 5000
MAX_UNWRITTEN_POINTS = 20000
MAX_ERRORS = 50  # `error` records kept for the run's verdict


def number(record: dict[str, Any], key: str) -> float | None:
    """A finite number from a record, else None (records come from another program)."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def when(seconds: float | None) -> datetime:
    if seconds is None:
        return timezone.now()
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return timezone.now()


class Recorder:
    """What is known about one running skill between database writes, and the writes themselves."""

    def __init__(self, run: SkillRun, *, metric_interval: float, log_rows_kept: int) -> None:
        self.run = run
        self.metric_interval = metric_interval
        self.log_rows_kept = log_rows_kept
        self.done: dict[str, Any] | None = None
        self.done_seen_at: float | None = None
        self.target_seen_at: float | None = None
        self.errors: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.new_record = False
        self.last_write = 0.0
        self._lines: list[LogLine] = []
        self._metrics: list[MetricPoint] = []
        self.dropped_lines = 0  # lines not stored because the database was away (trainer.log has them)
        # Session fields to write with the next write (the launch's current skill and pid).
        self.session_changes: dict[str, Any] = {}
        self._last_seq = 0
        self._writes = 0
        self._last_metric_at = float("-inf")
        self._unsaved_metric: dict[str, Any] | None = None  # the newest progress record not stored
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "start": self._on_start, "progress": self._on_progress, "done": self._on_done, "error": self._on_error,
        }

    # -- reading ------------------------------------------------------------------------------------
    def absorb(self, output: Output) -> None:
        """Apply new records to the run and queue new log lines for the next write."""
        run = self.run
        if output.skipped_lines and output.lines:
            self._lines.append(LogLine(
                skill_run=run, seq=output.lines[0][0] - 1, stream=LogLine.Stream.SYSTEM, time=timezone.now(),
                text=f"[{output.skipped_lines} lines not stored here; the full output is in trainer.log]",
            ))
        for seq, stream, text, at in output.lines:
            self._lines.append(LogLine(skill_run=run, seq=seq, stream=stream, text=text, time=when(at)))
            self.tail.append(text)
            self._last_seq = seq
        for record in output.records:
            self.apply(record)
        if len(self._lines) > MAX_UNWRITTEN_LINES:
            extra = len(self._lines) - MAX_UNWRITTEN_LINES
            self.dropped_lines += extra
            del self._lines[:extra]
        if len(self._metrics) > MAX_UNWRITTEN_POINTS:
            del self._metrics[: len(self._metrics) - MAX_UNWRITTEN_POINTS]

    def apply(self, record: dict[str, Any]) -> None:
        run = self.run
        at = number(record, "time")
        if at is not None:
            run.source_time = max(run.source_time or 0.0, at)
        self.new_record = True
        handler = self._handlers.get(str(record.get("kind")))
        if handler is not None:
            handler(record)
        if (
            self.target_seen_at is None
            and run.success_states >= run.min_success_states
            and run.frames >= run.min_frames
        ):
            self.target_seen_at = time.monotonic()

    def _on_start(self, record: dict[str, Any]) -> None:
        start_states = number(record, "start_states")
        if start_states is not None:
            self.run.start_states = max(0, int(start_states))

    def _on_progress(self, record: dict[str, Any]) -> None:
        run = self.run
        frames, epoch = number(record, "frames"), number(record, "epoch")
        if frames is not None:
            run.frames = max(run.frames, int(frames))
        if epoch is not None:
            run.epochs = max(0, int(epoch))
        fps = number(record, "fps")
        run.fps = fps if fps is not None else run.fps
        reward = number(record, "mean_reward")
        if reward is not None:
            run.last_reward = reward
            run.best_reward = reward if run.best_reward is None else max(run.best_reward, reward)
        rate = number(record, "success_rate")
        if rate is not None:
            run.success_rate = rate
        states = number(record, "success_states")
        if states is not None:
            run.success_states = max(0, int(states))
        # At most one metric point per tag per interval; the newest record waits for the next.
        now = time.monotonic()
        if now - self._last_metric_at >= self.metric_interval:
            self._last_metric_at = now
            self._store_metrics(record)
        else:
            self._unsaved_metric = record

    def _on_done(self, record: dict[str, Any]) -> None:
        self.done = record
        self.done_seen_at = time.monotonic()
        frames, states = number(record, "frames"), number(record, "success_states")
        if frames is not None:
            self.run.frames = max(self.run.frames, int(frames))
        if states is not None:
            self.run.success_states = max(0, int(states))

    def _on_error(self, record: dict[str, Any]) -> None:
        message = str(record.get("message") or "the trainer reported an error").replace("\x00", "\ufffd")
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message[:2000])

    def _store_metrics(self, record: dict[str, Any]) -> None:
        self._unsaved_metric = None
        step = number(record, "frames")
        frames = self.run.frames if step is None else int(step)
        at = when(number(record, "time"))
        for tag in METRIC_FIELDS:
            value = number(record, tag)
            if value is not None:
                self._metrics.append(MetricPoint(skill_run=self.run, tag=tag, step=frames, value=value, time=at))

    def finish(self) -> None:
        """The trainer ended: its last progress record is always kept as a point."""
        if self._unsaved_metric is not None:
            self._store_metrics(self._unsaved_metric)

    # -- writing ------------------------------------------------------------------------------------
    def write_due(self, now: float, *, record_interval: float, interval: float) -> bool:
        """A new record is written within `record_interval`; lines and the heartbeat every `interval`."""
        due = self.new_record and now - self.last_write >= record_interval
        return due or now - self.last_write >= interval

    def write(self, session: TrainingSession, *, elapsed: float, line_total: int) -> bool:
        """One transaction: new log lines and metric points, the run's numbers, the session's heartbeat.

        Returns whether the session is undisturbed (still running, no cancel request): the
        heartbeat doubles as the cancel poll, so only a miss (rare) needs the row read.
        """
        run = self.run
        now = timezone.now()
        run.elapsed_seconds = elapsed
        run.log_line_count = line_total
        with transaction.atomic():
            if self._lines:
                LogLine.objects.bulk_create(self._lines, ignore_conflicts=True)
            if self._metrics:
                MetricPoint.objects.bulk_create(self._metrics)
            SkillRun.objects.filter(pk=run.pk).update(
                frames=run.frames, epochs=run.epochs, fps=run.fps, best_reward=run.best_reward,
                last_reward=run.last_reward, success_rate=run.success_rate,
                success_states=run.success_states, start_states=run.start_states,
                elapsed_seconds=run.elapsed_seconds, log_line_count=run.log_line_count,
                source_time=run.source_time, pid=run.pid, updated_at=now,
            )
            session_fields: dict[str, Any] = {"heartbeat_at": now, "updated_at": now, **self.session_changes}
            if run.source_time is not None:
                session_fields["source_time"] = max(run.source_time, session.source_time or 0.0)
                session.source_time = session_fields["source_time"]
            sessions = TrainingSession.objects.filter(pk=session.pk)
            undisturbed = sessions.filter(
                status=SessionStatus.RUNNING, cancel_requested_at__isnull=True
            ).update(**session_fields)
            if not undisturbed:
                sessions.filter(status__in=SessionStatus.active()).update(**session_fields)
            self._writes += 1
            if self._writes % 20 == 0 and self._last_seq > self.log_rows_kept:
                LogLine.objects.filter(skill_run=run, seq__lte=self._last_seq - self.log_rows_kept).delete()
        self._lines = []
        self._metrics = []
        self.session_changes = {}
        self.new_record = False
        self.last_write = time.monotonic()
        return bool(undisturbed)
