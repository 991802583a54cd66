"""`manage.py train TASK`: train a task's skills bottom-up here, with live progress (`genhrl train`).

The session is recorded exactly like one started from the web (services.start_session), so it
shows in the portal while it runs, and the web can cancel it. Ctrl-C cancels gracefully: SIGINT
to the trainer's process group, then SIGTERM and SIGKILL after grace periods; press it again to
hurry. Exit status: 0 only when every skill completed (or was skipped as already complete), 1 on
failure, 130 when cancelled.

`train TASK --resume` continues the task's latest interrupted, failed or cancelled session here,
with that session's settings (services.resume_session): skills it completed are not retrained.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from tasks.models import Task
from training import paths, presets, services
from training.config import CLI_FLAGS, MIN_STEPS, NUM_ENVS, ConfigError, TrainingConfig
from training.engine.orchestrator import Orchestrator
from training.engine.slots import SlotPool
from training.leases import worker_identity
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

# What the user typed for each field, for error messages.
FLAGS = {**CLI_FLAGS, "task": "TASK"}
PLAIN_PROGRESS_EVERY = 10.0  # seconds between progress lines when output is not a terminal


class Command(BaseCommand):
    help = "Train a task's skills bottom-up (primitives first), one trainer subprocess per skill."

    def add_arguments(self, parser: CommandParser) -> None:
        d = TrainingConfig()
        embedded, isaaclab = NUM_ENVS["embedded"], NUM_ENVS["isaaclab"]
        parser.add_argument("task", help="task name (as in manage.py list_tasks)")
        parser.add_argument("--robot", help="robot, when several robots have a task of this name")
        parser.add_argument("--backend", choices=("embedded", "isaaclab"),
                            help="simulator (default: the task's backend)")
        # Values stay strings here: training/config.py validates them, for the CLI and the web alike.
        parser.add_argument("--max-time", help=f"minutes per skill (default {d.max_time:g})")
        parser.add_argument("--min-success-states", help=f"success states to complete a skill (default {d.min_success_states})")
        parser.add_argument(
            "--num-envs",
            help=f"parallel environments (default {embedded[0]} embedded, {embedded[1]}-{embedded[2]}; "
            f"{isaaclab[0]} Isaac Lab, {isaaclab[1]}-{isaaclab[2]})",
        )
        parser.add_argument("--seed", help=f"random seed (default {d.seed})")
        parser.add_argument("--new-run", action="store_true", default=None,
                            help="delete this task's earlier training data first (never another task's)")
        parser.add_argument("--skip-complete", action=argparse.BooleanOptionalAction, default=None,
                            help="skip skills that already have enough success states (default on)")
        parser.add_argument("--headless", action=argparse.BooleanOptionalAction, default=None,
                            help="run the simulator without a window (default on)")
        parser.add_argument("--video", action="store_true", default=None, help="record videos")
        parser.add_argument("--video-interval", help=f"steps between videos (default {d.video_interval})")
        parser.add_argument("--video-length", help=f"steps per video (default {d.video_length})")
        parser.add_argument(
            "--min-steps-primitive",
            help=f"frames a primitive trains at least (default {MIN_STEPS['embedded']['primitive']:,} embedded, "
            f"{MIN_STEPS['isaaclab']['primitive']:,} Isaac Lab)",
        )
        parser.add_argument(
            "--min-steps-composite",
            help=f"frames a composite trains at least (default {MIN_STEPS['embedded']['composite']:,} embedded, "
            f"{MIN_STEPS['isaaclab']['composite']:,} Isaac Lab)",
        )
        parser.add_argument("--max-frames", help=argparse.SUPPRESS)  # fixed-work runs (bench, tests)
        # PPO hyper-parameters for every skill (unset: each skill's own).
        parser.add_argument("--learning-rate", help="PPO learning rate (default: each skill's own, 1e-3)")
        parser.add_argument("--entropy-coef", help="PPO entropy coefficient (default: each skill's own)")
        parser.add_argument("--horizon-length", help="PPO horizon, steps per env per update (default: each skill's own)")
        parser.add_argument("--mini-epochs", help="PPO mini-epochs per update (default: each skill's own)")
        parser.add_argument(
            "--flat", action="store_true", default=None,
            help="train a flat baseline: the root skill alone as one policy on primitive actions, with the "
            "root's reward and success (in its own folders; the hierarchical policies are kept)",
        )
        parser.add_argument(
            "--baseline-of", metavar="SESSION",
            help="with --flat: the completed hierarchical session whose total frames and seed the baseline uses",
        )
        parser.add_argument(
            "--preset", metavar="NAME",
            help="start from a saved preset: a shared one by name, a personal one as OWNER/NAME; options "
            "given here go on top (see /training/presets/)",
        )
        parser.add_argument(
            "--slots", type=int, default=1,
            help="skills trained at once where the skill tree allows it (default 1: in training order)",
        )
        parser.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
        parser.add_argument(
            "--resume", action="store_true",
            help="continue the task's latest interrupted, failed or cancelled session with its settings; "
            "completed skills are not retrained",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["slots"] <= 64:
            raise CommandError("--slots must be between 1 and 64")
        try:
            task = services.find_task(options["task"], options.get("robot"))
        except services.TaskNotFound as exc:
            raise CommandError(exc.for_terminal()) from None
        data = {name: options.get(name) for name in FLAGS if name != "task"}
        resume: TrainingSession | None = None
        if options.get("resume"):
            given = [FLAGS[name] for name, value in data.items() if value is not None]
            if options.get("preset"):
                given.append("--preset")
            if given:
                raise CommandError(f"--resume reuses the session's settings; drop {', '.join(given)}")
            try:
                resume = services.latest_resumable_session(task)
            except services.NotResumable as exc:
                raise CommandError(str(exc)) from None
            config = resume.training_config()
        elif options.get("preset"):
            config = _preset_config(options["preset"], task, data)
        else:
            try:
                config = TrainingConfig.from_data(data, task=task)
            except ConfigError as exc:
                raise CommandError(f"invalid options: {_problems(exc)}") from None

        # From the moment the session exists, Ctrl-C (and SIGTERM) cancel it. The handler only
        # sets flags (no output, no database): the supervising loop records the cancel between
        # its writes and the display says so on its next update.
        pending = Pending()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            pending.presses += 1
            if pending.orchestrator is not None:
                pending.orchestrator.cancel()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            orch = self._supervise(task, config, options, pending, resume=resume)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        session = orch.session
        self._report(orch)
        if session.status == SessionStatus.COMPLETED:
            self.stdout.write(self.style.SUCCESS(f"All {len(orch.runs)} skills trained."))
            return
        if session.status == SessionStatus.CANCELLED:
            raise CommandError("training cancelled; completed skills keep their results", returncode=130)
        raise CommandError(f"training {session.status}: {session.error or 'see the log above'}")

    def _supervise(
        self, task: Task, config: TrainingConfig, options: dict[str, Any], pending: Pending,
        *, resume: TrainingSession | None = None,
    ) -> Orchestrator:
        actor = f"cli:{_login()}"
        worker_id = worker_identity()
        try:
            # Claimed for this process at once, so a web worker polling for queued sessions
            # cannot take a session that this terminal is about to supervise.
            if resume is not None:
                session = services.resume_session(resume, actor=actor, worker_id=worker_id)
                self.stdout.write(f"Resuming session {resume.pk} ({resume.status}) as session {session.pk}")
            else:
                session = services.start_session(task, config, actor=actor, worker_id=worker_id)
        except ConfigError as exc:
            raise CommandError(f"invalid options: {_problems(exc)}") from None
        except services.NotResumable as exc:
            raise CommandError(str(exc)) from None
        except services.SessionAlreadyActive as exc:
            raise CommandError(f"{task.name} ({task.robot}): {exc}; cancel it or wait") from None

        out = getattr(self.stdout, "_out", sys.stdout)
        fancy = not options["plain"] and hasattr(out, "isatty") and out.isatty()
        display: _Display = _RichDisplay(out) if fancy else _PlainDisplay(self.stdout.write)
        slots = options["slots"]
        self.stdout.write(
            f"Training {task.name} ({task.robot}) in session {session.pk}: backend {config.backend}, "
            f"{config.num_envs} envs, {config.min_success_states} success states, "
            f"{config.max_time:g} min per skill" + (f", up to {slots} skills at once" if slots > 1 else "")
        )
        orch = Orchestrator(
            session, worker_id=worker_id, actor=actor, on_update=display.update, slots=SlotPool(options["slots"])
        )
        pending.orchestrator = orch
        for _ in range(pending.presses):  # pressed while the session was being created
            orch.cancel()
        display.start()
        try:
            orch.run()
        finally:
            display.stop()
        return orch

    def _report(self, orch: Orchestrator) -> None:
        if orch.deleted:
            root = paths.task_dir(orch.task)
            self.stdout.write(f"--new-run deleted from {root}:")
            for path in orch.deleted:
                self.stdout.write(f"  {path.relative_to(root)}")
        elif orch.config.new_run:
            self.stdout.write("--new-run: there was no earlier training data to delete")
        for run in orch.runs:
            run.refresh_from_db()
            line = (
                f"  {run.order + 1:>2}. {run.skill.name:<32} {run.status:<10} "
                f"{run.success_states}/{run.min_success_states} states"
            )
            if run.started_at:
                line += f", {run.frames:,} frames, {run.elapsed_seconds:.0f}s"
            self.stdout.write(line)
            if run.status == SkillStatus.FAILED and run.error:
                for text in run.error.splitlines()[-12:]:
                    self.stdout.write(f"      {text}")


@dataclass
class Pending:
    """What the signal handler may touch: the supervisor once it exists, and early presses."""

    orchestrator: Orchestrator | None = None
    presses: int = 0


def _preset_config(name: str, task: Task, data: dict[str, Any]) -> TrainingConfig:
    """The preset's options with the flags given on top; a preset that no longer validates says so."""
    try:
        preset = presets.find(name)
    except presets.PresetNotFound as exc:
        raise CommandError(f"{exc}; see /training/presets/ (a personal preset is OWNER/NAME)") from None
    try:
        return presets.config_for(preset, task, data)
    except presets.PresetInvalid as exc:
        raise CommandError(f"preset {preset} no longer validates: {_problems(exc)}; fix or delete it") from None
    except ConfigError as exc:
        raise CommandError(f"invalid options: {_problems(exc)}") from None


def _problems(exc: ConfigError) -> str:
    return "; ".join(f"{FLAGS.get(f, f)}: {m}" for f, msgs in exc.errors.items() for m in msgs)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class _Display:
    def __init__(self) -> None:
        self.cancel_level = 0  # how many Ctrl-C presses were announced

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def update(self, orch: Orchestrator) -> None:
        if orch.cancel_requested:
            level = 1 + orch.force_level
            if level > self.cancel_level:
                self.cancel_level = level
                self.say_cancelling(level)

    def say_cancelling(self, level: int) -> None: ...


class _RichDisplay(_Display):
    """Live bars: one per skill (success states, time) and one for the whole session."""

    def __init__(self, out: Any) -> None:
        super().__init__()
        self.console = Console(file=out)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.overall: TaskID | None = None
        self.bars: dict[int, TaskID] = {}
        self.stopped: set[int] = set()

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def say_cancelling(self, level: int) -> None:
        hint = ["", "Ctrl-C again to stop harder", "SIGTERM sent; Ctrl-C again to kill", "killing"][min(level, 3)]
        self.console.print(f"[yellow]Cancelling... ({hint})[/yellow]")

    def update(self, orch: Orchestrator) -> None:
        super().update(orch)
        if not orch.runs:
            return
        if self.overall is None:
            self.overall = self.progress.add_task("skills done", total=len(orch.runs), note="")
        done = 0
        for run in orch.runs:
            if run.status in SkillStatus.done():
                done += 1
            if run.status == SkillStatus.PENDING and run.pk not in self.bars:
                continue
            self._skill_bar(run)
        self.progress.update(self.overall, completed=done)

    def _skill_bar(self, run: SkillRun) -> None:
        bar = self.bars.get(run.pk)
        if bar is None:
            # A skipped skill gets a bar too (full, no clock), so the list shows every skill.
            bar = self.progress.add_task(
                f"{run.skill.name} ({run.skill.kind})", total=run.min_success_states, note="",
                start=run.status == SkillStatus.TRAINING,
            )
            self.bars[run.pk] = bar
        note = f"{run.status}, {run.frames:,} frames"
        if run.last_reward is not None:
            note += f", reward {run.last_reward:.2f}"
        self.progress.update(bar, completed=min(run.success_states, run.min_success_states), note=note)
        if run.is_terminal and run.pk not in self.stopped:
            self.stopped.add(run.pk)
            self.progress.stop_task(bar)


class _PlainDisplay(_Display):
    """Log-friendly lines (no cursor tricks) when the output is a file or a pipe."""

    def __init__(self, write: Any) -> None:
        super().__init__()
        self.write = write
        self.seen: dict[int, str] = {}
        self.last_line = 0.0

    def say_cancelling(self, level: int) -> None:
        self.write("Cancelling..." if level == 1 else f"Cancelling: stopping harder ({level})")

    def update(self, orch: Orchestrator) -> None:
        super().update(orch)
        now = time.monotonic()
        for run in orch.runs:
            before = self.seen.get(run.pk)
            if before == run.status:
                continue
            self.seen[run.pk] = run.status
            if run.status == SkillStatus.PENDING:
                continue
            self.write(
                f"[{sum(r.status in SkillStatus.done() for r in orch.runs)}/{len(orch.runs)}] "
                f"{run.skill.name}: {run.status} ({run.success_states}/{run.min_success_states} success states)"
            )
        training = orch.training()
        if training and now - self.last_line >= PLAIN_PROGRESS_EVERY:
            self.last_line = now
            for running in training:
                run = running.run
                reward = f", reward {run.last_reward:.2f}" if run.last_reward is not None else ""
                self.write(
                    f"    {run.skill.name}: {run.success_states}/{run.min_success_states} success states, "
                    f"{run.frames:,} frames{reward}, {running.elapsed:.0f}s"
                )
