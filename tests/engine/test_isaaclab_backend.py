"""The isaaclab backend needs GENHRL_ISAACLAB_ROOT; without it nothing is started."""

from __future__ import annotations

import pytest

from tests.factories import orchestrate
from training import services
from training.config import ConfigError
from training.engine.orchestrator import Orchestrator
from training.models import SessionStatus, TrainingSession

pytestmark = pytest.mark.django_db


def test_start_without_root_is_refused(fetch_block, settings):
    settings.GENHRL_ISAACLAB_ROOT = None

    with pytest.raises(ConfigError) as exc:
        services.start_session(fetch_block, {"backend": "isaaclab"}, actor="test")

    assert "GENHRL_ISAACLAB_ROOT" in exc.value.errors["backend"][0]
    assert not TrainingSession.objects.exists()


def test_root_removed_before_the_worker_runs_it_fails_at_planning(fetch_block, settings, tmp_path):
    settings.GENHRL_ISAACLAB_ROOT = tmp_path
    session = services.start_session(fetch_block, {"backend": "isaaclab"}, actor="test")
    settings.GENHRL_ISAACLAB_ROOT = None

    session = orchestrate(session).run()

    assert session.status == SessionStatus.FAILED
    assert "GENHRL_ISAACLAB_ROOT" in session.error
    assert not session.skill_runs.exists()


@pytest.mark.training
def test_isaaclab_sessions_launch_through_isaaclab_sh(fetch_block, settings, tmp_path, monkeypatch):
    """The real launch line (training/trainer/launch.py) with a stand-in isaaclab.sh."""
    import json
    import sys
    from pathlib import Path

    from tests.factories import FAKE_TRAINER

    root = tmp_path / "IsaacLab"
    root.mkdir()
    script = root / "isaaclab.sh"
    # `isaaclab.sh -p -m training.trainer --spec X`: drop `-p -m training.trainer`, run the fake.
    script.write_text(f'#!/bin/sh\nshift 3\nexec {sys.executable} {FAKE_TRAINER} "$@"\n')
    script.chmod(0o755)
    settings.GENHRL_ISAACLAB_ROOT = root
    settings.GENHRL_ISAACLAB_VERSION = "2"
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/x")
    session = services.start_session(
        fetch_block, {"backend": "isaaclab", "num_envs": 1024, "min_success_states": 10,
                      "min_steps_primitive": 0, "min_steps_composite": 0}, actor="test",
    )

    session = Orchestrator(session, actor="test").run()

    assert session.status == SessionStatus.COMPLETED, session.error
    run = session.skill_runs.get(order=0)
    launch = json.loads((Path(run.run_dir) / "launch.json").read_text())
    assert launch["cwd"] == str(root.resolve())
    env = launch["env"]
    assert env["GENHRL_TASK_NAME"] == "fetch_block" and env["GENHRL_ROBOT"] == "PointMass"
    assert env["ISAACLAB_PATH"] == str(root.resolve())
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env
    spec = json.loads((Path(run.run_dir) / "spec.json").read_text())
    assert spec["backend"] == "isaaclab" and spec["num_envs"] == 1024
    assert spec["isaaclab"] == {"root": str(root), "version": "2"}
