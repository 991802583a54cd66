"""Train every skill of one GenHRL demo task with the embedded trainer, in training order, and time it.

A stand-alone stand-in for the orchestrator (no Django): it writes each skill's spec.json the way
docs/ARCHITECTURE.md describes, runs `python -u -m training.trainer --spec ...`, reads the JSON
records, publishes the policy folder to the skill's `policy/` and hands success states to the next
sibling. It prints per-skill wall times (process start to exit, python/torch start-up included).

    .venv/bin/python scripts/trainer_bench.py tasks/demo/PointMass_generated/skills/patrol_beacons
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.trainer import records  # noqa: E402


def training_order(library: dict[str, Any]) -> tuple[list[str], dict[str, int], dict[str, str]]:
    skills = library["skills"]
    levels: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in levels:
            info = skills[name]
            levels[name] = 0 if info["is_primitive"] else 1 + max(level(c) for c in info["sub_skills"])
        return levels[name]

    parents = {c: name for name, info in skills.items() for c in info.get("sub_skills", [])}
    roots = [name for name in skills if name not in parents]
    dfs: list[str] = []

    def visit(name: str) -> None:
        if name not in dfs:
            dfs.append(name)
            for child in skills[name].get("sub_skills", []):
                visit(child)

    for root in roots:
        visit(root)
    order = sorted(dfs, key=lambda n: (level(n), dfs.index(n)))
    return order, levels, parents


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task_dir", type=Path)
    parser.add_argument("--num-envs", type=int, default=512)
    parser.add_argument("--min-success-states", type=int, default=50)
    parser.add_argument("--min-frames-primitive", type=int, default=100_000)
    parser.add_argument("--min-frames-composite", type=int, default=50_000)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--video", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the first skill's stdout here")
    args = parser.parse_args()

    task_dir = args.task_dir.resolve()
    library = json.loads((task_dir / "skill_library.json").read_text())
    objects = json.loads((task_dir / "object_config.json").read_text())
    order, levels, parents = training_order(library)
    skills = library["skills"]
    out = args.out or Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    folders = {name: out / "skills" / f"{i}-{name}" for i, name in enumerate(order)}

    def sub_tree(name: str) -> dict[str, Any]:
        info = skills[name]
        return {
            "name": name,
            "is_primitive": info["is_primitive"],
            "skill_spec": json.loads((task_dir / "skills" / name / "embedded.json").read_text()),
            "policy_dir": str(folders[name] / "policy"),
            "sub_skills": [sub_tree(c) for c in info.get("sub_skills", [])],
        }

    results = []
    total_start = time.monotonic()
    for index, name in enumerate(order):
        info = skills[name]
        parent = parents.get(name)
        start_dir = None
        if parent is not None:
            siblings = skills[parent]["sub_skills"]
            i = siblings.index(name)
            if i > 0:
                start_dir = str(folders[siblings[i - 1]] / "success_states")
        run_dir = folders[name] / "runs" / "1"
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = {
            "backend": "embedded",
            "task": task_dir.name,
            "robot": "PointMass",
            "skill": name,
            "is_primitive": info["is_primitive"],
            "level": levels[name],
            "run_dir": str(run_dir),
            "success_dir": str(folders[name] / "success_states"),
            "start_states_dir": start_dir,
            "num_envs": args.num_envs,
            "seed": args.seed,
            "min_success_states": args.min_success_states,
            "min_frames": args.min_frames_primitive if info["is_primitive"] else args.min_frames_composite,
            "max_frames": args.max_frames,
            "video": args.video,
            "video_interval": 2000,
            "video_length": 200,
            "object_config": objects,
            "skill_spec": json.loads((task_dir / "skills" / name / "embedded.json").read_text()),
            "sub_skills": [sub_tree(c) for c in info.get("sub_skills", [])],
        }
        spec_path = run_dir / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "training.trainer", "--spec", str(spec_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        first_epoch = None
        done: dict[str, Any] | None = None
        last_progress: dict[str, Any] | None = None
        log = []
        for line in proc.stdout:
            log.append(line)
            record = records.parse_line(line)
            if record is None:
                continue
            if record["kind"] == "progress":
                last_progress = record
                if first_epoch is None:
                    first_epoch = time.monotonic() - t0
            elif record["kind"] == "done":
                done = record
            elif record["kind"] == "error":
                print(f"{name}: ERROR {record['message']}")
        rc = proc.wait()
        wall = time.monotonic() - t0
        (run_dir / "trainer.log").write_text("".join(log))
        if index == 0 and args.keep_log:
            args.keep_log.write_text("".join(log))
        if done and done.get("policy_dir"):
            target = folders[name] / "policy"
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(done["policy_dir"], target)
        results.append((name, levels[name], rc, wall, first_epoch, done, last_progress))
        lp = last_progress or {}
        print(
            f"{name:24s} L{levels[name]} rc={rc} wall={wall:6.1f}s first-epoch={first_epoch or 0:5.1f}s "
            f"epochs={lp.get('epoch')} frames={lp.get('frames')} rate={lp.get('success_rate')} "
            f"states={done and done.get('success_states')} reason={done and done.get('reason')}",
            flush=True,
        )
        if rc != 0 or not done or done.get("reason") != "target_reached":
            print(f"stopping: {name} did not reach its target")
            break
    total = time.monotonic() - total_start
    print(f"TOTAL {total:.1f}s for {len(results)} skills (num_envs={args.num_envs}) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
