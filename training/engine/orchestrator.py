"""One session's lifecycle: claim, plan, train its skills, finish; always ending terminal with no
trainer left.

The orchestrator runs in the process that claimed the session (`manage.py train`, or a worker) and
writes what it learns as it happens; the web reads it from the database. It owns the order of
things and nothing else: `planning` decides what to train and writes each run's spec,
`supervision` watches each trainer process and stops it, `recording` turns output into rows, and
`outcomes.judge` decides how a run ended. Its steps are methods a test can call on their own:
`claim`, `plan`, `train_all`, `finish`.

Cancel is a request in the database (`services.request_cancel`), polled with the heartbeat; a
local `cancel()` (the CLI's Ctrl-C) only sets a flag that the loop records itself, so a signal
handler never interrupts a database transaction.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tasks.models import Task
from training import outcomes, paths, services
from training.config import TrainingConfig, stall_seconds
from training.engine import planning
from training.engine.dbguard import DatabaseGuard
from training.engine.planning import CommandBuilder, PlanError
from training.engine.slots import SlotPool
from training.engine.supervision import Timings, Trainer
from training.executor import LaunchContext, LocalExecutor
from training.leases import worker_identity
from training.models import (
    IllegalTransition,
    SessionEvent,
    SessionStatus,
    SkillRun,
    SkillStatus,
    Stage,
    TrainingSession,
)
from training.ray_executor import RayExecutor, submission_id
from training.signals import notify_changed

logger = logging.getLogger(__name__)

# The viewers are warned once a trainer has been quiet for this share of its stall limit.
STALL_WARNING_AT = 0.5
GPU_BUFFER_HINT = (
    "PhysX GPU buffers overflowed; results may be unreliable. Consider fewer parallel environments "
    "(--num-envs)."
)


def configured_executor(timings: Timings) -> LocalExecutor | RayExecutor:
    """The executor of GENHRL_EXECUTOR: subprocesses here, or jobs on the Ray cluster."""
    if settings.GENHRL_EXECUTOR == "ray":
        from training import leases

        # Ray's own SIGKILL comes after the supervisor's two graceful steps would have.
        return leases.ray_executor(stop_wait_seconds=int(timings.sigint_grace + timings.sigterm_grace))
    return LocalExecutor()


@dataclass(frozen=True)
class Concluded:
    """How a run ended, decided once from its files (the write of it may have to be retried)."""

    outcome: outcomes.Outcome
    states: int
    exit_code: int | None
    elapsed: float


class SessionTakenOver(Exception):
    """Another process ended this session (it was marked interrupted): stop, write nothing more."""


class DatabaseUnavailable(Exception):
    """The database stayed unreachable past every limit: nothing more can be recorded from here."""


@dataclass(frozen=True)
class RunningSkill:
    """A skill training now, for displays and tests: its run row, process group and time so far."""

    run: SkillRun
    pgid: int | None  # None for a Ray job
    elapsed: float


class Orchestrator:
    """Supervises one session from claim to its terminal status."""

    def __init__(
        self,
        session: TrainingSession,
        *,
        worker_id: str | None = None,
        actor: str | None = None,
        executor: LocalExecutor | RayExecutor | None = None,
        command_builder: CommandBuilder | None = None,
        timings: Timings | None = None,
        on_update: Callable[[Orchestrator], None] | None = None,
        slots: SlotPool | None = None,
    ) -> None:
        self.session = session
        self.task: Task = session.task
        self.config = TrainingConfig.from_json(session.config)
        self.worker_id = worker_id or worker_identity()
        self.actor = actor or f"worker:{self.worker_id}"
        self.timings = timings or Timings()
        self.executor = executor or configured_executor(self.timings)
        self.command_builder = command_builder or planning.default_command_builder
        self.on_update = on_update
        self.runs: list[SkillRun] = []
        self.deleted: list[Path] = []
        # Trainers run at once up to what `slots` grants (a worker's pool is shared fairly by its
        # sessions); skills start as soon as what they wait for is done (planning.dependencies).
        self.slots = slots or SlotPool(1)
        self._waits: dict[int, set[int]] = {}
        self._trainers: list[Trainer] = []
        self._wake = threading.Event()
        self._last_idle_check = 0.0
        self._unrecorded: list[Callable[[], None]] = []  # failures to record once the database is back
        # A plain flag, not a threading.Event: `cancel()` runs in signal handlers, which must not
        # take a lock the interrupted main thread may be holding.
        self._cancel_asked = False
        self._force = 0  # repeated local cancels skip the graceful waits
        self._cancel_recorded = False
        # Set when the supervising worker shuts down: the stop is not the user's cancel, and the
        # session ends `interrupted` (resumable) instead of `cancelled`.
        self._shutdown_reason = ""
        self._db = DatabaseGuard(outage_limit=settings.GENHRL_DB_OUTAGE_SECONDS)

    # -- control from outside the loop (signal handlers, the worker) -------------------------------
    def cancel(self) -> None:
        """Ask for a graceful stop; a second call hurries it (SIGTERM), a third kills (SIGKILL)."""
        if self._cancel_asked:
            self._force += 1
        self._cancel_asked = True

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
        self._cancel_asked = True

    @property
    def shutting_down(self) -> bool:
        return bool(self._shutdown_reason)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_asked

    @property
    def force_level(self) -> int:
        """How many extra cancel calls hurried the stop (0: graceful)."""
        return self._force

    def training(self) -> list[RunningSkill]:
        """The skills training now (thread-safe snapshot for displays and the worker)."""
        return [RunningSkill(t.run, t.pgid, t.elapsed) for t in list(self._trainers)]

    def kill_trainers(self) -> None:
        """SIGKILL every running trainer's own process group (the worker's hard deadline)."""
        for trainer in list(self._trainers):
            trainer.process.signal_group(signal.SIGKILL)

    # -- the whole session ---------------------------------------------------------------------
    def run(self) -> TrainingSession:
        """Claim, plan and train; always returns with the session terminal and no trainer left."""
        try:
            self.claim()
            if not self._check_cancel():
                self.plan()
            if not self._check_cancel():
                self.train_all()
            self._until_recorded(self.finish)
        except SessionTakenOver as exc:
            logger.warning("session %s: %s", self.session.pk, exc)
        except DatabaseUnavailable as exc:
            # Nothing can be written: the lease goes stale and a reaper marks the session
            # interrupted once the database is back; its success states are on disk, resumable.
            logger.error("session %s: %s; leaving it to the lease reaper", self.session.pk, exc)
        except PlanError as exc:
            self._end_failed(str(exc))
        except paths.UnsafePathError as exc:
            self._end_failed(str(exc))
        except Exception as exc:
            logger.exception("session %s: supervisor error", self.session.pk)
            self._emergency_stop()
            self._end_failed(f"internal error in the supervisor: {exc!r}")
        finally:
            self._emergency_stop()
            self._stop_leftover_jobs()
            self.slots.forget(self)
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
        """Check, apply --new-run, create one pending run per skill, and skip what is done."""
        self.session.set_stage(Stage.PLANNING, actor=self.actor)
        skills = planning.check(self.task, self.config)
        if self.config.new_run:
            self.deleted = planning.delete_previous(self.session, actor=self.actor)
            self._touch()  # deleting a big folder can take a while
        self.runs = planning.create_runs(self.session, skills, self.config)
        self._waits = planning.dependencies(self.task, self.runs)
        planning.skip_done(self.session, self.runs, self.config, actor=self.actor)
        self._notify()
        return self.runs

    def train_all(self) -> None:
        """Train every pending skill as soon as what it waits for is done and a slot is free.

        After a failure, a cancel or a shutdown nothing new starts; skills already training
        finish (a cancel or shutdown stops them).
        """
        self.session.set_stage(Stage.TRAINING, actor=self.actor)
        self._notify()
        try:
            while True:
                ready = self.ready_runs()
                self.slots.want(self, len(ready))
                for run in ready:
                    if not self.slots.try_acquire(self):
                        break
                    if not self._db.call(self._start, run):
                        self.slots.release(self)
                        break
                if not self._trainers:
                    if not self.ready_runs():
                        break
                    # Waiting for a slot (or for the database): still hear a cancel, keep the lease.
                    self._db.call(self._idle_check)
                self._tick()
        except BaseException:
            self._abandon_all()
            raise
        finally:
            self.slots.want(self, 0)

    def ready_runs(self) -> list[SkillRun]:
        """Pending skills whose sub-skills and previous sibling are done, in training order; none
        after a failure, a cancel or a shutdown."""
        if self.cancel_requested or any(r.status == SkillStatus.FAILED for r in self.runs):
            return []
        done = {r.pk for r in self.runs if r.status in SkillStatus.done()}
        return [
            r for r in self.runs
            if r.status == SkillStatus.PENDING and self._waits.get(r.pk, set()) <= done
        ]

    def _idle_check(self) -> None:
        now = time.monotonic()
        if now - self._last_idle_check >= self.timings.flush_interval:
            self._last_idle_check = now
            self._check_cancel()
            self._touch()

    def _start(self, run: SkillRun) -> bool:
        """Launch `run` now; False if it did not start (a cancel came, or it failed to start)."""
        if self._check_cancel():
            return False
        self._touch()
        return self._launch(run) is not None

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
        self.slots.try_acquire(self)
        trainer = self._launch(run)
        if trainer is None:
            self.slots.release(self)
            return run.status
        try:
            while trainer in self._trainers:
                self._tick()
        except BaseException:
            self._abandon_all()
            raise
        return run.status

    def _launch(self, run: SkillRun) -> Trainer | None:
        """Write the run's spec and start its trainer; a run that cannot start fails (returns None)."""
        skill = run.skill
        try:
            spec, start_from = planning.build_spec(run, self.config)
            run_folder = Path(spec["run_dir"])
            command = self.command_builder(run_folder / "spec.json", self.config, skill)
        except Exception as exc:
            # Anything that stops this one launch (no sub-skill policy, no Isaac Lab, a bad name)
            # fails the skill with its message; the session then stops like for any failure.
            self._fail_unstarted(run, outcomes.Code.SETUP, str(exc), str(exc))
            return None
        attempt = SkillRun.objects.filter(skill=skill, started_at__isnull=False).count() + 1
        context = LaunchContext(
            job_id=submission_id(settings.GENHRL_INSTANCE, self.session.pk, run.pk) if self.executor.name == "ray" else "",
            backend=self.config.backend,
            metadata={"genhrl_session": str(self.session.pk), "genhrl_run": str(run.pk), "genhrl_task": self.task.name},
        )
        # One transaction, before the process exists: a job's id is never lost to a crash, and a
        # write that fails leaves the run pending, to be started again.
        run.transition_to(
            SkillStatus.TRAINING, actor=self.actor, attempt=attempt, run_dir=str(run_folder),
            start_states_from=start_from, executor=self.executor.name, job_id=context.job_id,
            message=f"attempt {attempt}",
        )
        self.session.current_skill = skill
        try:
            process = self.executor.launch(command, run_folder / "trainer.log", wake=self._wake, context=context)
        except Exception as exc:
            # OSError locally; a refused submission (no cluster, an id that exists) with Ray.
            self._fail_unstarted(run, outcomes.Code.LAUNCH, f"cannot start the trainer: {exc}",
                                 "cannot start the trainer")
            return None
        stall = self.timings.stall_seconds
        stall = stall_seconds(self.config.backend) if stall is None else stall
        trainer = Trainer(run, process, self.timings, stall_seconds=stall)
        self._trainers.append(trainer)
        # The pid, the current skill and the session's pid also go with the trainer's first write:
        # written now if the database allows, a failure here cannot orphan the running trainer.
        run.pid = process.pid
        trainer.recorder.session_changes = {"current_skill_id": skill.pk, "pid": process.pid}
        self._db.call(self._record_launch, trainer)
        self._notify()
        return trainer

    def _record_launch(self, trainer: Trainer) -> None:
        SkillRun.objects.filter(pk=trainer.run.pk).update(pid=trainer.run.pid)
        TrainingSession.objects.filter(pk=self.session.pk).update(
            **trainer.recorder.session_changes, updated_at=timezone.now()
        )

    def _fail_unstarted(self, run: SkillRun, code: str, error: str, message: str) -> None:
        """A run that could not start fails; if the database is away now, that is recorded later."""
        def record() -> None:
            run.transition_to(SkillStatus.FAILED, actor=self.actor, error=error, stop_reason=code, message=message)
            self._notify()

        if self._db.call(lambda: record() or True) is None:
            self._unrecorded.append(record)

    # -- the supervision loop -------------------------------------------------------------------
    def _tick(self) -> None:
        """One pass over the running trainers: read, apply stop rules, write, conclude the ended.

        Every database step goes through `self._db`: while the database is unreachable the
        trainers go on, their output is kept in memory and written once it is back.
        """
        timings = self.timings
        while self._unrecorded and self._db.call(lambda: self._unrecorded[0]() or True):
            self._unrecorded.pop(0)
        for trainer in list(self._trainers):
            if not trainer.ended:
                trainer.collect()
                if trainer.exited():
                    trainer.end_process()
            now = time.monotonic()
            if trainer.ended:
                if self._db.call(self._finish_trainer, trainer):
                    self._trainers.remove(trainer)
                    self.slots.release(self)
                continue
            if not trainer.stopping:
                # A cancel from elsewhere is noticed by `_write` (at least every flush_interval).
                reason = self._stop_requested() or trainer.stop_rule(now, self.config.max_time_seconds)
                if reason:
                    trainer.begin_stop(reason, now)
                elif not trainer.stall_warned and trainer.stall_seconds and (
                    trainer.quiet_for(now) >= trainer.stall_seconds * STALL_WARNING_AT
                ):
                    trainer.stall_warned = True
                    self._db.call(self._warn, trainer, (
                        f"{trainer.run.skill.name} has sent no progress for {trainer.quiet_for(now):.0f} s; it is "
                        f"stopped as stalled after {trainer.stall_seconds:.0f} s without progress"
                    ))
            else:
                trainer.escalate(now, self._force)
            if trainer.recorder.write_due(
                now, record_interval=timings.record_flush_interval, interval=timings.flush_interval
            ):
                self._db.call(self._write, trainer)
        if self._db.outage_over_limit() and not self.shutting_down:
            self.shutdown(f"the database was unreachable for {self._db.down_for():.0f} s")
        if self._db.given_up():
            raise DatabaseUnavailable(f"the database has been unreachable for {self._db.down_for():.0f} s")
        # Sleep until a trainer prints a record or closes its output, at most one tick.
        if self._wake.wait(timings.tick):
            self._wake.clear()

    def _finish_trainer(self, trainer: Trainer) -> bool:
        if trainer.outcome is None:
            trainer.outcome = self._judge(trainer)  # files only: done once, whatever the database does
        self._write(trainer)
        self._record_outcome(trainer)
        return True

    def _until_recorded(self, step: Callable[[], None]) -> None:
        """Run a database step, trying again while the database is away (until the guard gives up)."""
        while True:
            done = self._db.call(lambda: step() or True)
            if done:
                return
            if self._db.given_up():
                raise DatabaseUnavailable(f"the database has been unreachable for {self._db.down_for():.0f} s")
            time.sleep(self.timings.tick)

    def _stop_requested(self) -> str:
        if self.cancel_requested:
            self._db.call(self._record_cancel)
            return "cancelled"
        return ""

    def _write(self, trainer: Trainer) -> None:
        """Store what the trainer reported, then act on what the write learned."""
        undisturbed = trainer.recorder.write(
            self.session, elapsed=trainer.elapsed, line_total=trainer.process.line_total
        )
        if self._db.recovered():
            self._warn(trainer, self._db.recovery_message(trainer.recorder.dropped_lines))
        if not undisturbed and not self.cancel_requested:
            self._check_cancel()  # sets the cancel flag, or raises SessionTakenOver
        if trainer.process.gpu_buffer_warning and not trainer.warned_gpu_buffer:
            trainer.warned_gpu_buffer = True
            self._warn(trainer, GPU_BUFFER_HINT)
        self._notify()

    def _warn(self, trainer: Trainer, message: str) -> None:
        SessionEvent.objects.create(
            session=self.session, skill_run=trainer.run, kind=SessionEvent.Kind.WARNING, actor=self.actor,
            message=message,
        )
        self._notify()

    def _judge(self, trainer: Trainer) -> Concluded:
        """Collect the ended run's facts, judge them and publish its policy (disk only, no database)."""
        run = trainer.run
        workspace = self.session.workspace
        states = paths.count_success_states(paths.success_dir(run.skill, workspace))
        facts = self._facts(trainer, states)
        outcome = outcomes.judge(facts)
        if trainer.stop_reason == "stalled" and not outcome.completed:
            outcome = outcomes.stalled(trainer.stall_seconds, outcome)
        if outcome.completed:
            try:
                paths.publish_policy(Path(run.run_dir) / "policy", run.skill, workspace)
            except OSError as exc:
                outcome = outcomes.publish_failed(exc)
        return Concluded(outcome, states, facts.exit_code, trainer.elapsed)

    def _record_outcome(self, trainer: Trainer) -> str:
        """Write the run's outcome; safe to repeat after a write the database lost."""
        run, done = trainer.run, trainer.outcome
        assert done is not None
        if run.status != done.outcome.status:
            try:
                run.transition_to(
                    done.outcome.status, actor=self.actor, message=done.outcome.message(done.states),
                    exit_code=done.exit_code, success_states=done.states, error=done.outcome.error,
                    stop_reason=str(done.outcome.reason)[:40], log_excerpt="\n".join(trainer.recorder.tail),
                    elapsed_seconds=done.elapsed, frames=run.frames,
                )
            except IllegalTransition as exc:
                run.refresh_from_db(fields=["status"])
                if run.status != done.outcome.status:
                    # Whoever marked the session interrupted also ended this run.
                    raise SessionTakenOver(str(exc)) from exc
        others = [t.pgid for t in self._trainers if t is not trainer and not t.ended]
        TrainingSession.objects.filter(pk=self.session.pk).update(pid=others[0] if others else None,
                                                                   updated_at=timezone.now())
        self._notify()
        return run.status

    def _facts(self, trainer: Trainer, states: int) -> outcomes.RunFacts:
        recorder, process, run = trainer.recorder, trainer.process, trainer.run
        return outcomes.RunFacts(
            exit_code=process.returncode,
            success_states=states,
            min_success_states=run.min_success_states,
            stop_reason=trainer.stop_reason,
            stopped_by_us=trainer.stopping,
            done_reason=str((recorder.done or {}).get("reason") or ""),
            traceback=tuple(process.traceback),
            errors=tuple(recorder.errors),
            tail=tuple(recorder.tail),
            has_policy=(Path(run.run_dir) / "policy" / "policy.pth").is_file(),
            out_of_memory=process.oom,
            host_out_of_memory=getattr(process, "host_oom", False),
            max_time_minutes=self.config.max_time,
            num_envs=self.config.num_envs,
        )

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
            self._cancel_asked = True
            return True
        return False

    def _record_cancel(self) -> None:
        """Record a local cancel (or a shutdown) once, the way any other process would.

        Marked done only once written: a write lost to a database outage is made again later.
        """
        if self._cancel_recorded:
            return
        if self._shutdown_reason:
            # Not a cancel: the session stays `running` until `finish` marks it interrupted.
            SessionEvent.objects.create(
                session=self.session, kind=SessionEvent.Kind.NOTE, actor=self.actor,
                message=f"stopping: {self._shutdown_reason}",
            )
        else:
            self._refresh_status()
            if self.session.status == SessionStatus.RUNNING:
                services.request_cancel(
                    self.session, actor=self.actor, message="cancel requested by the supervising process"
                )
        self._cancel_recorded = True
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

    def _abandon_all(self) -> None:
        """Supervision broke off (taken over, an error): kill every trainer, record its run failed."""
        trainers, self._trainers = list(self._trainers), []
        for trainer in trainers:
            self.slots.release(self)
            if not trainer.ended:
                trainer.kill()
            try:
                trainer.run.transition_to(
                    SkillStatus.FAILED, actor=self.actor, error="supervision stopped before the trainer ended",
                    stop_reason=outcomes.Code.SUPERVISOR, exit_code=trainer.process.returncode,
                )
            except IllegalTransition:
                pass  # already ended by whoever took the session over
            except Exception:
                logger.exception("session %s: cannot record the abandoned run", self.session.pk)

    def _stop_leftover_jobs(self) -> None:
        """Ray only: stop any job of this session still known to Ray (one cancelled while it waited
        for resources starts later otherwise). Workers' sweeps do this too; `manage.py train` has none."""
        if self.executor.name != "ray":
            return
        for run in self.runs:
            job_id = getattr(run, "job_id", "")
            if job_id and self.executor.status(job_id) in ("PENDING", "RUNNING"):  # type: ignore[union-attr]
                self.executor.stop(job_id)  # type: ignore[union-attr]

    def _emergency_stop(self) -> None:
        """If a trainer is still running (the supervisor itself failed), kill its group."""
        if self._trainers:
            self._abandon_all()

    def _notify(self) -> None:
        notify_changed(self.session.pk)
        if self.on_update is not None:
            try:
                self.on_update(self)
            except Exception:
                logger.exception("progress display failed")
