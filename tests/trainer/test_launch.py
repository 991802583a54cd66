"""launch.build_command: the exact argv, env and cwd per backend (and Isaac Lab version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.trainer.launch import REPO_ROOT, LaunchError, build_command

BASE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/r", "PYTHONPATH": "/opt/extra"}


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "runs" / "7" / "spec.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"task": "doorway_and_goal_seed42", "robot": "G1", "skill": "walk_to_Small_Block"})
    )
    return path


def test_embedded_runs_our_module_with_the_given_python(spec_path: Path) -> None:
    argv, env, cwd = build_command(spec_path, "embedded", python="/venv/bin/python", base_env=BASE_ENV)
    assert argv == ["/venv/bin/python", "-u", "-m", "training.trainer", "--spec", str(spec_path)]
    assert cwd == str(REPO_ROOT)
    assert env == {
        **BASE_ENV,
        "PYTHONPATH": f"{REPO_ROOT}:/opt/extra",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def test_isaaclab_2_runs_our_module_through_isaaclab_sh(spec_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "IsaacLab"
    argv, env, cwd = build_command(
        spec_path, "isaaclab", isaaclab_root=root, isaaclab_version="2", base_env=BASE_ENV
    )
    assert argv == [f"{root}/isaaclab.sh", "-p", "-m", "training.trainer", "--spec", str(spec_path)]
    assert cwd == str(root)  # GenHRL resolves its start-state folders from the cwd
    assert env == {
        **BASE_ENV,
        "PYTHONPATH": f"{REPO_ROOT}:/opt/extra",
        "PYTHONUNBUFFERED": "1",
        "OBJECT_CONFIG_PATH": f"{root}/source/isaaclab_tasks/isaaclab_tasks/manager_based/G1_generated/skills/"
        "doorway_and_goal_seed42/object_config.json",
        "GENHRL_TASK_NAME": "doorway_and_goal_seed42",
        "GENHRL_ROBOT": "G1",
        "ISAACLAB_PATH": str(root),
        "GENHRL_ISAACLAB_VERSION": "2",
        "CARB_LOG_LEVEL": "FATAL",
    }


def test_isaaclab_3_runs_our_module_with_uv_in_the_checkout(spec_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "IsaacLab"
    argv, env, cwd = build_command(
        spec_path, "isaaclab", isaaclab_root=root, isaaclab_version="3.0", base_env={"PATH": "/usr/bin"}
    )
    assert argv == [
        "uv",
        "run",
        "--project",
        str(root),
        "--no-sync",
        "python",
        "-m",
        "training.trainer",
        "--spec",
        str(spec_path),
    ]
    assert cwd == str(root)
    assert env == {
        "PATH": "/usr/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "OBJECT_CONFIG_PATH": f"{root}/source/isaaclab_tasks/isaaclab_tasks/manager_based/G1_generated/skills/"
        "doorway_and_goal_seed42/object_config.json",
        "GENHRL_TASK_NAME": "doorway_and_goal_seed42",
        "GENHRL_ROBOT": "G1",
        "ISAACLAB_PATH": str(root),
        "GENHRL_ISAACLAB_VERSION": "3",
        "CARB_LOG_LEVEL": "FATAL",
    }


def test_relative_spec_paths_become_absolute(spec_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(spec_path.parent)
    argv, _, _ = build_command("spec.json", "embedded", python="py", base_env={})
    assert argv[-1] == str(spec_path)


def test_base_env_defaults_to_this_process_and_is_not_modified(
    spec_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENHRL_TEST_MARK", "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    base = {"A": "b"}
    _, env, _ = build_command(spec_path, "embedded", base_env=base)
    assert base == {"A": "b"}
    _, env, _ = build_command(spec_path, "embedded")
    assert env["GENHRL_TEST_MARK"] == "1" and env["PYTHONPATH"] == str(REPO_ROOT)


@pytest.mark.parametrize("backend", ["embedded", "isaaclab"])
def test_the_portals_secrets_stay_behind(spec_path: Path, backend: str) -> None:
    base = {
        **BASE_ENV,
        "SECRET_KEY": "s",
        "DATABASE_URL": "postgresql://u:p@h/db",
        "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
        "GENHRL_API_TOKEN": "t",
        "AWS_SECRET_ACCESS_KEY": "k",
        "CUDA_VISIBLE_DEVICES": "0",
    }
    _, env, _ = build_command(spec_path, backend, isaaclab_root="/lab", base_env=base)
    assert not {
        "SECRET_KEY",
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
        "GENHRL_API_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
    } & set(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env["HOME"] == "/home/r"


@pytest.mark.parametrize(
    ("backend", "kwargs", "message"),
    [
        ("isaaclab", {}, "Isaac Lab root"),
        ("isaaclab", {"isaaclab_root": "/x", "isaaclab_version": "1"}, "unsupported Isaac Lab version"),
        ("ray", {}, "unknown backend"),
    ],
)
def test_launch_errors(spec_path: Path, backend: str, kwargs: dict, message: str) -> None:
    with pytest.raises(LaunchError, match=message):
        build_command(spec_path, backend, base_env={}, **kwargs)
