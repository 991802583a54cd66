"""Evaluate mode: run a skill's published policy for N episodes and report how well it does.

`python -m training.trainer --spec EVAL_DIR/spec.json --evaluate`. The spec is a run spec
(docs/ARCHITECTURE.md) whose `run_dir` is the evaluation's folder, plus

    "evaluate": {"episodes": 20, "policy_dir": "/abs/.../skills/5-patrol_north/policy"}

The skill acts in the same env it was trained in (`PrimitiveEnv`, or `CompositeEnv` over its
frozen sub-skills), with the same start states, reward and success, choosing its actions
deterministically (the policy's mean, or its most likely sub-skill). Each of `episodes` parallel
envs plays exactly one episode: its return and whether it succeeded. With `video` one clip of
env 0 is written to `run_dir/videos/eval/`.

The last line is one `evaluation` record (`episodes`, `successes`, `success_rate`, `mean_return`,
`video`), printed only once every episode has ended: a run stopped early prints none, so nobody
mistakes half an evaluation for a result.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

from . import records
from .signals import Shutdown, Terminated
from .spec import SpecError, TrainerSpec

MAX_EPISODES = 10_000


def evaluation_settings(spec: TrainerSpec) -> tuple[int, Path]:
    """The spec's `evaluate` object, checked: (episodes, policy folder)."""
    settings = spec.raw.get("evaluate")
    if not isinstance(settings, dict):
        raise SpecError("spec.evaluate: expected an object with episodes and policy_dir")
    episodes = settings.get("episodes")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or not 1 <= episodes <= MAX_EPISODES:
        raise SpecError(f"spec.evaluate.episodes: expected a whole number from 1 to {MAX_EPISODES}")
    policy_dir = settings.get("policy_dir")
    if not isinstance(policy_dir, str) or not policy_dir:
        raise SpecError("spec.evaluate.policy_dir: expected a path")
    return episodes, Path(policy_dir)


def run_evaluation(spec: TrainerSpec, shutdown: Shutdown) -> int:
    try:
        episodes, policy_dir = evaluation_settings(spec)
    except SpecError as exc:
        records.emit("error", message=str(exc))
        return 2
    if spec.backend != "embedded":
        records.emit("error", message="evaluate mode runs on the embedded backend; Isaac Lab has its own play script")
        return 2
    recorder: Any = None
    try:
        import torch

        torch.set_num_threads(1)
        from .embedded import build_tree
        from .envs import CompositeEnv, PrimitiveEnv
        from .frozen import FrozenNet, build_controller
        from .success import load_start_states
        from .video import Renderer, VideoRecorder
        from .world import ObjectSet, PointMassWorld

        objects = ObjectSet.from_config(spec.object_config)
        node, policy_dirs = build_tree(spec, objects)
        net = FrozenNet(policy_dir)
        if net.obs_dim != node.obs_dim or net.discrete == node.is_primitive:
            raise RuntimeError(f"the policy in {policy_dir} does not fit skill {spec.skill}")
        world = PointMassWorld(episodes, objects, seed=spec.seed)
        start = load_start_states(spec.start_states_dir) if spec.start_states_dir else None
        world.set_start_states(start, node.start_state_prob)
        if spec.video:
            comments = {
                shape: [str(c) for c in spec.object_config.get(f"_{shape[:-1]}_comments") or []]
                for shape in ("spheres", "cubes", "cylinders")
            }
            renderer = Renderer(objects, world.params.arena, comments)
            # One clip from the first step, as long as an episode may last (or video_length).
            recorder = VideoRecorder(spec.run_dir / "videos" / "eval", renderer, 10**12, spec.video_length)
        if node.is_primitive:
            env: Any = PrimitiveEnv(world, node, None, recorder)
        else:
            controllers = [build_controller(child, policy_dirs, episodes) for child in node.children]
            env = CompositeEnv(world, node, controllers, None, recorder)
        records.emit("start", skill=spec.skill, backend=spec.backend, num_envs=episodes, pid=os.getpid(),
                     start_states=int(start.shape[0]) if start is not None else 0, mode="evaluate")
        obs = env.reset()
        returns = torch.zeros(episodes)
        finished = torch.zeros(episodes, dtype=torch.bool)
        succeeded = torch.zeros(episodes, dtype=torch.bool)
        with torch.no_grad():
            while not bool(finished.all()):
                if shutdown.stop_requested:
                    raise Terminated(130, "SIGINT")
                obs, reward, done, info = env.step(net(obs))
                live = ~finished
                returns += torch.where(live, reward, torch.zeros_like(reward))
                ended = live & done.bool()
                succeeded |= ended & ~info["time_outs"].bool()
                finished |= ended
        video = None
        if recorder is not None:
            recorder.close()
            video = str(recorder.written[0]) if recorder.written else None
        successes = int(succeeded.sum())
        records.emit(
            "evaluation", episodes=episodes, successes=successes, success_rate=successes / episodes,
            mean_return=float(returns.mean()), video=video,
        )
        return 0
    except Terminated as exc:
        shutdown.finalizing()
        records.emit("error", message=f"evaluation stopped ({exc.signal_name}) before its episodes ended")
        return exc.exit_code
    except Exception as exc:
        shutdown.finalizing()
        traceback.print_exc(file=sys.stderr)
        records.emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1
