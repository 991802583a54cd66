"""Helpers for the trainer tests: specs from the bundled demo tasks and real trainer subprocesses.

The trainer subprocess is the real thing (`python -u -m training.trainer --spec ...`, own process
group, argv list) with tiny settings: 64 envs, small success targets. The session fixtures train
`fetch_block`'s two primitives and its composite once; several tests read their outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from training.trainer import records
from training.trainer.launch import build_command

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "tasks" / "demo" / "PointMass_generated" / "skills"
TINY_ENVS = 64
RUN_TIMEOUT = 120  # seconds; a tiny run takes a few


def skill_spec(task: str, skill: str, **changes: Any) -> dict[str, Any]:
    spec = json.loads((DEMO / task / "skills" / skill / "embedded.json").read_text())
    spec.update(changes)
    return spec


def make_spec(
    root: Path,
    task: str,
    skill: str,
    *,
    is_primitive: bool = True,
    sub_skills: list[dict[str, Any]] | None = None,
    start_states_dir: Path | None = None,
    spec_changes: dict[str, Any] | None = None,
    **fields: Any,
) -> Path:
    """Write run/spec.json for one skill of a demo task under `root`; returns its path."""
    run_dir = root / skill / "runs" / "1"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "backend": "embedded",
        "task": task,
        "robot": "PointMass",
        "skill": skill,
        "is_primitive": is_primitive,
        "level": 0 if is_primitive else 1,
        "run_dir": str(run_dir),
        "success_dir": str(root / skill / "success_states"),
        "start_states_dir": str(start_states_dir) if start_states_dir else None,
        "num_envs": TINY_ENVS,
        "seed": 3,
        "min_success_states": 20,
        "min_frames": 0,
        "max_frames": 400_000,
        "video": False,
        "video_interval": 2000,
        "video_length": 200,
        "object_config": json.loads((DEMO / task / "object_config.json").read_text()),
        "skill_spec": skill_spec(task, skill, **(spec_changes or {})),
        "sub_skills": sub_skills or [],
    }
    spec.update(fields)
    path = run_dir / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def sub_skill(
    task: str, skill: str, policy_dir: Path, children: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "name": skill,
        "is_primitive": not children,
        "skill_spec": skill_spec(task, skill),
        "policy_dir": str(policy_dir),
        "sub_skills": children or [],
    }


@dataclass
class Run:
    returncode: int
    records: list[dict[str, Any]]
    lines: list[str]
    stderr: str
    seconds: float
    spec_path: Path
    signalled_after: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    @property
    def done(self) -> dict[str, Any]:
        (done,) = self.of("done")
        return done

    @property
    def spec(self) -> dict[str, Any]:
        return json.loads(self.spec_path.read_text())


def run_trainer(
    spec_path: Path,
    *,
    send: int | None = None,
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Run:
    """Run the trainer to its end; optionally send `send` to its group once `when(record)` holds."""
    argv, env, cwd = build_command(spec_path, "embedded")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    got: list[dict[str, Any]] = []
    lines: list[str] = []
    trigger: dict[str, Any] | None = None
    try:
        for line in proc.stdout:
            lines.append(line)
            record = records.parse_line(line)
            if record is None:
                continue
            got.append(record)
            if send is not None and trigger is None and when is not None and when(record):
                trigger = record
                os.killpg(proc.pid, send)
            if time.monotonic() - started > RUN_TIMEOUT:
                break
        proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read()
    return Run(proc.returncode, got, lines, stderr, time.monotonic() - started, spec_path, trigger)


@dataclass
class FetchBlock:
    root: Path
    go_to_block: Run
    go_to_goal: Run
    fetch_block: Run


@pytest.fixture(scope="session")
def fetch_block_runs(tmp_path_factory: pytest.TempPathFactory) -> FetchBlock:
    """fetch_block trained bottom-up with tiny settings: go_to_block (with video), go_to_goal
    (from go_to_block's success states), then the composite fetch_block over both."""
    root = tmp_path_factory.mktemp("fetch_block")
    primitive = {"min_success_rate": 0.8}
    block = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "go_to_block",
            spec_changes=primitive,
            video=True,
            video_interval=40,
            video_length=20,
        )
    )
    assert block.returncode == 0, block.stderr[-3000:]
    goal = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "go_to_goal",
            spec_changes=primitive,
            start_states_dir=root / "go_to_block" / "success_states",
        )
    )
    assert goal.returncode == 0, goal.stderr[-3000:]
    composite = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "fetch_block",
            is_primitive=False,
            spec_changes={"min_success_rate": 0.5},
            min_frames=2048,
            sub_skills=[
                sub_skill("fetch_block", "go_to_block", Path(block.done["policy_dir"])),
                sub_skill("fetch_block", "go_to_goal", Path(goal.done["policy_dir"])),
            ],
        )
    )
    assert composite.returncode == 0, composite.stderr[-3000:]
    return FetchBlock(root, block, goal, composite)
