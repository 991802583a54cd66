"""The trainer's command line per backend: argv list, environment and working folder. No Django.

The orchestrator/executor calls `build_command` and starts the result with `subprocess.Popen(argv,
env=env, cwd=cwd, start_new_session=True)` (never a shell).

- embedded: `[python, -u, -m, training.trainer, --spec, SPEC]`, cwd = this repository.
- isaaclab 2.x: `[<root>/isaaclab.sh, -p, -m, training.trainer, --spec, SPEC]`. `isaaclab.sh -p`
  runs Isaac Sim's python (or the active conda/uv env's) with the remaining arguments passed
  through unchanged (`${python_exe} "$@"` in 2.x), so `-m` works; PYTHONPATH makes our package
  importable. cwd = the Isaac Lab root, because GenHRL's generated code resolves its start-state
  folders from `Path.cwd()` (genhrl-reference.md §1.7).
- isaaclab 3.0: `[uv, run, --project, <root>, --no-sync, python, -m, training.trainer, --spec, SPEC]`.
  3.0's documented way to run a standalone script is `uv run python <script>` from the checkout;
  `uv run isaaclab train ...` only runs Isaac Lab's own entry points, which cannot host our
  observer. `--project` pins the checkout's environment whatever the cwd, and `--no-sync` keeps
  a training launch from ever modifying the Isaac Lab environment. cwd = the root, as for 2.x.

Env for all: the base environment minus the portal's secrets, PYTHONPATH (this repository first),
PYTHONUNBUFFERED=1; embedded adds OMP_NUM_THREADS=MKL_NUM_THREADS=1.
Env for isaaclab: PYTHONPATH (this repository first), OBJECT_CONFIG_PATH, GENHRL_TASK_NAME,
GENHRL_ROBOT (what GenHRL's own orchestrator exports), ISAACLAB_PATH and GENHRL_ISAACLAB_VERSION
(read by isaaclab.py), CARB_LOG_LEVEL=FATAL (Kit's log spam), PYTHONUNBUFFERED=1 (records must not
sit in a pipe buffer).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "training.trainer"
MANAGER_BASED = ("source", "isaaclab_tasks", "isaaclab_tasks", "manager_based")
ISAACLAB_VERSIONS = ("2", "3")


class LaunchError(ValueError):
    """The backend cannot be launched with what was given (e.g. no Isaac Lab root)."""


# The portal's own secrets never reach a trainer (which runs third-party code: Isaac Lab, GenHRL's
# generated files). Everything else passes: Isaac Sim needs its conda/CUDA/display variables.
_PRIVATE_NAMES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
_PRIVATE_PARTS = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "PRIVATE_KEY", "CREDENTIAL")


def is_private(name: str) -> bool:
    upper = name.upper()
    return upper in _PRIVATE_NAMES or upper.startswith("DJANGO_") or any(p in upper for p in _PRIVATE_PARTS)


def _pythonpath(base_env: Mapping[str, str]) -> str:
    existing = base_env.get("PYTHONPATH", "")
    return str(REPO_ROOT) + (os.pathsep + existing if existing else "")


def object_config_path(isaaclab_root: str | Path, robot: str, task: str) -> Path:
    return Path(isaaclab_root).joinpath(
        *MANAGER_BASED, f"{robot}_generated", "skills", task, "object_config.json"
    )


def build_command(
    spec_path: str | Path,
    backend: str,
    *,
    python: str = sys.executable,
    isaaclab_root: str | Path | None = None,
    isaaclab_version: str = "2",
    base_env: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str], str]:
    """(argv, env, cwd) for one trainer run.

    `base_env` defaults to this process's environment; either way variables that look like the
    portal's secrets (`is_private`) are left out.
    """
    spec = str(Path(spec_path).resolve())
    source = os.environ if base_env is None else base_env
    env = {name: value for name, value in source.items() if not is_private(name)}
    env["PYTHONPATH"] = _pythonpath(env)
    env["PYTHONUNBUFFERED"] = "1"
    if backend == "embedded":
        # One OpenMP/MKL thread per trainer, like torch_threads: 1 (isaaclab-and-rlgames.md §2.4).
        env["OMP_NUM_THREADS"] = "1"
        env["MKL_NUM_THREADS"] = "1"
        return [python, "-u", "-m", MODULE, "--spec", spec], env, str(REPO_ROOT)
    if backend != "isaaclab":
        raise LaunchError(f"unknown backend {backend!r}")
    if isaaclab_root is None:
        raise LaunchError("the isaaclab backend needs the Isaac Lab root (GENHRL_ISAACLAB_ROOT)")
    version = str(isaaclab_version).split(".")[0]
    if version not in ISAACLAB_VERSIONS:
        raise LaunchError(f"unsupported Isaac Lab version {isaaclab_version!r} (2 or 3)")
    root = Path(isaaclab_root).resolve()
    data = json.loads(Path(spec).read_text(encoding="utf-8"))
    task, robot = str(data["task"]), str(data["robot"])
    env.update(
        {
            "OBJECT_CONFIG_PATH": str(object_config_path(root, robot, task)),
            "GENHRL_TASK_NAME": task,
            "GENHRL_ROBOT": robot,
            "ISAACLAB_PATH": str(root),
            "GENHRL_ISAACLAB_VERSION": version,
            "CARB_LOG_LEVEL": "FATAL",
        }
    )
    if version == "2":
        argv = [str(root / "isaaclab.sh"), "-p", "-m", MODULE, "--spec", spec]
    else:
        argv = ["uv", "run", "--project", str(root), "--no-sync", "python", "-m", MODULE, "--spec", spec]
    return argv, env, str(root)


# Isaac Lab's own rl-games play script (2.x and 3.0 keep it at this path in the checkout).
PLAY_SCRIPT = ("scripts", "reinforcement_learning", "rl_games", "play.py")


def play_command(
    isaaclab_root: str | Path,
    gym_id: str,
    checkpoint: str | Path,
    *,
    episodes_envs: int,
    video: bool = False,
    video_length: int = 400,
    isaaclab_version: str = "2",
) -> list[str]:
    """The exact `play` line that evaluates a policy on Isaac Lab (issue 13's Evaluate on a GPU host).

    Isaac Lab's play.py runs the checkpoint with `--num_envs` envs headless and records a clip with
    `--video`; it reports no success rate of its own, so the portal records the run, not a rate.
    """
    version = str(isaaclab_version).split(".")[0]
    if version not in ISAACLAB_VERSIONS:
        raise LaunchError(f"unsupported Isaac Lab version {isaaclab_version!r} (2 or 3)")
    root = Path(isaaclab_root).resolve()
    script = str(root.joinpath(*PLAY_SCRIPT))
    args = ["--task", gym_id, "--checkpoint", str(Path(checkpoint).resolve()), "--num_envs", str(int(episodes_envs)),
            "--headless"]
    if video:
        args += ["--video", "--video_length", str(int(video_length))]
    if version == "2":
        return [str(root / "isaaclab.sh"), "-p", script, *args]
    return ["uv", "run", "--project", str(root), "--no-sync", "python", script, *args]
