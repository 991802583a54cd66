"""`manage.py bench_parallel`: a whole task's wall time with 1 slot vs N, on the local executor and on Ray.

Each configuration runs `manage.py train TASK --new-run --slots N` exactly as a user would, in a
fresh data folder and SQLite database of its own (so runs never share success states), and
records its wall time and each skill's time. With `--ray` a Ray head on 127.0.0.1 is started for
the measurement (training/management/local_ray.py) and the same runs go through the `ray`
executor. Results go to bench-results/parallel.json. A measurement, not a test: run it on a quiet
machine (the trainers use one core each).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

SKILL_LINE = re.compile(r"^\s+\d+\. (?P<skill>\S+)\s+(?P<status>\w+)\s+\S+ states(?:, [\d,]+ frames, (?P<s>\d+)s)?")


class Command(BaseCommand):
    help = "Time a whole demo task with 1 slot and with more, locally and (with --ray) on a local Ray head."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", default="patrol_beacons")
        parser.add_argument("--slots", default="1,2", help="comma-separated slot counts (default 1,2)")
        parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median is kept)")
        parser.add_argument("--ray", action="store_true", help="also run on a Ray head started on 127.0.0.1")
        parser.add_argument("--ray-address", help="use this Ray cluster instead of starting one")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench-results" / "parallel.json"))

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            slot_counts = [int(n) for n in options["slots"].split(",") if n.strip()]
        except ValueError:
            raise CommandError("--slots takes numbers, e.g. 1,2") from None
        executors: list[tuple[str, str | None]] = [("local", None)]
        results: list[dict[str, Any]] = []
        with contextlib.ExitStack() as stack:
            if options["ray"] or options["ray_address"]:
                address = options["ray_address"]
                if not address:
                    from training.management.local_ray import local_head

                    address = stack.enter_context(local_head(cpus=os.cpu_count() or 2)).address
                executors.append(("ray", address))
            for executor, address in executors:
                for slots in slot_counts:
                    runs = [self._run(options["task"], slots, executor, address) for _ in range(options["repeat"])]
                    runs.sort(key=lambda r: r["wall_seconds"])
                    best = runs[len(runs) // 2]
                    results.append({"executor": executor, "slots": slots, **best,
                                    "all_wall_seconds": [r["wall_seconds"] for r in runs]})
                    self.stdout.write(f"{executor:<5} slots={slots}: {best['wall_seconds']:.1f} s")
        report = {
            "task": options["task"],
            "command": f"manage.py train {options['task']} --new-run --slots N",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1min": os.getloadavg()[0]},
            "results": results,
            "speedup": self._speedups(results, slot_counts),
        }
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(json.dumps(report["speedup"], indent=2))

    @staticmethod
    def _speedups(results: list[dict[str, Any]], slot_counts: list[int]) -> dict[str, float]:
        speed = {}
        for executor in sorted({r["executor"] for r in results}):
            walls = {r["slots"]: r["wall_seconds"] for r in results if r["executor"] == executor}
            base = walls.get(min(slot_counts))
            for slots, wall in walls.items():
                if base and slots != min(slot_counts):
                    speed[f"{executor} {slots} slots vs {min(slot_counts)}"] = round(base / wall, 2)
        return speed

    def _run(self, task: str, slots: int, executor: str, address: str | None) -> dict[str, Any]:
        folder = Path(tempfile.mkdtemp(prefix="genhrl-bench-parallel-"))
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "GENHRL_DATA_DIR": str(folder / "data"), "GENHRL_EXECUTOR": executor,
        }
        if address:
            env["GENHRL_RAY_ADDRESS"] = address
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        for setup in (["migrate", "--noinput", "-v", "0"], ["import_tasks", "--demo"]):
            subprocess.run([*manage, *setup], env=env, check=True, capture_output=True)  # argv list, no shell
        started = time.monotonic()
        result = subprocess.run(  # argv list, never a shell
            [*manage, "train", task, "--robot", "PointMass", "--new-run", "--slots", str(slots), "--plain"],
            env=env, capture_output=True, text=True, timeout=3600,
        )
        wall = time.monotonic() - started
        if result.returncode != 0:
            raise CommandError(f"train failed ({executor}, {slots} slots):\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
        skills = {}
        for line in result.stdout.splitlines():
            match = SKILL_LINE.match(line)
            if match:
                skills[match["skill"]] = {"status": match["status"], "seconds": int(match["s"] or 0)}
        return {"wall_seconds": round(wall, 1), "skills": skills}
