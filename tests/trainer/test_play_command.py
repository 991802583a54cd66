"""Evaluate on a GPU host is Isaac Lab's own play script: its exact command line (nothing runs here),
and the trainer spec's `flat` and `evaluate` checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.trainer.evaluate import evaluation_settings
from training.trainer.launch import LaunchError, play_command
from training.trainer.spec import SpecError, TrainerSpec


def test_play_command_line(tmp_path: Path) -> None:
    root = tmp_path / "IsaacLab"
    checkpoint = tmp_path / "policy" / "policy.pth"
    script = str(root.resolve() / "scripts" / "reinforcement_learning" / "rl_games" / "play.py")
    gym = "Isaac-RobotFlatFetchBlockGoToBlock-v0"
    assert play_command(root, gym, checkpoint, episodes_envs=32) == [
        str(root.resolve() / "isaaclab.sh"), "-p", script, "--task", gym, "--checkpoint", str(checkpoint.resolve()),
        "--num_envs", "32", "--headless",
    ]
    assert play_command(root, gym, checkpoint, episodes_envs=8, video=True, video_length=300, isaaclab_version="3.0") == [
        "uv", "run", "--project", str(root.resolve()), "--no-sync", "python", script, "--task", gym,
        "--checkpoint", str(checkpoint.resolve()), "--num_envs", "8", "--headless", "--video", "--video_length", "300",
    ]
    with pytest.raises(LaunchError):
        play_command(root, gym, checkpoint, episodes_envs=1, isaaclab_version="1")


def _spec(**changes: object) -> dict[str, object]:
    return {"backend": "embedded", "task": "t", "robot": "r", "skill": "s", "run_dir": "/tmp/x",
            "success_dir": "/tmp/y", "num_envs": 4, **changes}


def test_flat_and_evaluate_fields_are_checked() -> None:
    with pytest.raises(SpecError, match="flat"):
        TrainerSpec.from_json(_spec(flat=True))  # a primitive has nothing to flatten
    with pytest.raises(SpecError, match="flat"):
        TrainerSpec.from_json(_spec(flat="yes"))
    for bad in ({}, {"episodes": 0, "policy_dir": "/p"}, {"episodes": True, "policy_dir": "/p"}, {"episodes": 5}):
        with pytest.raises(SpecError, match="evaluate"):
            evaluation_settings(TrainerSpec.from_json(_spec(evaluate=bad)))
    assert evaluation_settings(TrainerSpec.from_json(_spec(evaluate={"episodes": 5, "policy_dir": "/p"}))) == (5, Path("/p"))
