"""The `isaaclab` backend: the same trainer, run under Isaac Lab's python (see launch.py).

It does what Isaac Lab's own `scripts/reinforcement_learning/rl_games/train.py` does (2.x; 3.0
uses `launch_simulation` instead of `AppLauncher`): build the env of the skill's GenHRL gym id,
wrap it in `RlGamesVecEnvWrapper`, register it as `vecenv "IsaacRlgWrapper"` /
`env_configurations "rlgpu"`, and run an rl-games `Runner`. The differences are ours: the
progress observer (JSON records, stopping, final checkpoint), the run folder from the spec, and
success states.

Success states are the ones GenHRL's generated success terms save: lists of per-env scene-state
dicts in `<skill>/success_states/success_states_<skill>_<stamp>.pt`. GenHRL keeps up to 999 of
them in memory and names files by the second (genhrl-reference.md §1.6); because the generated
code runs in this very process, we swap its `save_states_to_disk` for one that writes unique names
atomically, flush its buffers at every epoch end and on every exit path, and mirror the files
into the spec's `success_dir` so the portal counts states the same way for both backends.

Nothing here can run without Isaac Lab; every Isaac Lab import is inside a function, and the
pure parts (gym id, paths, GenHRL buffers, start-state staging) are unit-tested.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from . import records
from .signals import Shutdown, Terminated
from .spec import TrainerSpec
from .success import StateCounter, state_files

MANAGER_BASED = ("source", "isaaclab_tasks", "isaaclab_tasks", "manager_based")
GENHRL_MAX_START_FILES = 100  # GenHRL's own transfer copies at most 100 files (§1.7)


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def gym_id(task: str, skill: str, is_primitive: bool) -> str:
    """The id GenHRL registers and its orchestrator launches (genhrl-reference.md §1.4)."""
    kind = "Flat" if is_primitive else "Composite"
    return f"Isaac-Robot{kind}{camel(task)}{camel(skill)}-v0"


def task_dir(root: str | Path, robot: str, task: str) -> Path:
    """`<IsaacLab>/source/isaaclab_tasks/isaaclab_tasks/manager_based/<Robot>_generated/skills/<task>`."""
    return Path(root).joinpath(*MANAGER_BASED, f"{robot}_generated", "skills", task)


def skill_dir(spec: TrainerSpec) -> Path:
    given = spec.isaaclab.get("skill_dir")
    if given:
        return Path(given)
    root = spec.isaaclab.get("root") or os.environ.get("ISAACLAB_PATH") or os.getcwd()
    return task_dir(root, spec.robot, spec.task) / "skills" / spec.skill


# --- success states written by GenHRL's generated code -----------------------------------------


def _genhrl_file_name(skill: str, count: int) -> str:
    # GenHRL's loaders glob `success_states_<skill>_*.pt`; the uuid part keeps names unique, and
    # the count lets the portal count states without loading the file (success.GENHRL_COUNTED_FILE).
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")  # noqa: UP017 (python 3.10)
    return f"success_states_{skill}_{stamp}_{uuid.uuid4().hex[:8]}_n{count}.pt"


class GenhrlSuccessBuffers:
    """The in-memory success-state lists of the generated success modules loaded in this process."""

    def __init__(self, critical: Any = None) -> None:
        self.modules: list[ModuleType] = []
        self._critical = critical

    def discover(self) -> int:
        """Find (and patch) every loaded module with GenHRL's `success_states_dict` buffer."""
        for module in list(sys.modules.values()):
            if module is None or module in self.modules:
                continue
            buffers = getattr(module, "success_states_dict", None)
            if isinstance(buffers, dict) and callable(getattr(module, "save_states_to_disk", None)):
                self.modules.append(module)
                module.save_states_to_disk = self._saver(module)  # type: ignore[attr-defined]
        return len(self.modules)

    @staticmethod
    def directory(module: ModuleType) -> Path:
        return Path(module.__file__ or ".").parent / "success_states"

    def pending(self) -> int:
        return sum(len(v) for m in self.modules for v in m.success_states_dict.values())  # type: ignore[attr-defined]

    def _saver(self, module: ModuleType) -> Any:
        def save_states_to_disk(skill_name: str) -> None:
            self._write(module, skill_name)

        return save_states_to_disk

    def _write(self, module: ModuleType, skill_name: str) -> Path | None:
        import torch

        buffers: dict[str, list[Any]] = module.success_states_dict  # type: ignore[attr-defined]
        states = list(buffers.get(skill_name) or [])
        if not states:
            return None
        directory = self.directory(module)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / _genhrl_file_name(skill_name, len(states))
        tmp = directory / f".{final.name}.tmp"
        torch.save(states, tmp)
        os.replace(tmp, final)
        # GenHRL re-binds the list after its own save; emptying in place is the same to it.
        del buffers[skill_name][: len(states)]
        return final

    def flush(self) -> list[Path]:
        written = []
        for module in self.modules:
            for skill_name in list(module.success_states_dict):  # type: ignore[attr-defined]
                path = self._write(module, skill_name)
                if path is not None:
                    written.append(path)
        return written


class IsaacLabProgress:
    """Success counting for the observer: GenHRL's files mirrored into the spec's success_dir."""

    def __init__(
        self, spec: TrainerSpec, source: Path, buffers: GenhrlSuccessBuffers, flush_seconds: float = 5.0
    ):
        self.spec = spec
        self.source = source
        self.target = spec.success_dir
        self.target.mkdir(parents=True, exist_ok=True)
        self.buffers = buffers
        self.counter = StateCounter()
        self.flush_seconds = flush_seconds
        self._last_flush = time.monotonic()
        self._last_count = self.counter.count(self.target)
        self.episodes = 0

    def count_episodes(self, done_indices: Any) -> None:
        self.episodes += int(len(done_indices))

    def mirror(self) -> None:
        for path in state_files(self.source):
            dest = self.target / path.name
            if not dest.exists():
                tmp = self.target / f".{path.name}.tmp"
                shutil.copyfile(path, tmp)
                os.replace(tmp, dest)

    def success_states(self) -> int:
        return self.counter.count(self.target) + self.buffers.pending()

    def epoch_outcomes(self) -> tuple[int, int]:
        # One saved state per success (GenHRL saves each succeeding env once per success).
        total = self.success_states()
        successes, self._last_count = max(0, total - self._last_count), total
        episodes, self.episodes = self.episodes, 0
        return max(episodes, successes), successes

    def flush(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_flush >= self.flush_seconds:
            self.buffers.flush()
            self.mirror()
            self._last_flush = now


def stage_start_states(source: Path | None, skill_folder: Path) -> int:
    """Copy the previous skill's state files where GenHRL's reset event loads them from.

    GenHRL reads `<skill>/current_task_start_states/*.pt` (lists of scene states) at env creation
    (genhrl-reference.md §1.7). The folder is cleared first, so stale files never mix in, and at
    most the newest 100 files are copied, as GenHRL's own transfer does. Returns the states staged.
    """
    dest = skill_folder / "current_task_start_states"
    if dest.exists():
        shutil.rmtree(dest)
    if source is None:
        return 0
    files = sorted(state_files(source), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    files = files[:GENHRL_MAX_START_FILES]
    if not files:
        return 0
    dest.mkdir(parents=True)
    counter = StateCounter()
    total = 0
    for index, path in enumerate(files):
        shutil.copyfile(path, dest / f"start_state_{index:06d}.pt")
        total += counter.count_file(path)
    return total


# --- the run ------------------------------------------------------------------------------------


def _agent_cfg(spec: TrainerSpec, task: str, device: str, discrete: bool) -> dict[str, Any]:
    from .runner import agent_config, session_ppo

    cfg: dict[str, Any] | None = None
    try:
        from isaaclab_tasks.utils.parse_cfg import load_cfg_from_registry

        loaded = load_cfg_from_registry(task, "rl_games_cfg_entry_point")
        cfg = loaded if isinstance(loaded, dict) and "params" in loaded else None
    except Exception:
        cfg = None  # GenHRL registers skrl configs only; fall back to ours
    if cfg is None:
        overrides = session_ppo(spec.isaaclab.get("ppo"), spec.ppo)
        overrides.setdefault("activation", "elu")  # GPU: Isaac Lab's default
        cfg = agent_config(spec, discrete=discrete, env_name="rlgpu", overrides=overrides, device=device)
        cfg["params"]["config"]["torch_compile"] = bool(spec.isaaclab.get("torch_compile", False))
    config = cfg["params"]["config"]
    config.update(spec.ppo)  # the session's PPO options win over a registered agent config too
    config.update(
        {
            "name": spec.skill,
            "env_name": "rlgpu",  # "environment name must be 'rlgpu'" (Isaac Lab train.py)
            "device": device,
            "device_name": device,
            "train_dir": str(spec.run_dir.parent),
            "full_experiment_name": spec.run_dir.name,
            "max_epochs": -1,
            "max_frames": -1,
            "num_actors": spec.num_envs,
        }
    )
    cfg["params"]["seed"] = spec.seed
    cfg["params"]["load_checkpoint"] = False
    return cfg


def _launch(spec: TrainerSpec, version: str, task: str) -> tuple[Any, Any]:
    """Start the simulator; returns (env_cfg, closer). 2.x: AppLauncher; 3.0: launch_simulation."""
    device = spec.isaaclab.get("sim_device", "cuda:0")
    if version.startswith("2"):
        from isaaclab.app import AppLauncher

        app_launcher = AppLauncher(headless=True, enable_cameras=spec.video, device=device)
        from isaaclab_tasks.utils import parse_env_cfg

        env_cfg = parse_env_cfg(task, device=device, num_envs=spec.num_envs)
        return env_cfg, app_launcher.app.close
    import argparse
    import contextlib

    from isaaclab.app import add_launcher_args, launch_simulation
    from isaaclab_tasks.utils import parse_env_cfg

    parser = argparse.ArgumentParser()
    add_launcher_args(parser)
    launcher_args = parser.parse_args(["--device", device] + (["--enable_cameras"] if spec.video else []))
    env_cfg = parse_env_cfg(task, device=device, num_envs=spec.num_envs)
    stack = contextlib.ExitStack()
    stack.enter_context(launch_simulation(env_cfg, launcher_args))
    return env_cfg, stack.close


def run_isaaclab(spec: TrainerSpec, shutdown: Shutdown) -> int:
    version = str(spec.isaaclab.get("version") or os.environ.get("GENHRL_ISAACLAB_VERSION") or "2")
    task = gym_id(spec.task, spec.skill, spec.is_primitive)
    folder = skill_dir(spec)
    buffers = GenhrlSuccessBuffers()
    progress: IsaacLabProgress | None = None
    close: Any = None
    try:
        start = stage_start_states(spec.start_states_dir, folder)
        env_cfg, close = _launch(spec, version, task)

        import gymnasium as gym
        import isaaclab_tasks  # noqa: F401  (registers the gym ids, GenHRL's included)
        from isaaclab_rl.rl_games import RlGamesGpuEnv, RlGamesVecEnvWrapper
        from rl_games.common import env_configurations, vecenv
        from rl_games.common.algo_observer import IsaacAlgoObserver
        from rl_games.torch_runner import Runner

        from .runner import ProgressObserver, publish_policy, write_params

        env_cfg.seed = spec.seed
        rl_device = spec.isaaclab.get("rl_device", "cuda:0")
        env = gym.make(task, cfg=env_cfg, render_mode="rgb_array" if spec.video else None)
        if spec.video:
            env = gym.wrappers.RecordVideo(
                env,
                video_folder=str(spec.run_dir / "videos" / "train"),
                step_trigger=lambda step: step % spec.video_interval == 0,
                video_length=spec.video_length,
                disable_logger=True,
            )
        buffers.discover()  # the generated success modules are imported by gym.make
        progress = IsaacLabProgress(spec, folder / "success_states", buffers)
        records.emit(
            "start",
            skill=spec.skill,
            backend=spec.backend,
            num_envs=spec.num_envs,
            pid=os.getpid(),
            start_states=start,
            success_states=progress.success_states(),
            gym_id=task,
        )
        agent_cfg = _agent_cfg(spec, task, rl_device, discrete=not spec.is_primitive)
        clip_obs = agent_cfg["params"].get("env", {}).get("clip_observations", float("inf"))
        clip_actions = agent_cfg["params"].get("env", {}).get("clip_actions", float("inf"))
        wrapped: Any = RlGamesVecEnvWrapper(env, rl_device, clip_obs, clip_actions)
        if not spec.is_primitive:
            from .options import OptionsVecEnv

            wrapped = OptionsVecEnv.from_spec(wrapped, spec, rl_device)
        vecenv.register(
            "IsaacRlgWrapper",
            lambda config_name, num_actors, **kwargs: RlGamesGpuEnv(config_name, num_actors, **kwargs),
        )
        env_configurations.register(
            "rlgpu", {"vecenv_type": "IsaacRlgWrapper", "env_creator": lambda **kwargs: wrapped}
        )
        agent_cfg["params"]["config"]["num_actors"] = env.unwrapped.num_envs
        write_params(spec, agent_cfg)

        inner = IsaacAlgoObserver()
        observer = ProgressObserver(
            spec,
            progress,
            shutdown,
            min_success_rate=float(spec.isaaclab.get("min_success_rate", 0.0)),
            inner=inner,
        )
        original_process_infos = observer.process_infos

        def process_infos(infos: Any, done_indices: Any) -> None:
            progress.count_episodes(done_indices)
            original_process_infos(infos, done_indices)

        observer.process_infos = process_infos  # type: ignore[method-assign]
        runner = Runner(observer)
        runner.load(agent_cfg)
        runner.reset()
        runner.run({"train": True, "play": False, "sigma": None})

        observer.report_pending()
        # No reason of ours: rl-games stopped by itself (a max_epochs/max_frames `ppo` override).
        reason = observer.reason or "max_frames"
        progress.flush(force=True)
        checkpoint = observer.final_checkpoint
        policy_dir = None
        if checkpoint is not None:
            info = {
                "name": spec.skill,
                "task": spec.task,
                "robot": spec.robot,
                "backend": spec.backend,
                "gym_id": task,
                "is_primitive": spec.is_primitive,
                "level": spec.level,
                "obs_dim": int(wrapped.observation_space.shape[0]),
                "action": (
                    {"type": "continuous", "dim": int(wrapped.action_space.shape[0])}
                    if spec.is_primitive
                    else {"type": "discrete", "n": int(wrapped.action_space.n)}
                ),
                "skill_spec": spec.skill_spec,
                "sub_skills": [child.name for child in spec.sub_skills],
                "reason": reason,
                "trained_at": time.time(),
            }
            policy_dir = publish_policy(spec, checkpoint, agent_cfg, info)
        # `done` before closing the app: Isaac Sim may hang in close() (§1.9), and the orchestrator
        # treats `done` as the end of the run.
        records.emit_done(
            reason,
            frames=observer.last_snapshot.frames if observer.last_snapshot else 0,
            success_states=progress.success_states(),
            checkpoint=checkpoint,
            policy_dir=policy_dir,
        )
        env.close()
        return 0
    except Terminated as exc:
        shutdown.finalizing()
        count = None
        if progress is not None:
            progress.flush(force=True)
            count = progress.success_states()
        records.terminated(exc.signal_name, count)
        return exc.exit_code
    except Exception as exc:
        shutdown.finalizing()
        traceback.print_exc(file=sys.stderr)
        if progress is not None:
            try:
                progress.flush(force=True)
            except Exception:
                traceback.print_exc(file=sys.stderr)
        records.emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        if close is not None:
            try:
                close()
            except Exception:
                traceback.print_exc(file=sys.stderr)
