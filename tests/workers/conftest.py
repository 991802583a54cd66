"""Fixtures of the worker tests: worker processes on the test database, tiny tasks, waits.

Workers run as real processes (`manage.py training_worker`, or `fake_worker.py`: the same command
with the fake trainer), pointed at the test database through DATABASE_URL, so claims, leases,
signals and process groups are exercised the way they happen in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.models import Skill, Task
from tests.api.conftest import TINY, demo, fetch_block  # noqa: F401  (shared fixtures and options)
from tests.web.live import live_database_url, use_file_sqlite_test_db
from training.executor import group_members

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_WORKER = Path(__file__).with_name("fake_worker.py")
# A lease short enough that a dead worker is noticed in seconds, not the production 30-40 s.
SHORT_LEASE = ["--poll-interval", "0.1", "--heartbeat-interval", "0.5", "--reap-interval", "0.5",
               "--stale-after", "3"]


def pytest_configure(config: pytest.Config) -> None:
    # Before any database is created: worker processes must open the same SQLite file.
    use_file_sqlite_test_db(config)


def one_skill_task(name: str, robot: str = "PointMass") -> Task:
    """A task with a single primitive skill, for tests that need many tasks."""
    task = Task.objects.create(
        name=name, robot=robot, backend=Task.Backend.EMBEDDED, root_skill=name,
        source_path=f"/demo/{robot}_generated/skills/{name}", skill_count=1, levels=1,
    )
    Skill.objects.create(task=task, name=name, level=0, order=0, is_primitive=True)
    return task


class Workers:
    """Worker processes started by one test; all are killed (by their own pid) at its end."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, *args: str, fake: str | None = "", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A worker; `fake` holds the fake trainer's arguments, None runs the real trainer."""
        child_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
            "DATABASE_URL": live_database_url(),
            "GENHRL_DATA_DIR": str(self.data_dir),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        child_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        if fake is None:
            argv = [sys.executable, "manage.py", "training_worker", *args]
        else:
            child_env["FAKE_TRAINER_ARGS"] = fake
            argv = [sys.executable, str(FAKE_WORKER), *args]
        log = self.data_dir / f"worker-{len(self.processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.logs.append(log)
        return process

    def log(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace") if self.logs else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.send_signal(signal.SIGTERM)  # at once
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def workers(settings: Any, tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes sharing this test's data folder and database."""
    data_dir = tmp_path / "data"
    (data_dir / "training").mkdir(parents=True)
    settings.GENHRL_RUNS_DIR = data_dir / "training"  # the test reads what the workers write
    pool = Workers(data_dir)
    try:
        yield pool
    finally:
        pool.stop_all()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def group_gone(pgid: int) -> bool:
    """No live process left in the group (an orphan's zombie, waiting for init, does not count)."""
    if Path("/proc/self/stat").exists():
        return not group_members(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
