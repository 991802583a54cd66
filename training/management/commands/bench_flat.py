"""`manage.py bench_flat`: hierarchy vs a flat baseline on the demo tasks, on the embedded backend.

For each task and seed, in a fresh data folder and SQLite database of its own, exactly as a user
would: `manage.py train TASK --new-run --seed S` (the hierarchy, default options), then
`manage.py train TASK --flat --baseline-of <that session>` (the root as one policy on primitive
actions, the same total frames and seed). Recorded per run: the root's final success rate (the
trainer's own figure: the share of successes among the last max(100, envs) finished episodes),
frames (all skills' frames summed for the hierarchy) and wall time. Results go to
bench-results/flat.json. A measurement, not a test: run it on a quiet machine.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

TASKS = ("fetch_block", "patrol_beacons")


class Command(BaseCommand):
    help = "Hierarchical vs flat-baseline training of the demo tasks (embedded), several seeds -> bench-results/flat.json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated demo tasks")
        parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
        parser.add_argument("--num-envs", default=None, help="parallel environments (default: the backend's)")
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "bench-results" / "flat.json"))

    def handle(self, *args: Any, **options: Any) -> None:
        tasks = [t for t in options["tasks"].split(",") if t]
        unknown = sorted(set(tasks) - set(TASKS))
        if unknown:
            raise CommandError(f"not a demo task: {', '.join(unknown)} (demo tasks: {', '.join(TASKS)})")
        try:
            seeds = [int(s) for s in options["seeds"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--seeds takes whole numbers, e.g. 1,2,3") from None
        extra = ["--num-envs", str(int(options["num_envs"]))] if options["num_envs"] else []
        runs: list[dict[str, Any]] = []
        for task in tasks:
            for seed in seeds:
                result = self._pair(task, seed, extra)
                runs.append(result)
                h, f = result["hierarchical"], result["flat"]
                self.stdout.write(
                    f"{task} seed {seed}: hierarchical {_pct(h['success_rate'])} in {h['frames']:,} frames, "
                    f"{h['wall_seconds']:.0f} s; flat {_pct(f['success_rate'])} in {f['frames']:,} frames, "
                    f"{f['wall_seconds']:.0f} s"
                )
        report = {
            "commands": [
                "manage.py train TASK --new-run --seed S" + (" " + " ".join(extra) if extra else ""),
                "manage.py train TASK --flat --baseline-of SESSION" + (" " + " ".join(extra) if extra else ""),
            ],
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1min": round(os.getloadavg()[0], 2)},
            "runs": runs,
            "summary": _summary(runs, tasks),
        }
        output = Path(options["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(json.dumps(report["summary"], indent=2))

    def _pair(self, task: str, seed: int, extra: list[str]) -> dict[str, Any]:
        folder = Path(tempfile.mkdtemp(prefix="genhrl-bench-flat-"))
        env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "GENHRL_DATA_DIR": str(folder / "data")}
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        for setup in (["migrate", "--noinput", "-v", "0"], ["import_tasks", "--demo"]):
            subprocess.run([*manage, *setup], env=env, check=True, capture_output=True)  # argv list, no shell
        db = folder / "data" / "db.sqlite3"
        hier_wall = _train([*manage, "train", task, "--robot", "PointMass", "--new-run", "--seed", str(seed),
                            "--plain", *extra], env, must_pass=True)
        hier_id = _latest_session(db)
        flat_wall = _train([*manage, "train", task, "--robot", "PointMass", "--flat", "--baseline-of", str(hier_id),
                            "--plain", *extra], env, must_pass=False)
        flat_id = _latest_session(db)
        return {
            "task": task, "seed": seed,
            "hierarchical": {"session": hier_id, "wall_seconds": hier_wall, **_figures(db, hier_id)},
            "flat": {"session": flat_id, "wall_seconds": flat_wall, **_figures(db, flat_id)},
        }


def _train(argv: list[str], env: dict[str, str], *, must_pass: bool) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)  # argv list, no shell
    wall = round(time.monotonic() - started, 1)
    # A flat baseline that ends without its success states "fails": that is a result, not an error.
    if must_pass and result.returncode != 0:
        raise CommandError(f"{' '.join(argv[2:])} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return wall


def _latest_session(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT max(id) FROM training_trainingsession").fetchone()[0])


def _figures(db: Path, session_id: int) -> dict[str, Any]:
    """The session's status, its frames (all runs) and the root's (its last run's) final success rate."""
    with sqlite3.connect(db) as conn:
        status = conn.execute("SELECT status FROM training_trainingsession WHERE id = ?", (session_id,)).fetchone()[0]
        frames = conn.execute(
            "SELECT coalesce(sum(frames), 0) FROM training_skillrun WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        rate = conn.execute(
            "SELECT success_rate FROM training_skillrun WHERE session_id = ? ORDER BY \"order\" DESC LIMIT 1",
            (session_id,),
        ).fetchone()
    return {"status": status, "frames": int(frames), "success_rate": rate[0] if rate else None}


def _summary(runs: list[dict[str, Any]], tasks: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in tasks:
        mine = [r for r in runs if r["task"] == task]
        out[task] = {
            kind: {
                "success_rate_mean": _mean([r[kind]["success_rate"] for r in mine]),
                "success_rates": [r[kind]["success_rate"] for r in mine],
                "frames_mean": _mean([r[kind]["frames"] for r in mine]),
                "wall_seconds_mean": _mean([r[kind]["wall_seconds"] for r in mine]),
            }
            for kind in ("hierarchical", "flat")
        }
    return out


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return round(statistics.fmean(numbers), 3) if numbers else None


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"
