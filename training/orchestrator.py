"""Trains one session's skills in order, one supervised trainer subprocess per skill.

The orchestrator runs in the process that claimed the session (the `train` command, or a worker)
and writes everything it learns to the database as it happens; the web reads it from there. Its
steps are methods a test can call on their own: `claim`, `plan`, `train_skill`, `finish`.

How it differs from GenHRL's orchestrator (reference §2.8, §4.4-4.5), on purpose:
- output is drained by reader threads (executor.py), never read one line per tick;
- the time limit and the success check run on a clock, not when a line happens to arrive;
- success is judged from the success states on disk, the records and the absence of a traceback,
  never from the exit code alone (Isaac Lab can exit 0 after an exception, §1.9);
- cancel is a request in the database, honoured by the SIGINT -> SIGTERM -> SIGKILL chain sent to
  the trainer's own process group only; nothing is ever killed by name;
- each skill has its own run folder, so no fuzzy log globs pick another skill's checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from tasks.models import Skill, Task
from training import paths
from training.config import TrainingConfig
from training.executor import LaunchCommand, LocalExecutor, Output, TrainerProcess, parse_record
from training.models import (
    IllegalTransition,
    LogLine,
    MetricPoint,
    SessionEvent,
    SessionStatus,
    SkillRun,
    SkillStatus,
    Stage,
    TrainingSession,
)

logger = logging.getLogger(__name__)

# Sent (robustly: a failing receiver never stops training) after every write of a session's
# progress, with `session_id`. The web's relay listens to wake its SSE listeners at once.
session_changed = Signal()

OOM_HINT = "GPU out of memory: reduce parallel environments (--num-envs, now {num_envs})."
GPU_BUFFER_HINT = (
    "PhysX GPU buffers overflowed; results may be unreliable. Consider fewer parallel environments "
    "(--num-envs)."
)
# Trainer metrics stored as curves, by record field.
METRIC_FIELDS = ("mean_reward", "mean_episode_length", "success_rate", "success_states", "fps")

CommandBuilder = Callable[[Path, TrainingConfig, Skill], LaunchCommand]


class PlanError(Exception):
    """The session cannot start training (nothing to train, undefined sub-skills, no Isaac Lab)."""


class SkillSetupError(Exception):
    """One skill cannot be launched (a sub-skill has no policy yet, the spec cannot be written)."""


class SessionTakenOver(Exception):
    """Another process ended this session (it was marked interrupted): stop, write nothing more."""


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


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def default_command_builder(spec_path: Path, config: TrainingConfig, skill: Skill) -> LaunchCommand:
    """The trainer's own launch line (training/trainer/launch.py), for this backend and settings."""
    from training.trainer import launch

    argv, env, cwd = launch.build_command(
        spec_path,
        config.backend,
        isaaclab_root=settings.GENHRL_ISAACLAB_ROOT,
        isaaclab_version=settings.GENHRL_ISAACLAB_VERSION,
    )
    if config.backend == "embedded":
        # Each run works in its own folder, so anything written relative to the working folder
        # stays with the run; the package is found through PYTHONPATH. (Isaac Lab keeps its root:
        # GenHRL's generated code resolves paths from the working folder.)
        cwd = str(spec_path.parent)
    return LaunchCommand(argv=list(argv), env=dict(env), cwd=Path(cwd))


def _record_parser() -> Callable[[str], dict[str, Any] | None]:
    try:
        from training.trainer.records import parse_line
    except ImportError:
        return parse_record
    return parse_line


def _number(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def _when(seconds: float | None) -> datetime:
    if seconds is None:
        return timezone.now()
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return timezone.now()


def hierarchy_parents(task: Task) -> dict[str, list[str]]:
    """For each skill name, the ordered children list of its parent (first occurrence in the tree).

    Execution order is the order of children under their parent; the task's `hierarchy` is the
    library's structure tree, and the composites' `sub_skills` say the same for trees that lack it.
    """
    siblings: dict[str, list[str]] = {}

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        children = [c.get("name") for c in node.get("children") or [] if isinstance(c, dict)]
        names = [n for n in children if isinstance(n, str)]
        for name in names:
            siblings.setdefault(name, names)
        for child in node.get("children") or []:
            walk(child)

    walk(task.hierarchy)
    for skill in task.skills.filter(is_primitive=False).order_by("order"):
        names = [n for n in skill.sub_skills if isinstance(n, str)]
        for name in names:
            siblings.setdefault(name, names)
    return siblings


@dataclass
class _RunState:
    """What the supervisor knows about the running skill, between database writes."""

    run: SkillRun
    process: TrainerProcess
    started: float
    stop_reason: str = ""
    stop_phase: int = 0  # 0 running, 1 SIGINT sent, 2 SIGTERM sent, 3 SIGKILL sent
    next_escalation: float = 0.0
    target_seen_at: float | None = None
    done_seen_at: float | None = None
    done: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    last_flush: float = 0.0
    new_record: bool = False
    lines: list[LogLine] = field(default_factory=list)
    metrics: list[MetricPoint] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=60))
    last_seq: int = 0
    flushes: int = 0
    warned_gpu_buffer: bool = False
    last_metric_at: float = float("-inf")
    unsaved_metric: dict[str, Any] | None = None  # the newest progress record not stored as points


class Orchestrator:
    """Supervises one session from claim to its terminal status.

    `cancel()` may be called from a signal handler (the CLI's Ctrl-C): it only sets flags, and the
    supervising loop records the request in the database itself, so a handler never interrupts a
    database transaction. Other processes cancel through `services.request_cancel`, which the
    loop polls.
    """

    def __init__(
        self,
        session: TrainingSession,
        *,
        worker_id: str | None = None,
        actor: str | None = None,
        executor: LocalExecutor | None = None,
        command_builder: CommandBuilder | None = None,
        timings: Timings | None = None,
        on_update: Callable[[Orchestrator], None] | None = None,
    ) -> None:
        self.session = session
        self.task: Task = session.task
        self.config = TrainingConfig.from_json(session.config)
        self.worker_id = worker_id or worker_identity()
        self.actor = actor or f"worker:{self.worker_id}"
        self.executor = executor or LocalExecutor()
        self.command_builder = command_builder or default_command_builder
        self.timings = timings or Timings()
        self.on_update = on_update
        self.runs: list[SkillRun] = []
        self.deleted: list[Path] = []
        self.current: _RunState | None = None
        self._cancel_flag = threading.Event()
        self._force = 0  # repeated local cancels skip the graceful waits
        self._cancel_recorded = False
        # Set when the supervising worker shuts down: the stop is not the user's cancel, and the
        # session ends `interrupted` (resumable) instead of `cancelled`.
        self._shutdown_reason = ""
        self._parse = _record_parser()

    # -- control from outside the loop -----------------------------------------------------------
    def cancel(self) -> None:
        """Ask for a graceful stop; a second call hurries it (SIGTERM), a third kills (SIGKILL)."""
        if self._cancel_flag.is_set():
            self._force += 1
        self._cancel_flag.set()

    def shutdown(self, reason: str, *, now: bool = False) -> None:
        """Stop because this worker is going away; the session ends `interrupted`, resumable.

        Like `cancel()` it only sets flags (signal handlers call it). The first call stops the
        trainer gracefully (SIGINT: final checkpoint, success states flushed); `now=True` skips
        the grace periods (SIGTERM, then SIGKILL at once, to the trainer's own group).
        """
        if not self._shutdown_reason:
            self._shutdown_reason = reason
        if now:
            self._force = max(self._force, 2)
        self._cancel_flag.set()

    @property
    def shutting_down(self) -> bool:
        return bool(self._shutdown_reason)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_flag.is_set()

    @property
    def force_level(self) -> int:
        """How many extra cancel calls hurried the stop (0: graceful)."""
        return self._force

    # -- the whole session ---------------------------------------------------------------------
    def run(self) -> TrainingSession:
        """Claim, plan and train; always returns with the session terminal and no trainer left."""
        try:
            self.claim()
            if not self._check_cancel():
                self.plan()
            if not self._check_cancel():
                self.train_all()
            self.finish()
        except SessionTakenOver as exc:
            logger.warning("session %s: %s", self.session.pk, exc)
        except (PlanError, paths.UnsafePathError) as exc:
            self._end_failed(str(exc))
        except Exception as exc:
            logger.exception("session %s: supervisor error", self.session.pk)
            self._emergency_stop()
            self._end_failed(f"internal error in the supervisor: {exc!r}")
        finally:
            self._emergency_stop()
        self.session.refresh_from_db()
        return self.session

    def claim(self) -> None:
        """Take the session: queued -> running, with this worker's lease."""
        now = timezone.now()
        if self.session.status == SessionStatus.QUEUED:
            try:
                self.session.transition_to(
                    SessionStatus.RUNNING, actor=self.actor, message="training started",
                    worker_id=self.worker_id, heartbeat_at=now,
                )
            except IllegalTransition as exc:
                # Cancelled while queued, or claimed by another worker first.
                raise SessionTakenOver(str(exc)) from exc
        elif self.session.status in (SessionStatus.RUNNING, SessionStatus.CANCELLING):
            TrainingSession.objects.filter(pk=self.session.pk).update(
                worker_id=self.worker_id, heartbeat_at=now, updated_at=now
            )
        else:
            raise SessionTakenOver(f"session is {self.session.status}, nothing to run")
        self._notify()

    def plan(self) -> list[SkillRun]:
        """Order the skills, apply --new-run and skip-complete, and create one pending run per skill."""
        self.session.set_stage(Stage.PLANNING, actor=self.actor)
        config = self.config
        if config.backend == "isaaclab" and not settings.GENHRL_ISAACLAB_ROOT:
            raise PlanError("the isaaclab backend needs GENHRL_ISAACLAB_ROOT (the folder holding isaaclab.sh)")
        skills = list(self.task.skills.order_by("order", "pk"))
        trainable = [s for s in skills if s.defined]
        if not trainable:
            raise PlanError(f"task {self.task.name} has no trainable skills")
        by_name = {s.name: s for s in skills}
        for skill in trainable:
            paths.check_name(skill.name, "skill")
            for sub in skill.sub_skills if not skill.is_primitive else []:
                if sub not in by_name or not by_name[sub].defined:
                    raise PlanError(f"cannot train {skill.name}: its sub-skill {sub!r} is named but not defined")
        paths.task_dir(self.task)  # validates robot and task names before anything is written

        if config.new_run:
            self.deleted = paths.delete_task_artifacts(self.task)
            self._touch()  # deleting a big folder can take a while
            root = paths.task_dir(self.task)
            listing = ", ".join(str(p.relative_to(root)) for p in self.deleted) or "nothing (no earlier data)"
            SessionEvent.objects.create(
                session=self.session, kind=SessionEvent.Kind.ARTIFACTS_DELETED, actor=self.actor,
                message=f"--new-run deleted in {root}: {listing}",
            )

        runs = [
            SkillRun(
                session=self.session, skill=skill, order=index,
                min_success_states=config.min_success_states,
                min_frames=config.min_steps(skill.is_primitive),
                success_states=paths.count_success_states(paths.success_dir(skill)),
            )
            for index, skill in enumerate(trainable)
        ]
        SkillRun.objects.bulk_create(runs)
        # Re-read for pks on every database (bulk_create sets them on PostgreSQL and SQLite alike,
        # but the rows must carry the related skill for the loop below).
        self.runs = list(self.session.skill_runs.select_related("skill").order_by("order"))
        # A resume never retrains what the sessions it continues completed (whatever skip_complete
        # says): those skills keep their success states, checkpoints and policy, and no new attempt.
        done_before = self.done_in_resumed_chain()
        for run in self.runs:
            source = done_before.get(run.skill_id)
            if source is not None and paths.has_policy(run.skill):
                run.transition_to(
                    SkillStatus.SKIPPED, actor=self.actor, stop_reason="resumed",
                    message=f"completed in session {source}; kept ({run.success_states} success states)",
                )
        if config.skip_complete:
            for run in self.runs:
                if run.status != SkillStatus.PENDING:
                    continue
                if run.success_states >= config.min_success_states and paths.has_policy(run.skill):
                    run.transition_to(
                        SkillStatus.SKIPPED, actor=self.actor, stop_reason="skipped",
                        message=f"already has {run.success_states} success states (>= {config.min_success_states})"
                        " and a policy",
                    )
        self._notify()
        return self.runs

    def done_in_resumed_chain(self) -> dict[int, int]:
        """Skill id -> session id, for skills done (completed/skipped) in the sessions this one resumes."""
        done: dict[int, int] = {}
        seen: set[int] = set()
        previous_id = self.session.resumed_from_id
        while previous_id is not None and previous_id not in seen:
            seen.add(previous_id)
            runs = SkillRun.objects.filter(session_id=previous_id, status__in=SkillStatus.done())
            for skill_id in runs.values_list("skill_id", flat=True):
                done.setdefault(skill_id, previous_id)
            previous_id = (
                TrainingSession.objects.filter(pk=previous_id).values_list("resumed_from_id", flat=True).first()
            )
        return done

    def train_all(self) -> None:
        """Train pending skills in order; stop at the first one that does not complete."""
        self.session.set_stage(Stage.TRAINING, actor=self.actor)
        self._notify()
        for run in self.runs:
            if run.status != SkillStatus.PENDING:
                continue
            if self._check_cancel():
                break
            self._touch()
            if self.train_skill(run) != SkillStatus.COMPLETED:
                break

    def finish(self) -> None:
        """Give the session its terminal status from its runs; cancel what was never trained."""
        self._refresh_status()
        failed = next((r for r in self.runs if r.status == SkillStatus.FAILED), None)
        all_done = bool(self.runs) and all(r.status in SkillStatus.done() for r in self.runs)
        if all_done:
            target, message, error = SessionStatus.COMPLETED, "every skill trained", ""
        elif failed is not None:
            target = SessionStatus.FAILED
            error = f"{failed.skill.name}: {failed.error or 'failed'}"
            message = f"skill {failed.skill.name} failed"
        elif self._shutdown_reason and self.session.status == SessionStatus.RUNNING:
            # A worker shutdown is not the user's cancel: leave it resumable, and say why.
            target, message = SessionStatus.INTERRUPTED, self._shutdown_reason
            error = f"interrupted: {self._shutdown_reason}; resume it to train the remaining skills"
        elif self.cancel_requested or self.session.status == SessionStatus.CANCELLING:
            target, message, error = SessionStatus.CANCELLED, "cancelled", ""
        else:
            target, message, error = SessionStatus.FAILED, "stopped before every skill trained", ""
            error = message
        self._cancel_untrained(f"not trained: the session ended {target}")
        if target == SessionStatus.CANCELLED and self.session.status == SessionStatus.RUNNING:
            self._record_cancel()
        self._end(target, message=message, error=error)

    # -- one skill ------------------------------------------------------------------------------
    def train_skill(self, run: SkillRun) -> str:
        """Launch and supervise one skill's trainer until it ends; return the run's final status."""
        skill = run.skill
        try:
            spec, start_from = self.build_spec(run)
            run_folder = Path(spec["run_dir"])
            spec_path = run_folder / "spec.json"
            command = self.command_builder(spec_path, self.config, skill)
        except Exception as exc:
            # Anything that stops this one launch (no sub-skill policy, no Isaac Lab, a bad name)
            # fails the skill with its message; the session then stops like for any failure.
            run.transition_to(SkillStatus.FAILED, actor=self.actor, error=str(exc), stop_reason="setup",
                              message=str(exc))
            self._notify()
            return run.status

        attempt = SkillRun.objects.filter(skill=skill, started_at__isnull=False).count() + 1
        run.transition_to(
            SkillStatus.TRAINING, actor=self.actor, attempt=attempt, run_dir=str(run_folder),
            start_states_from=start_from, message=f"attempt {attempt}",
        )
        TrainingSession.objects.filter(pk=self.session.pk).update(current_skill=skill, updated_at=timezone.now())
        self.session.current_skill = skill
        try:
            process = self.executor.launch(command, run_folder / "trainer.log", self._parse)
        except OSError as exc:
            run.transition_to(SkillStatus.FAILED, actor=self.actor, error=f"cannot start the trainer: {exc}",
                              stop_reason="launch", message="cannot start the trainer")
            self._notify()
            return run.status
        state = _RunState(run=run, process=process, started=time.monotonic())
        self.current = state
        run.pid = process.pid
        SkillRun.objects.filter(pk=run.pk).update(pid=process.pid)
        TrainingSession.objects.filter(pk=self.session.pk).update(pid=process.pid)
        self._notify()
        try:
            self._supervise(state)
        except BaseException:
            self.current = None
            process.kill_now()
            process.close(reader_timeout=2)
            self._abandon(run, process.returncode)
            raise
        return self._conclude(state)

    def build_spec(self, run: SkillRun) -> tuple[dict[str, Any], Skill | None]:
        """Write the run folder's spec.json (docs/ARCHITECTURE.md); return it and the start-state source."""
        skill = run.skill
        config = self.config
        sub_skills = [] if skill.is_primitive else self.sub_skills_spec(skill)
        run_folder = paths.run_dir(skill, run.pk)
        success = paths.success_dir(skill)
        run_folder.mkdir(parents=True, exist_ok=True)
        success.mkdir(parents=True, exist_ok=True)
        start_from = self.start_states_source(skill)
        spec: dict[str, Any] = {
            "backend": config.backend,
            "task": paths.check_name(self.task.name, "task"),
            "robot": paths.check_name(self.task.robot, "robot"),
            "skill": paths.check_name(skill.name, "skill"),
            "is_primitive": skill.is_primitive,
            "level": skill.level,
            "run_dir": str(run_folder.resolve()),
            "success_dir": str(success.resolve()),
            "start_states_dir": str(paths.success_dir(start_from).resolve()) if start_from else None,
            "num_envs": config.num_envs,
            "seed": config.seed,
            "min_success_states": config.min_success_states,
            "min_frames": config.min_steps(skill.is_primitive),
            "max_frames": config.max_frames,
            "headless": config.headless,
            "video": config.video,
            "video_interval": config.video_interval,
            "video_length": config.video_length,
            "object_config": self.task.object_config,
            "skill_spec": skill.embedded_spec,
            "sub_skills": sub_skills,
        }
        if config.backend == "isaaclab":
            spec["isaaclab"] = {
                "root": str(settings.GENHRL_ISAACLAB_ROOT),
                "version": settings.GENHRL_ISAACLAB_VERSION,
            }
        tmp = run_folder / "spec.json.tmp"
        tmp.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        tmp.replace(run_folder / "spec.json")
        return spec, start_from

    def sub_skills_spec(self, skill: Skill, _seen: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """A composite's frozen sub-skills, in order, each with its published policy (recursive)."""
        by_name = {s.name: s for s in self.task.skills.all()}
        entries = []
        for name in skill.sub_skills:
            sub = by_name.get(name)
            if sub is None or not sub.defined:
                raise SkillSetupError(f"sub-skill {name!r} of {skill.name} is not defined")
            if name in _seen:
                raise SkillSetupError(f"sub-skill {name!r} of {skill.name} contains itself")
            if not paths.has_policy(sub):
                raise SkillSetupError(f"sub-skill {name} of {skill.name} has no trained policy yet")
            entries.append({
                "name": sub.name,
                "is_primitive": sub.is_primitive,
                "skill_spec": sub.embedded_spec,
                "policy_dir": str(paths.policy_dir(sub).resolve()),
                "sub_skills": [] if sub.is_primitive else self.sub_skills_spec(sub, _seen | {skill.name}),
            })
        return entries

    def start_states_source(self, skill: Skill) -> Skill | None:
        """The previous sibling in execution order, if it has success states to start from."""
        siblings = hierarchy_parents(self.task).get(skill.name)
        if not siblings:
            return None
        index = siblings.index(skill.name)
        if index == 0:
            return None
        previous = self.task.skills.filter(name=siblings[index - 1]).first()
        if previous is None or paths.count_success_states(paths.success_dir(previous)) == 0:
            return None
        return previous

    # -- supervision loop -----------------------------------------------------------------------
    def _supervise(self, state: _RunState) -> None:
        timings = self.timings
        process = state.process
        max_seconds = self.config.max_time_seconds
        while True:
            self._absorb(state, process.drain())
            now = time.monotonic()
            exited = process.poll() is not None
            if exited:
                break
            if state.stop_phase == 0:
                reason = self._stop_reason(state, now, max_seconds)
                if reason:
                    self._begin_stop(state, reason, now)
            else:
                self._escalate(state, now)
            due = state.new_record and now - state.last_flush >= timings.record_flush_interval
            if due or now - state.last_flush >= timings.flush_interval:
                self._flush(state)
            process.wait_for_record(timings.tick)
        # The leader is gone: end anything it left in its group, then collect the last output.
        process.reap_group()
        process.close()
        self._absorb(state, process.drain())
        if state.unsaved_metric is not None:
            self._store_metrics(state, state.unsaved_metric)
        self._flush(state)

    def _stop_reason(self, state: _RunState, now: float, max_seconds: float) -> str:
        # A cancel from elsewhere is noticed by `_flush` (at least every flush_interval).
        if self.cancel_requested:
            self._record_cancel()
            return "cancelled"
        if now - state.started >= max_seconds:
            return "time_limit"
        if state.done_seen_at is not None and now - state.done_seen_at >= self.timings.exit_grace_after_done:
            return "exit_hang"
        if state.target_seen_at is not None and now - state.target_seen_at >= self.timings.target_grace:
            return "target_reached"
        return ""

    def _begin_stop(self, state: _RunState, reason: str, now: float) -> None:
        state.stop_reason = reason
        state.stop_phase = 1
        state.next_escalation = now + self.timings.sigint_grace
        state.process.signal_group(signal.SIGINT)
        self._system_line(state, f"supervisor: stopping ({reason}): SIGINT to process group {state.process.pgid}")

    def _escalate(self, state: _RunState, now: float) -> None:
        if self._force >= state.stop_phase and state.stop_phase < 3:
            state.next_escalation = now  # repeated Ctrl-C: do not wait out the grace period
        if now < state.next_escalation or state.stop_phase >= 3:
            return
        if state.stop_phase == 1:
            state.stop_phase = 2
            state.next_escalation = now + self.timings.sigterm_grace
            state.process.signal_group(signal.SIGTERM)
            self._system_line(state, "supervisor: still running after SIGINT: SIGTERM to its process group")
        else:
            state.stop_phase = 3
            state.process.signal_group(signal.SIGKILL)
            self._system_line(state, "supervisor: still running after SIGTERM: SIGKILL to its process group")

    def _absorb(self, state: _RunState, output: Output) -> None:
        """Apply new records to the run and queue new log lines for the next write."""
        run = state.run
        if output.skipped_lines and output.lines:
            first_seq = output.lines[0][0]
            state.lines.append(LogLine(
                skill_run=run, seq=first_seq - 1, stream=LogLine.Stream.SYSTEM, time=timezone.now(),
                text=f"[{output.skipped_lines} lines not stored here; the full output is in trainer.log]",
            ))
        for seq, stream, text, when in output.lines:
            state.lines.append(LogLine(skill_run=run, seq=seq, stream=stream, text=text, time=_when(when)))
            state.tail.append(text)
            state.last_seq = seq
        for record in output.records:
            self._apply_record(state, record)

    def _apply_record(self, state: _RunState, record: dict[str, Any]) -> None:
        run = state.run
        kind = record.get("kind")
        when = _number(record, "time")
        if when is not None:
            run.source_time = max(run.source_time or 0.0, when)
        state.new_record = True
        if kind == "start":
            start_states = _number(record, "start_states")
            if start_states is not None:
                run.start_states = max(0, int(start_states))
        elif kind == "progress":
            frames = _number(record, "frames")
            epoch = _number(record, "epoch")
            if frames is not None:
                run.frames = max(run.frames, int(frames))
            if epoch is not None:
                run.epochs = max(0, int(epoch))
            run.fps = _number(record, "fps") if _number(record, "fps") is not None else run.fps
            reward = _number(record, "mean_reward")
            if reward is not None:
                run.last_reward = reward
                run.best_reward = reward if run.best_reward is None else max(run.best_reward, reward)
            rate = _number(record, "success_rate")
            if rate is not None:
                run.success_rate = rate
            states = _number(record, "success_states")
            if states is not None:
                run.success_states = max(0, int(states))
            now = time.monotonic()
            if now - state.last_metric_at >= self.timings.metric_interval:
                state.last_metric_at = now
                self._store_metrics(state, record)
            else:
                state.unsaved_metric = record
        elif kind == "done":
            state.done = record
            state.done_seen_at = time.monotonic()
            frames = _number(record, "frames")
            states = _number(record, "success_states")
            if frames is not None:
                run.frames = max(run.frames, int(frames))
            if states is not None:
                run.success_states = max(0, int(states))
        elif kind == "error":
            message = str(record.get("message") or "the trainer reported an error").replace("\x00", "\ufffd")
            state.errors.append(message)
        if (
            state.target_seen_at is None
            and run.success_states >= run.min_success_states
            and run.frames >= run.min_frames
        ):
            state.target_seen_at = time.monotonic()

    def _store_metrics(self, state: _RunState, record: dict[str, Any]) -> None:
        state.unsaved_metric = None
        step = _number(record, "frames")
        step = state.run.frames if step is None else int(step)
        when = _when(_number(record, "time"))
        for tag in METRIC_FIELDS:
            value = _number(record, tag)
            if value is not None:
                state.metrics.append(MetricPoint(skill_run=state.run, tag=tag, step=step, value=value, time=when))

    def _system_line(self, state: _RunState, text: str) -> None:
        state.process.note(text)

    def _flush(self, state: _RunState) -> None:
        """One transaction: new log lines and metric points, the run's numbers, the heartbeat."""
        run = state.run
        now = timezone.now()
        run.elapsed_seconds = time.monotonic() - state.started
        run.log_line_count = state.process.line_total
        with transaction.atomic():
            if state.lines:
                LogLine.objects.bulk_create(state.lines, ignore_conflicts=True)
            if state.metrics:
                MetricPoint.objects.bulk_create(state.metrics)
            SkillRun.objects.filter(pk=run.pk).update(
                frames=run.frames, epochs=run.epochs, fps=run.fps, best_reward=run.best_reward,
                last_reward=run.last_reward, success_rate=run.success_rate,
                success_states=run.success_states, start_states=run.start_states,
                elapsed_seconds=run.elapsed_seconds, log_line_count=run.log_line_count,
                source_time=run.source_time, updated_at=now,
            )
            session_fields: dict[str, Any] = {"heartbeat_at": now, "updated_at": now}
            if run.source_time is not None:
                session_fields["source_time"] = run.source_time
                self.session.source_time = run.source_time
            # The heartbeat doubles as the cancel poll: it matches only while the session runs
            # with no cancel request, so a miss (rare) is what sends us to read the row.
            sessions = TrainingSession.objects.filter(pk=self.session.pk)
            undisturbed = sessions.filter(
                status=SessionStatus.RUNNING, cancel_requested_at__isnull=True
            ).update(**session_fields)
            if not undisturbed:
                sessions.filter(status__in=SessionStatus.active()).update(**session_fields)
            state.flushes += 1
            if state.flushes % 20 == 0 and state.last_seq > self.timings.log_rows_kept:
                LogLine.objects.filter(
                    skill_run=run, seq__lte=state.last_seq - self.timings.log_rows_kept
                ).delete()
        state.lines = []
        state.metrics = []
        state.new_record = False
        state.last_flush = time.monotonic()
        if not undisturbed and not self.cancel_requested:
            self._check_cancel()  # sets the cancel flag, or raises SessionTakenOver
        if state.process.gpu_buffer_warning and not state.warned_gpu_buffer:
            state.warned_gpu_buffer = True
            SessionEvent.objects.create(
                session=self.session, skill_run=run, kind=SessionEvent.Kind.WARNING, actor=self.actor,
                message=GPU_BUFFER_HINT,
            )
        self._notify()

    def _conclude(self, state: _RunState) -> str:
        """Judge the ended run from disk, records and output; never from the exit code alone."""
        run = state.run
        process = state.process
        skill = run.skill
        self.current = None
        exit_code = process.returncode
        states = paths.count_success_states(paths.success_dir(skill))
        run.success_states = states
        traceback = process.traceback
        stopped_by_us = state.stop_phase > 0
        if stopped_by_us and traceback and traceback[-1].startswith(("KeyboardInterrupt", "SystemExit")):
            traceback = []  # our own SIGINT surfacing as an exception is not a crash
        run_policy = Path(run.run_dir) / "policy"
        excerpt = "\n".join(state.tail)
        done_reason = str((state.done or {}).get("reason") or "")
        if state.stop_reason in ("cancelled", "time_limit", "target_reached"):
            reason = state.stop_reason
        else:
            reason = done_reason or state.stop_reason or "exited"
        error = ""
        status = SkillStatus.COMPLETED
        if state.stop_reason == "cancelled":
            status = SkillStatus.CANCELLED
        elif traceback:
            status, error = SkillStatus.FAILED, "the trainer raised an exception:\n" + "\n".join(traceback)
            reason = "crashed"
        elif state.errors:
            status, error, reason = SkillStatus.FAILED, "; ".join(state.errors), "error"
        elif exit_code != 0 and not stopped_by_us:
            status, reason = SkillStatus.FAILED, "crashed"
            error = f"the trainer exited with code {exit_code}:\n" + "\n".join(list(state.tail)[-20:])
        elif states < run.min_success_states:
            status = SkillStatus.FAILED
            if state.stop_reason == "time_limit":
                error = (
                    f"time limit of {self.config.max_time:g} min reached with {states} of "
                    f"{run.min_success_states} success states"
                )
            else:
                error = f"the trainer ended with {states} of {run.min_success_states} success states"
        elif not (run_policy / "policy.pth").is_file():
            status, error = SkillStatus.FAILED, "the trainer published no policy (run_dir/policy/policy.pth)"
        if status == SkillStatus.FAILED and process.oom:
            error = f"{OOM_HINT.format(num_envs=self.config.num_envs)}\n{error}"
        if status == SkillStatus.COMPLETED:
            try:
                paths.publish_policy(run_policy, skill)
            except OSError as exc:
                status, error = SkillStatus.FAILED, f"cannot publish the policy: {exc}"
        message = error.splitlines()[0] if error else f"{reason}: {states} success states"
        try:
            run.transition_to(
                status, actor=self.actor, message=message, exit_code=exit_code, success_states=states,
                error=error, stop_reason=reason[:40], log_excerpt=excerpt,
                elapsed_seconds=time.monotonic() - state.started, frames=run.frames,
            )
        except IllegalTransition as exc:
            # Whoever marked the session interrupted also ended this run.
            raise SessionTakenOver(str(exc)) from exc
        TrainingSession.objects.filter(pk=self.session.pk).update(pid=None, updated_at=timezone.now())
        self._notify()
        return status

    # -- cancel and status ----------------------------------------------------------------------
    def _check_cancel(self) -> bool:
        """True if a cancel was asked here or through the database (recording a local one)."""
        if self.cancel_requested:
            self._record_cancel()
            return True
        row = TrainingSession.objects.filter(pk=self.session.pk).values("status", "cancel_requested_at").first()
        if row is None:
            raise SessionTakenOver("the session was deleted")
        if row["status"] in SessionStatus.terminal():
            self.session.status = row["status"]
            raise SessionTakenOver(f"the session was marked {row['status']} by another process")
        if row["cancel_requested_at"] is not None or row["status"] == SessionStatus.CANCELLING:
            self.session.status = row["status"]
            self._cancel_flag.set()
            return True
        return False

    def _record_cancel(self) -> None:
        if self._cancel_recorded:
            return
        self._cancel_recorded = True
        if self._shutdown_reason:
            # Not a cancel: the session stays `running` until `finish` marks it interrupted.
            SessionEvent.objects.create(
                session=self.session, kind=SessionEvent.Kind.NOTE, actor=self.actor,
                message=f"stopping: {self._shutdown_reason}",
            )
            self._notify()
            return
        self._refresh_status()
        if self.session.status == SessionStatus.RUNNING:
            now = timezone.now()
            try:
                with transaction.atomic():
                    SessionEvent.objects.create(
                        session=self.session, kind=SessionEvent.Kind.CANCEL_REQUESTED, actor=self.actor,
                        message="cancel requested by the supervising process",
                    )
                    self.session.transition_to(
                        SessionStatus.CANCELLING, actor=self.actor, message="cancel requested",
                        cancel_requested_at=now, cancel_requested_by=self.actor,
                    )
            except IllegalTransition:
                self._refresh_status()
            self._notify()

    def _touch(self) -> None:
        """Heartbeat outside a trainer's supervision (planning, between skills)."""
        now = timezone.now()
        TrainingSession.objects.filter(pk=self.session.pk, status__in=SessionStatus.active()).update(
            heartbeat_at=now, updated_at=now
        )

    def _refresh_status(self) -> None:
        self.session.refresh_from_db(fields=["status", "stage", "cancel_requested_at", "error"])

    def _cancel_untrained(self, message: str) -> None:
        for run in self.runs:
            if run.status == SkillStatus.PENDING:
                run.transition_to(SkillStatus.CANCELLED, actor=self.actor, message=message, stop_reason="not_started")

    def _end(self, status: str, *, message: str, error: str = "") -> None:
        self._refresh_status()
        if self.session.status in SessionStatus.terminal():
            return
        try:
            self.session.transition_to(status, actor=self.actor, message=message, error=error, pid=None)
        except IllegalTransition:
            self._refresh_status()
            if self.session.status not in SessionStatus.terminal():
                raise
        if self.session.stage != Stage.COMPLETE:
            self.session.set_stage(Stage.COMPLETE, actor=self.actor)
        self._notify()

    def _end_failed(self, error: str) -> None:
        try:
            self._cancel_untrained("not trained: the session failed")
            self._end(SessionStatus.FAILED, message="failed", error=error)
        except Exception:
            logger.exception("session %s: cannot record the failure", self.session.pk)

    def _emergency_stop(self) -> None:
        """If a trainer is still running (the supervisor itself failed), kill its group."""
        state = self.current
        if state is None:
            return
        self.current = None
        state.process.kill_now()
        state.process.close(reader_timeout=2)
        self._abandon(state.run, state.process.returncode)

    def _abandon(self, run: SkillRun, exit_code: int | None) -> None:
        """Record a run whose supervision broke off (taken over, supervisor error) as failed."""
        try:
            run.transition_to(
                SkillStatus.FAILED, actor=self.actor, error="supervision stopped before the trainer ended",
                stop_reason="supervisor", exit_code=exit_code,
            )
        except IllegalTransition:
            pass  # already ended by whoever took the session over
        except Exception:
            logger.exception("session %s: cannot record the abandoned run", self.session.pk)

    def _notify(self) -> None:
        for _receiver, response in session_changed.send_robust(sender=TrainingSession, session_id=self.session.pk):
            if isinstance(response, Exception):
                logger.warning("session_changed receiver failed: %r", response)
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:
                logger.exception("progress display failed")

    # -- for displays ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        state = self.current
        return 0.0 if state is None else time.monotonic() - state.started

