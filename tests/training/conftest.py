"""Fixtures for orchestrator tests: the demo tasks, a contract-following fake trainer, short waits."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.importer import import_demo
from tasks.models import Skill, Task
from training import paths, services
from training.config import TrainingConfig
from training.engine.orchestrator import Orchestrator
from training.engine.supervision import Timings
from training.executor import LaunchCommand
from training.models import TrainingSession

FAKE_TRAINER = Path(__file__).with_name("fake_trainer.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(db) -> dict[str, Task]:
    report = import_demo()
    assert all(r.status != "failed" for r in report.results), report.results
    return {t.name: t for t in Task.objects.filter(robot="PointMass")}


@pytest.fixture
def fetch_block(demo) -> Task:
    return demo["fetch_block"]


@pytest.fixture
def patrol(demo) -> Task:
    return demo["patrol_beacons"]


def fake_builder(*extra: str) -> Callable[[Path, TrainingConfig, Skill], LaunchCommand]:
    """Launch the fake trainer with extra arguments, in the run folder, with a small environment."""

    def build(spec_path: Path, config: TrainingConfig, skill: Skill) -> LaunchCommand:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        argv = [sys.executable, str(FAKE_TRAINER), "--spec", str(spec_path), *extra]
        return LaunchCommand(argv=argv, env=env, cwd=spec_path.parent)

    return build


# Waits short enough for tests, long enough for a graceful stop of the fake trainer.
FAST = Timings(sigint_grace=3.0, sigterm_grace=2.0, exit_grace_after_done=1.0, target_grace=1.0, metric_interval=0.0)

TINY: dict[str, Any] = {
    "num_envs": 16,
    "min_success_states": 10,
    "min_steps_primitive": 0,
    "min_steps_composite": 0,
    "max_time": 1,
}


@pytest.fixture
def start() -> Callable[..., TrainingSession]:
    def make(task: Task, **config: Any) -> TrainingSession:
        return services.start_session(task, {**TINY, **config}, actor="test")

    return make


def orchestrate(session: TrainingSession, *extra: str, timings: Timings = FAST, **kwargs: Any) -> Orchestrator:
    return Orchestrator(
        session, command_builder=fake_builder(*extra), timings=timings, actor="test", **kwargs
    )


def give_states(skill: Skill, count: int, policy: bool = True) -> None:
    """Put `count` success states (and a policy) in a skill's folders, as an earlier run would."""
    from training.trainer.success import state_file_name

    folder = paths.success_dir(skill)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / state_file_name(count)).write_bytes(b"fake")
    if policy:
        target = paths.policy_dir(skill)
        target.mkdir(parents=True, exist_ok=True)
        (target / "policy.pth").write_bytes(b"fake")


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
