"""`manage.py bench_trainer`: what supervision costs a trainer, in frames per second.

Runs the real trainer on one skill for a fixed number of frames, twice per round: bare (a plain
subprocess writing its output to a file) and under the orchestrator (reader threads, records,
batched database writes, heartbeat, cancel polling). Rounds alternate which goes first so that
drift on a shared machine falls on both. Reports the median frames per second of each, measured
from launch to exit (what a user waits for) and as the trainer itself reports it per epoch (the
training loop only), and the overhead in percent; writes them to bench-results/trainer.json.

Everything runs in a temporary runs folder; the benchmark's sessions are deleted afterwards
unless --keep. This is a measurement, not a test: run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import override_settings
from django.utils import timezone

from tasks.models import Skill, Task
from training import services
from training.config import ConfigError, TrainingConfig
from training.engine.orchestrator import Orchestrator
from training.engine.planning import default_command_builder
from training.models import SkillRun, SkillStatus, Stage
from training.trainer.records import parse_line as parse_record

ACTOR = "bench"


class Command(BaseCommand):
    help = "Measure the orchestrator's overhead on trainer throughput (bare vs supervised)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", default="fetch_block")
        parser.add_argument("--robot", default="PointMass")
        parser.add_argument("--skill", help="skill to train (default: the first in training order)")
        parser.add_argument("--frames", type=int, default=1_500_000, help="frames per run (default 1,500,000)")
        parser.add_argument("--num-envs", type=int, default=512)
        parser.add_argument("--repeat", type=int, default=5, help="rounds of (bare, supervised)")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench-results" / "trainer.json"))
        parser.add_argument("--keep", action="store_true", help="keep the benchmark's sessions in the database")

    def handle(self, *args: Any, **options: Any) -> None:
        task = self._task(options["task"], options["robot"])
        skill = self._skill(task, options["skill"])
        try:
            config = TrainingConfig.from_data({
                "num_envs": options["num_envs"],
                "max_frames": options["frames"],
                # Stop on the frame count only: the same amount of work in every run.
                "min_success_states": 1,
                "min_steps_primitive": options["frames"],
                "min_steps_composite": options["frames"],
                "skip_complete": False,
                "max_time": 60,
            }, task=task)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        load_before = os.getloadavg()[0]
        runs_dir = Path(tempfile.mkdtemp(prefix="genhrl-bench-"))
        results: dict[str, list[dict[str, Any]]] = {"bare": [], "supervised": []}
        try:
            with override_settings(GENHRL_RUNS_DIR=runs_dir):
                for round_ in range(options["repeat"]):
                    order = ("bare", "supervised") if round_ % 2 == 0 else ("supervised", "bare")
                    for mode in order:
                        result = self._bare(task, skill, config, runs_dir, round_) if mode == "bare" else \
                            self._supervised(task, skill, config, options["keep"])
                        results[mode].append(result)
                        self.stdout.write(
                            f"round {round_ + 1} {mode:<10} {result['frames']:>10,} frames in "
                            f"{result['wall_seconds']:6.2f}s: {result['wall_fps']:>9,.0f} fps wall, "
                            f"{result['trainer_fps']:>9,.0f} fps training"
                        )
        finally:
            shutil.rmtree(runs_dir, ignore_errors=True)
        report = self._report(task, skill, config, options, results)
        report["machine"]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        summary = report["summary"]
        self.stdout.write(json.dumps(summary, indent=2))
        self.stdout.write(
            f"best of {options['repeat']}: bare {summary['bare_wall_fps']:,.0f} fps, supervised "
            f"{summary['supervised_wall_fps']:,.0f} fps: overhead {summary['overhead_percent']:+.2f}% "
            f"(median {summary['overhead_percent_median']:+.2f}%); the supervisor used "
            f"{summary['supervisor_cpu_percent_of_trainer']:.2f}% of the trainer's CPU time; identical bare runs "
            f"differed by {summary['bare_spread_percent']:.1f}% (written to {output})"
        )

    # -- setup ------------------------------------------------------------------------------------
    def _task(self, name: str, robot: str) -> Task:
        try:
            return services.find_task(name, robot)
        except services.TaskNotFound:
            if (name, robot) not in {("fetch_block", "PointMass"), ("patrol_beacons", "PointMass")}:
                raise CommandError(f"no task {name} for robot {robot}") from None
        from tasks.importer import import_demo

        import_demo()
        return services.find_task(name, robot)

    def _skill(self, task: Task, name: str | None) -> Skill:
        skills = task.skills.filter(defined=True, is_primitive=True).order_by("order")
        skill = skills.filter(name=name).first() if name else skills.first()
        if skill is None:
            raise CommandError(f"no primitive skill {name or ''} in {task.name}")
        return skill

    # -- the two ways to run ----------------------------------------------------------------------
    def _bare(self, task: Task, skill: Skill, config: TrainingConfig, runs_dir: Path, round_: int) -> dict[str, Any]:
        """The trainer alone: the spec the orchestrator would write, output to a file, nothing else."""
        run_dir = runs_dir / "bare" / str(round_)
        success = runs_dir / "bare-success" / str(round_)
        run_dir.mkdir(parents=True)
        success.mkdir(parents=True)
        spec = {
            "backend": config.backend, "task": task.name, "robot": task.robot, "skill": skill.name,
            "is_primitive": True, "level": skill.level, "run_dir": str(run_dir), "success_dir": str(success),
            "start_states_dir": None, "num_envs": config.num_envs, "seed": config.seed,
            "min_success_states": config.min_success_states, "min_frames": config.min_steps_primitive,
            "max_frames": config.max_frames, "headless": True, "video": False,
            "video_interval": config.video_interval, "video_length": config.video_length,
            "object_config": task.object_config, "skill_spec": skill.embedded_spec, "sub_skills": [],
        }
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        command = default_command_builder(spec_path, config, skill)
        log = run_dir / "stdout.log"
        children_before = _cpu(resource.RUSAGE_CHILDREN)
        with log.open("wb") as out, (run_dir / "stderr.log").open("wb") as err:
            started = time.monotonic()
            process = subprocess.Popen(  # argv list, never a shell
                list(command.argv), cwd=command.cwd, env=dict(command.env), stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )
            code = process.wait()
            wall = time.monotonic() - started
        frames, fps = 0, []
        with log.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                record = parse_record(line.rstrip("\n"))
                if record is None:
                    continue
                if record.get("kind") == "progress" and isinstance(record.get("fps"), int | float):
                    fps.append(float(record["fps"]))
                if isinstance(record.get("frames"), int):
                    frames = max(frames, record["frames"])
        if code != 0 or not frames:
            raise CommandError(f"bare trainer run failed (exit {code}); see {run_dir}")
        return _result(frames, wall, fps, code, _cpu(resource.RUSAGE_CHILDREN) - children_before, 0.0)

    def _supervised(self, task: Task, skill: Skill, config: TrainingConfig, keep: bool) -> dict[str, Any]:
        """The same run through the orchestrator, exactly as `train` and the worker supervise one."""
        try:
            session = services.start_session(task, config, actor=ACTOR)
        except services.SessionAlreadyActive as exc:
            raise CommandError(f"{exc}; the benchmark needs the task idle") from None
        orch = Orchestrator(session, actor=ACTOR)
        try:
            orch.claim()
            session.set_stage(Stage.PLANNING, actor=ACTOR)
            run = SkillRun.objects.create(
                session=session, skill=skill, order=0, min_success_states=config.min_success_states,
                min_frames=config.min_steps_primitive,
            )
            orch.runs = [run]
            session.set_stage(Stage.TRAINING, actor=ACTOR)
            children_before = _cpu(resource.RUSAGE_CHILDREN)
            # This process's CPU while it supervises: reader threads, records, database writes.
            self_before = _cpu(resource.RUSAGE_SELF)
            status = orch.train_skill(run)
            supervisor_cpu = _cpu(resource.RUSAGE_SELF) - self_before
            trainer_cpu = _cpu(resource.RUSAGE_CHILDREN) - children_before
            orch.finish()
            run.refresh_from_db()
            if status != SkillStatus.COMPLETED or not run.frames:
                raise CommandError(f"supervised run {status}: {run.error}")
            fps = [float(v) for v in run.metric_points.filter(tag="fps").values_list("value", flat=True)]
            wall = run.elapsed_seconds
            return _result(run.frames, wall, fps, run.exit_code, trainer_cpu, supervisor_cpu)
        finally:
            session.refresh_from_db()
            if session.is_active:
                orch.cancel()
                orch.finish()
            if not keep:
                session.delete()

    # -- report -----------------------------------------------------------------------------------
    def _report(
        self, task: Task, skill: Skill, config: TrainingConfig, options: dict[str, Any],
        results: dict[str, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        def fps(mode: str, key: str, pick: Any) -> float:
            return float(pick(r[key] for r in results[mode]))

        def overhead(bare: float, supervised: float) -> float:
            return round(100.0 * (bare - supervised) / bare, 2) if bare else 0.0

        # The fastest run of each kind is the least disturbed by whatever else the machine did
        # (the reason timeit reports a minimum); the medians are reported beside it.
        best = {m: fps(m, "wall_fps", max) for m in results}
        median = {m: fps(m, "wall_fps", statistics.median) for m in results}
        training = {m: fps(m, "trainer_fps", statistics.median) for m in results}
        summary = {
            "bare_wall_fps": round(best["bare"], 1),
            "supervised_wall_fps": round(best["supervised"], 1),
            "overhead_percent": overhead(best["bare"], best["supervised"]),
            "within_3_percent": overhead(best["bare"], best["supervised"]) <= 3.0,
            "bare_wall_fps_median": round(median["bare"], 1),
            "supervised_wall_fps_median": round(median["supervised"], 1),
            "overhead_percent_median": overhead(median["bare"], median["supervised"]),
            "bare_training_fps_median": round(training["bare"], 1),
            "supervised_training_fps_median": round(training["supervised"], 1),
            "overhead_training_percent_median": overhead(training["bare"], training["supervised"]),
            # How much identical bare runs differed: the noise floor of the comparison above.
            "bare_spread_percent": round(
                100.0 * (fps("bare", "wall_fps", max) - fps("bare", "wall_fps", min)) / median["bare"], 1
            ),
            # Independent of other load on the machine: what supervising costs in CPU, relative to
            # the trainer's own CPU time, and whether the trainer itself needed more CPU.
            "supervisor_cpu_percent_of_trainer": round(100.0 * statistics.median(
                r["supervisor_cpu_seconds"] / r["trainer_cpu_seconds"] for r in results["supervised"]
                if r["trainer_cpu_seconds"] > 0
            ), 2),
            "bare_trainer_cpu_seconds_median": statistics.median(r["trainer_cpu_seconds"] for r in results["bare"]),
            "supervised_trainer_cpu_seconds_median": statistics.median(
                r["trainer_cpu_seconds"] for r in results["supervised"]
            ),
        }
        return {
            "when": timezone.now().isoformat(),
            "machine": {
                "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            },
            "workload": {
                "task": task.name, "robot": task.robot, "skill": skill.name, "backend": config.backend,
                "frames": config.max_frames, "num_envs": config.num_envs, "rounds": options["repeat"],
            },
            "runs": results,
            "summary": summary,
        }


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _result(
    frames: int, wall: float, fps: list[float], exit_code: int | None, trainer_cpu: float, supervisor_cpu: float
) -> dict[str, Any]:
    # The first epochs include warm-up; the median of all epochs is robust to them.
    return {
        "frames": frames,
        "wall_seconds": round(wall, 3),
        "wall_fps": frames / wall if wall > 0 else 0.0,
        "trainer_fps": statistics.median(fps) if fps else 0.0,
        "epochs": len(fps),
        "exit_code": exit_code,
        # CPU seconds: the trainer's own, and the supervising process's while it ran (0 when bare).
        "trainer_cpu_seconds": round(trainer_cpu, 3),
        "supervisor_cpu_seconds": round(supervisor_cpu, 3),
    }

