"""The `embedded` backend: rl-games PPO on the batched 2-D world, CPU only."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import records
from .signals import Shutdown, Terminated
from .spec import SubSkill, TrainerSpec

ENV_NAME = "genhrl_embedded"
# Success states are written at the end of an epoch once this many seconds have passed since the
# last file, and always on exit: short runs still get files promptly, hour-long runs do not
# produce tens of thousands of tiny ones.
FLUSH_SECONDS = 5.0


class EmbeddedProgress:
    def __init__(self, env: Any, store: Any) -> None:
        self.env = env
        self.store = store
        self._last_flush = time.monotonic()

    def epoch_outcomes(self) -> tuple[int, int]:
        return self.env.stats.take()

    def success_states(self) -> int:
        return int(self.store.total)

    def flush(self, force: bool) -> None:
        now = time.monotonic()
        if self.store.buffered and (force or now - self._last_flush >= FLUSH_SECONDS):
            self.store.flush()
            self._last_flush = now


def build_tree(spec: TrainerSpec, objects: Any) -> tuple[Any, dict[str, Path | None]]:
    """The skill being trained as a SkillNode tree, and each sub-skill's policy folder by path."""
    from .skills import build_node

    policy_dirs: dict[str, Path | None] = {}

    def sub(skill: SubSkill, path: str) -> Any:
        where = f"{path}/{skill.name}" if path else skill.name
        policy_dirs[where] = skill.policy_dir
        children = [sub(child, where) for child in skill.sub_skills]
        return build_node(skill.name, skill.is_primitive, skill.skill_spec, children, objects)

    children = [sub(child, "") for child in spec.sub_skills]
    root = build_node(spec.skill, spec.is_primitive, spec.skill_spec, children, objects)
    return root, policy_dirs


def skill_info(spec: TrainerSpec, node: Any, observer: Any, reason: str) -> dict[str, Any]:
    snapshot = observer.last_snapshot
    return {
        "name": spec.skill,
        "task": spec.task,
        "robot": spec.robot,
        "backend": spec.backend,
        "is_primitive": node.is_primitive,
        "level": spec.level,
        "obs_dim": node.obs_dim,
        "action": (
            {"type": "continuous", "dim": 2}
            if node.is_primitive
            else {"type": "discrete", "n": len(node.children)}
        ),
        "skill_spec": node.spec,
        "sub_skills": [child.name for child in node.children],
        "reason": reason,
        "epochs": snapshot.epoch if snapshot else 0,
        "frames": snapshot.frames if snapshot else 0,
        "success_rate": snapshot.success_rate if snapshot else None,
        "trained_at": time.time(),
    }


def run_embedded(spec: TrainerSpec, shutdown: Shutdown) -> int:
    store: Any = None
    recorder: Any = None
    try:
        import torch

        # One intra-op thread per trainer: one job per core beats two contending (§2.4).
        torch.set_num_threads(1)
        from rl_games.torch_runner import Runner

        from .envs import CompositeEnv, FlatEnv, PrimitiveEnv, register_env
        from .frozen import build_controller
        from .runner import ProgressObserver, agent_config, publish_policy, session_ppo, write_params
        from .success import SuccessStore, load_start_states
        from .video import Renderer, VideoRecorder
        from .world import ObjectSet, PointMassWorld

        objects = ObjectSet.from_config(spec.object_config)
        node, policy_dirs = build_tree(spec, objects)
        store = SuccessStore(spec.success_dir, critical=shutdown.critical)
        world = PointMassWorld(spec.num_envs, objects, seed=spec.seed)
        start = load_start_states(spec.start_states_dir) if spec.start_states_dir else None
        world.set_start_states(start, node.start_state_prob)
        if spec.video:
            comments = {
                shape: [str(c) for c in spec.object_config.get(f"_{shape[:-1]}_comments") or []]
                for shape in ("spheres", "cubes", "cylinders")
            }
            renderer = Renderer(objects, world.params.arena, comments)
            recorder = VideoRecorder(
                spec.run_dir / "videos" / "train", renderer, spec.video_interval, spec.video_length
            )
        if spec.flat:
            env: Any = FlatEnv(world, node, store, recorder)
        elif node.is_primitive:
            env = PrimitiveEnv(world, node, store, recorder)
        else:
            controllers = [build_controller(child, policy_dirs, spec.num_envs) for child in node.children]
            env = CompositeEnv(world, node, controllers, store, recorder)

        records.emit(
            "start",
            skill=spec.skill,
            backend=spec.backend,
            num_envs=spec.num_envs,
            pid=os.getpid(),
            start_states=int(start.shape[0]) if start is not None else 0,
            success_states=store.total,
            is_primitive=node.is_primitive,
            # embedded.json's quality gate: the trainer stops itself only once it is met too
            min_success_rate=node.min_success_rate,
        )
        register_env(ENV_NAME, lambda: env)
        # A flat baseline acts like a primitive (continuous actions, the primitives' PPO settings).
        continuous = node.is_primitive or spec.flat
        skill_ppo = None if spec.flat else node.spec.get("ppo")
        cfg = agent_config(spec, discrete=not continuous, env_name=ENV_NAME, overrides=session_ppo(skill_ppo, spec.ppo))
        write_params(spec, cfg)
        observer = ProgressObserver(
            spec, EmbeddedProgress(env, store), shutdown, min_success_rate=node.min_success_rate,
            # A flat episode lasts the root's step limit in world steps; a composite's, its decisions.
            episode_frames=(env.episode_steps if spec.flat else
                            node.reach.episode_steps if node.reach is not None else node.max_decisions),
        )
        runner = Runner(observer)
        runner.load(cfg)
        runner.reset()
        runner.run({"train": True, "play": False})

        observer.report_pending()
        # No reason of ours: rl-games stopped by itself (a max_epochs/max_frames `ppo` override).
        reason = observer.reason or "max_frames"
        if recorder is not None:
            recorder.close()
        store.flush()
        checkpoint = observer.final_checkpoint
        policy_dir = None
        if checkpoint is not None:
            info = skill_info(spec, node, observer, reason)
            if spec.flat:
                info.update(flat=True, obs_dim=env.obs_dim, action={"type": "continuous", "dim": 2})
            policy_dir = publish_policy(spec, checkpoint, cfg, info)
        records.emit_done(
            reason,
            frames=observer.last_snapshot.frames if observer.last_snapshot else 0,
            success_states=store.total,
            checkpoint=checkpoint,
            policy_dir=policy_dir,
        )
        return 0
    except Terminated as exc:
        shutdown.finalizing()
        if store is not None:
            store.flush()
        records.terminated(exc.signal_name, store.total if store is not None else None)
        return exc.exit_code
    except Exception as exc:
        shutdown.finalizing()
        traceback.print_exc(file=sys.stderr)
        flushed = ""
        if store is not None:
            try:
                store.flush()
            except Exception as flush_exc:
                flushed = f" (success states not flushed: {flush_exc})"
        records.emit("error", message=f"{type(exc).__name__}: {exc}{flushed}")
        return 1
