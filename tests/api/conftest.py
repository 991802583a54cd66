"""Fixtures of the API tests: tokens, clients, demo tasks, a live daphne and out-of-process training."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from tasks.importer import import_demo
from tasks.models import Skill, Task
from tests.web.live import LiveDaphne, live_database_url, run_daphne, use_file_sqlite_test_db
from training import permissions, services
from training.models import TrainingSession
from training.tokens import ApiToken

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_ELSEWHERE = Path(__file__).with_name("train_elsewhere.py")
FAKE_TRAINER = REPO_ROOT / "tests" / "training" / "fake_trainer.py"
# Options small enough for the fake trainer to finish a skill in about a second.
TINY: dict[str, Any] = {
    "num_envs": 16,
    "min_success_states": 10,
    "min_steps_primitive": 0,
    "min_steps_composite": 0,
    "max_time": 1,
}


def pytest_configure(config: pytest.Config) -> None:
    # Before any database is created: the live daphne must open the same SQLite file.
    use_file_sqlite_test_db(config)


@pytest.fixture
def demo(db: None) -> dict[str, Task]:
    report = import_demo()
    assert all(r.status != "failed" for r in report.results), report.results
    return {t.name: t for t in Task.objects.filter(robot="PointMass")}


@pytest.fixture
def fetch_block(demo: dict[str, Task]) -> Task:
    return demo["fetch_block"]


@pytest.fixture
def patrol(demo: dict[str, Task]) -> Task:
    return demo["patrol_beacons"]


def one_skill_task(name: str, robot: str = "PointMass") -> Task:
    """A task with a single primitive skill, for tests that need many tasks."""
    task = Task.objects.create(
        name=name, robot=robot, backend=Task.Backend.EMBEDDED, root_skill=name,
        source_path=f"/demo/{robot}_generated/skills/{name}", skill_count=1, levels=1,
    )
    Skill.objects.create(task=task, name=name, level=0, order=0, is_primitive=True)
    return task


def make_researcher(user: Any) -> Any:
    """Give `user` the start permission the way an admin does: the Researchers group.

    get_or_create, because a transactional test's flush removes the group the migration made.
    """
    permission = Permission.objects.get(content_type__app_label="training", codename="start_training")
    group, _ = Group.objects.get_or_create(name=permissions.RESEARCHERS_GROUP)
    group.permissions.add(permission)
    user.groups.add(group)
    return user


@pytest.fixture
def user(user: Any) -> Any:
    """The API tests' researcher starts sessions, so it holds the start permission."""
    return make_researcher(user)


@pytest.fixture
def token(user: Any) -> str:
    return ApiToken.issue(user, name="tests")[1]


@pytest.fixture
def token_client(token: str) -> Client:
    """A script: no cookies, a Bearer token, no CSRF token."""
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def browser_client(user: Any) -> Client:
    """A browser: logged in by session cookie, CSRF enforced as in production."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_headers(client: Client) -> dict[str, str]:
    """Fetch a page to get the csrftoken cookie, and send it back the way htmx does."""
    client.get("/accounts/login/")
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


@pytest.fixture
def queue(user: Any) -> Callable[..., TrainingSession]:
    def make(task: Task, **options: Any) -> TrainingSession:
        return services.start_session(task, {**TINY, **options}, owner=user)

    return make


def api_url(task: Task | str, action: str, robot: str | None = None) -> str:
    name = task if isinstance(task, str) else task.name
    robot = robot if robot is not None or isinstance(task, str) else task.robot
    url = f"/api/tasks/{name}/training/{action}"
    return f"{url}?robot={robot}" if robot else url


# -- live daphne and training in another process ----------------------------------------------------
@pytest.fixture(scope="session")
def api_daphne(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaphne]:
    """A daphne on the test database with the relay on and no embedded worker.

    Tests need `django_db(transaction=True)` so that it sees their rows. Nothing trains in it:
    training happens in another process (`train_elsewhere`), which is the point.
    """
    env = {"GENHRL_EMBEDDED_WORKER": "0", "GENHRL_RELAY_POLL_MS": "25"}
    with run_daphne(live_database_url(), data_dir=tmp_path_factory.mktemp("api-daphne"), env=env) as server:
        yield server


def train_elsewhere(session_id: int, data_dir: Path, *trainer_args: str) -> subprocess.Popen[bytes]:
    """Supervise a session in a separate Python process with the fake trainer, as `manage.py train` would."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
        "DATABASE_URL": live_database_url(),
        "GENHRL_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    argv = [sys.executable, str(TRAIN_ELSEWHERE), str(session_id), str(FAKE_TRAINER), *trainer_args]
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
