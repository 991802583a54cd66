"""Fixtures of the training pages' tests: the demo task, tiny settings, and a live daphne that trains.

The browser tests reuse `tests/web/live.py`: its chromium, and `run_daphne(...)` with the embedded
worker on, so the server they click trains for real (the embedded simulator, tiny settings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tasks.importer import import_demo
from tasks.models import Task
from tests.web.live import LiveDaphne, chromium, live_database_url, run_daphne, use_file_sqlite_test_db
from training import services
from training.models import SessionStatus, TrainingSession

__all__ = ["chromium"]  # a fixture, re-exported for this folder's tests

# Options that make the real embedded trainer finish a skill of the demo task in seconds.
TINY: dict[str, Any] = {
    "num_envs": 64,
    "min_success_states": 5,
    "min_steps_primitive": 2048,
    "min_steps_composite": 1024,
    "max_time": 2,
    "seed": 1,
}


def pytest_configure(config: pytest.Config) -> None:
    # Before any database is created: the live daphne must open the same SQLite file.
    use_file_sqlite_test_db(config)


def grant_start(user: Any) -> Any:
    """Give `user` the permission to start training (what the Researchers group grants).

    The permission rather than the group: transactional tests flush the data migration's group.
    """
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(content_type__app_label="training", codename="start_training"))
    return user


@pytest.fixture
def user(django_user_model: Any, password: str) -> Any:
    """A researcher who may start training (tests/conftest.py's `user`, with the permission)."""
    return grant_start(django_user_model.objects.create_user("researcher", "researcher@example.org", password))


@pytest.fixture
def demo(db: None) -> dict[str, Task]:
    report = import_demo()
    assert report.ok, report.lines()
    return {task.name: task for task in Task.objects.filter(robot="PointMass")}


@pytest.fixture
def fetch_block(demo: dict[str, Task]) -> Task:
    return demo["fetch_block"]


@pytest.fixture
def queue(user: Any):
    """Queue a session as `user` would from the dialog (nothing trains it in view tests)."""

    def make(task: Task, **options: Any) -> TrainingSession:
        return services.start_session(task, {**TINY, **options}, owner=user)

    return make


def run_session(task: Task, owner: Any, **options: Any) -> TrainingSession:
    """A session as a worker leaves it a little way in: planned, first skill training with some
    metrics and output, the others pending (no trainer runs: the rows are written directly)."""
    from datetime import timedelta

    from django.utils import timezone

    from training.models import LogLine, MetricPoint, SkillRun, SkillStatus, Stage

    session = services.start_session(task, {**TINY, **options}, owner=owner)
    session.transition_to(SessionStatus.RUNNING, actor="worker:test", worker_id="test", heartbeat_at=timezone.now())
    session.set_stage(Stage.PLANNING, actor="worker:test")
    session.set_stage(Stage.TRAINING, actor="worker:test")
    skills = list(task.skills.filter(defined=True).order_by("order"))
    runs = [
        SkillRun.objects.create(session=session, skill=skill, order=i, min_success_states=session.config["min_success_states"])
        for i, skill in enumerate(skills)
    ]
    first = runs[0]
    first.transition_to(SkillStatus.TRAINING, actor="worker:test", started_at=timezone.now() - timedelta(seconds=42))
    SkillRun.objects.filter(pk=first.pk).update(success_states=3, frames=4096, epochs=4, last_reward=1.5, best_reward=1.5)
    TrainingSession.objects.filter(pk=session.pk).update(current_skill=first.skill)
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        MetricPoint(skill_run=first, tag=tag, step=1024 * (i + 1), value=float(i), time=now)
        for i in range(4) for tag in ("mean_reward", "success_states")
    )
    LogLine.objects.bulk_create([
        LogLine(skill_run=first, seq=1, stream=LogLine.Stream.STDOUT, text="epoch: 1 frames: 1024", time=now),
        LogLine(skill_run=first, seq=2, stream=LogLine.Stream.STDERR, text="Traceback (most recent call last):", time=now),
        LogLine(skill_run=first, seq=3, stream=LogLine.Stream.STDERR, text="RuntimeError: boom", time=now),
        LogLine(skill_run=first, seq=4, stream=LogLine.Stream.SYSTEM, text="supervisor: stopping", time=now),
    ])
    session.refresh_from_db()
    return session


@pytest.fixture
def training_daphne(django_db_setup: None, tmp_path) -> Iterator[LiveDaphne]:
    """A daphne of its own (fresh data folder) whose embedded worker trains what the pages queue."""
    env = {"GENHRL_EMBEDDED_WORKER": "1", "GENHRL_WORKER_SLOTS": "1", "GENHRL_RELAY_POLL_MS": "40"}
    with run_daphne(live_database_url(), data_dir=tmp_path / "daphne", env=env) as server:
        yield server
