"""Supervising one trainer process: its clock, the rules that stop it, and the stop escalation.

A `Trainer` is one launched trainer with its `Recorder`. The orchestrator asks it, on every tick,
whether a stop rule fired (`stop_rule`) and to move its stop along (`begin_stop`, `escalate`):
SIGINT (graceful: end of epoch, final checkpoint, success states flushed), then SIGTERM, then
SIGKILL, each to the trainer's own process group only, after grace periods; repeated local
cancels (Ctrl-C) skip the waits. Nothing is ever killed by name.

The time limit and the success check run on a clock, not when a line happens to arrive.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from training.engine.recording import Recorder
from training.executor import TrainerProcess
from training.models import SkillRun
from training.ray_executor import RayTrainerJob


@dataclass
class Timings:
    """How often the supervisor looks and how long it waits; tests shorten the waits."""

    tick: float = 0.1
    # Log lines, heartbeat and the cancel poll: one transaction per interval at most.
    flush_interval: float = 0.5
    record_flush_interval: float = 0.2  # a new progress record is written this soon
    sigint_grace: float = 30.0  # graceful stop: end of epoch, final checkpoint, success states
    sigterm_grace: float = 10.0
    exit_grace_after_done: float = 30.0  # Isaac Lab may hang in simulation_app.close() (§1.9)
    target_grace: float = 15.0  # the trainer stops itself on target; this is the backstop
    # At most one metric point per tag per interval (the last record of a run is always kept):
    # a three-hour run at several epochs a second would otherwise store a million rows.
    metric_interval: float = 1.0
    log_rows_kept: int = 5000  # LogLine rows kept per run; the log file keeps everything
    # A trainer that sends no record for this long is stopped as stalled (hung, deadlocked,
    # SIGSTOPped). None: the backend's default or GENHRL_STALL_SECONDS (config.stall_seconds).
    stall_seconds: float | None = None


# A hurried stop (`force_level`) still waits this long between SIGTERM and SIGKILL.
HURRIED_SIGTERM_GRACE = 1.0


class StopPhase(IntEnum):
    RUNNING = 0
    SIGINT = 1
    SIGTERM = 2
    SIGKILL = 3


class Trainer:
    """One launched trainer, as its supervisor sees it."""

    def __init__(
        self, run: SkillRun, process: TrainerProcess | RayTrainerJob, timings: Timings, *, stall_seconds: float,
    ) -> None:
        self.run = run
        self.process = process
        self.timings = timings
        self.stall_seconds = stall_seconds
        self.recorder = Recorder(run, metric_interval=timings.metric_interval, log_rows_kept=timings.log_rows_kept)
        self.started = time.monotonic()
        self.last_record_at = self.started  # the stall clock: a record is a sign of life
        self.stall_warned = False
        self.ended = False  # the process exited and its last output was collected
        self.outcome: Any = None  # orchestrator.Concluded, once judged
        self.stop_reason = ""
        self.phase = StopPhase.RUNNING
        self._sigterm_at = 0.0
        self.warned_gpu_buffer = False
        self._next_escalation = 0.0

    @property
    def pgid(self) -> int | None:
        """The trainer's process group (local executor); None for a Ray job."""
        return self.process.pgid

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def stopping(self) -> bool:
        return self.phase > StopPhase.RUNNING

    def exited(self) -> bool:
        return self.process.poll() is not None

    def collect(self) -> None:
        """Take in what the readers gathered since the last tick."""
        output = self.process.drain()
        if output.records:
            self.last_record_at = time.monotonic()
            self.stall_warned = False
        self.recorder.absorb(output)

    def running_since(self) -> float | None:
        """When the trainer began to run: its launch locally, later for a Ray job that waited for
        resources (None while it waits)."""
        return getattr(self.process, "running_since", self.started)

    def quiet_for(self, now: float) -> float:
        """Seconds since the trainer's last record, or since it began to run (0 while it waits)."""
        since = self.running_since()
        return 0.0 if since is None else now - max(self.last_record_at, since)

    # -- stop rules ---------------------------------------------------------------------------------
    def stop_rule(self, now: float, max_seconds: float) -> str:
        """The supervisor's own reason to stop this trainer now, or "" (cancels are the session's)."""
        recorder = self.recorder
        since = self.running_since()
        if since is not None and now - since >= max_seconds:
            return "time_limit"
        if recorder.done_seen_at is None and self.stall_seconds > 0 and self.quiet_for(now) >= self.stall_seconds:
            return "stalled"
        if recorder.done_seen_at is not None and now - recorder.done_seen_at >= self.timings.exit_grace_after_done:
            return "exit_hang"
        if recorder.target_seen_at is not None and now - recorder.target_seen_at >= self.timings.target_grace:
            return "target_reached"
        return ""

    # -- stopping -----------------------------------------------------------------------------------
    def begin_stop(self, reason: str, now: float) -> None:
        """SIGINT to the trainer's process group: the graceful stop."""
        self.stop_reason = reason
        self.phase = StopPhase.SIGINT
        self._next_escalation = now + self.timings.sigint_grace
        self._send(signal.SIGINT)
        self.process.note(f"supervisor: stopping ({reason}): SIGINT to {self.process.describe}")

    def _send(self, sig: int) -> None:
        # A stopped (SIGSTOP, ^Z, a debugger) trainer only acts on its signals once it runs again.
        self.process.signal_group(signal.SIGCONT)
        self.process.signal_group(sig)

    def escalate(self, now: float, force_level: int = 0) -> None:
        """SIGTERM, then SIGKILL, once each grace period passes (at once when hurried by `force_level`)."""
        if self.phase >= StopPhase.SIGKILL:
            return
        if force_level >= self.phase:
            # Repeated Ctrl-C: no grace period, but SIGTERM still gets a moment (the trainer
            # flushes its success states on it) before SIGKILL.
            hurried = self._sigterm_at + HURRIED_SIGTERM_GRACE if self.phase == StopPhase.SIGTERM else now
            self._next_escalation = min(self._next_escalation, hurried)
        if now < self._next_escalation:
            return
        if self.phase == StopPhase.SIGINT:
            self.phase = StopPhase.SIGTERM
            self._sigterm_at = now
            self._next_escalation = now + self.timings.sigterm_grace
            self._send(signal.SIGTERM)
            self.process.note("supervisor: still running after SIGINT: SIGTERM to its process group")
        else:
            self.phase = StopPhase.SIGKILL
            self.process.signal_group(signal.SIGKILL)
            self.process.note("supervisor: still running after SIGTERM: SIGKILL to its process group")

    def end_process(self) -> None:
        """After the leader exited: end what it left in its group, then collect the last output."""
        self.process.reap_group()
        self.process.close()
        self.collect()
        self.recorder.finish()
        self.ended = True

    def kill(self) -> None:
        """Last resort (the supervisor itself is failing): SIGKILL the group, reap, stop reading."""
        self.process.kill_now()
        self.process.close(reader_timeout=2)
