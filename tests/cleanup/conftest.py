"""Fixtures of the clean-up tests: finished and active sessions with real run folders on disk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.api.conftest import one_skill_task
from training import paths
from training.models import LogLine, MetricPoint, SessionStatus, SkillRun, SkillStatus, TrainingSession


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


@pytest.fixture
def make_session(db: None, user: Any) -> Callable[..., TrainingSession]:
    """A session of its own task with one skill run, its run folder (1000 bytes) and the skill's shared files."""
    counter = iter(range(1000))

    def make(status: str = SessionStatus.COMPLETED, *, days_ago: float = 30, lines: int = 0,
             points: int = 0) -> TrainingSession:
        task = one_skill_task(f"task_{next(counter)}")
        skill = task.skills.get()
        finished = timezone.now() - timedelta(days=days_ago)
        session = TrainingSession.objects.create(
            task=task, owner=user, backend="embedded", status=status, created_at=finished,
            finished_at=finished if status in SessionStatus.terminal() else None,
            heartbeat_at=finished,
        )
        run = SkillRun.objects.create(
            session=session, skill=skill, order=0,
            status=SkillStatus.COMPLETED if status in SessionStatus.terminal() else SkillStatus.TRAINING,
            frames=12345, best_reward=9.5, success_states=60, log_excerpt="last words", log_line_count=lines,
        )
        folder = paths.run_dir(skill, run.pk)
        run.run_dir = str(folder)
        run.save(update_fields=["run_dir"])
        write(folder / "nn" / "last.pth", 600)
        write(folder / "trainer.log", 400)
        # The skill's own files, shared by every session of the task: never removed by a clean-up.
        write(paths.policy_dir(skill) / "policy.pth", 10)
        write(paths.success_dir(skill) / "ss-1-abc-n60.pt", 10)
        LogLine.objects.bulk_create(
            LogLine(skill_run=run, seq=i, stream="stdout", text=f"line {i}", time=finished) for i in range(lines)
        )
        MetricPoint.objects.bulk_create(
            MetricPoint(skill_run=run, tag=tag, step=i * 100, value=float(i), time=finished)
            for tag in ("mean_reward", "success_rate") for i in range(points)
        )
        return session

    return make


def run_folder(session: TrainingSession) -> Path:
    return Path(session.skill_runs.get().run_dir)


def shared_files(session: TrainingSession) -> list[Path]:
    skill = session.skill_runs.get().skill
    return [paths.policy_dir(skill) / "policy.pth", paths.success_dir(skill) / "ss-1-abc-n60.pt"]
