"""rl-games glue shared by both backends: agent config, progress observer, stopping, publishing.

rl-games has no stop flag. Like our experiments (isaaclab-and-rlgames.md §1.9 "Graceful stop"),
the observer's `after_print_stats` sets `algo.max_epochs = epoch`; rl-games checks that right
afterwards, saves `nn/last_<name>_ep_<E>_rew_<R>.pth` and returns from `train()`. So every
ending we choose (target reached, stop request, frame cap) gets a final checkpoint from rl-games
itself.

A progress record for epoch E is printed when epoch E+1 begins (rl-games calls `update_epoch`
right after E's checkpoints are written), so it names the checkpoint saved *at* E; the last
epoch's record is printed when `train()` returns.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from rl_games.common.algo_observer import AlgoObserver

from . import records
from .signals import Shutdown
from .spec import TrainerSpec

# The embedded backend's default number of environments (training.config.NUM_ENVS), which the
# PPO defaults below were tuned at.
DEFAULT_ENVS = 512
# rl-games `config` defaults for CPU training of the embedded world (isaaclab-and-rlgames.md §2).
PRIMITIVE_PPO: dict[str, Any] = {
    "horizon_length": 16,
    "minibatches": 2,  # ours: minibatch_size = horizon * num_envs / minibatches
    "mini_epochs": 5,
    "learning_rate": 1e-3,
    "entropy_coef": 0.0,
    "gamma": 0.99,
}
COMPOSITE_PPO: dict[str, Any] = {
    "horizon_length": 8,
    "minibatches": 2,
    "mini_epochs": 4,
    "learning_rate": 1e-3,
    "entropy_coef": 0.01,
    "gamma": 0.9,
}


def session_ppo(skill_ppo: dict[str, Any] | None, session: dict[str, Any] | None) -> dict[str, Any]:
    """The PPO overrides of one run: the skill's own (embedded.json `ppo`), then the session's
    (its training options: a sweep trial's learning rate beats the skill's)."""
    return {**(skill_ppo or {}), **(session or {})}


def agent_config(
    spec: TrainerSpec,
    *,
    discrete: bool,
    env_name: str,
    overrides: dict[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The rl-games agent config (`{"params": ...}`, as in an Isaac Lab agent yaml).

    `overrides` are embedded.json's `ppo` keys: any rl-games `config` key, plus `minibatches`,
    `units` (the MLP sizes) and `activation`.
    """
    ppo = dict(COMPOSITE_PPO if discrete else PRIMITIVE_PPO)
    ppo.update(overrides or {})
    horizon = int(ppo.pop("horizon_length"))
    minibatches = max(1, int(ppo.pop("minibatches")))
    units = list(ppo.pop("units", [64, 64]))
    # relu, not Isaac Lab's elu: elu costs ~100 us per 512x64 layer on this CPU, relu ~4 us, and
    # composites run several frozen policies per world step. It also learns the reach a bit faster.
    activation = str(ppo.pop("activation", "relu"))
    batch = horizon * spec.num_envs
    if spec.backend == "embedded":
        # Many environments (Isaac Lab's 1024-8192, on a CPU) must not mean fewer updates per
        # sample: minibatches no bigger than at the default 512 environments, so a big batch gives
        # more steps. (Isaac Lab on a GPU keeps its big minibatches.)
        minibatches = max(minibatches, batch // (horizon * DEFAULT_ENVS // minibatches))
    while batch % minibatches:  # rl-games requires the batch to split evenly
        minibatches -= 1
    if discrete:
        space: dict[str, Any] = {"discrete": {}}
    else:
        space = {
            "continuous": {
                "mu_activation": "None",
                "sigma_activation": "None",
                "mu_init": {"name": "default"},
                "sigma_init": {"name": "const_initializer", "val": 0},
                "fixed_sigma": True,
            }
        }
    config: dict[str, Any] = {
        "name": spec.skill,
        "env_name": env_name,
        "env_config": {},
        "device": device,
        "device_name": device,
        "multi_gpu": False,
        "ppo": True,
        "mixed_precision": False,
        "normalize_input": True,
        "normalize_value": True,
        "normalize_advantage": True,
        "value_bootstrap": True,
        "num_actors": spec.num_envs,
        "reward_shaper": {"scale_value": 1.0},
        "tau": 0.95,
        "lr_schedule": "adaptive",
        "kl_threshold": 0.016 if discrete else 0.008,
        "score_to_win": 1e12,
        "max_epochs": -1,
        "max_frames": -1,
        "save_best_after": 5,
        "save_frequency": 0,
        "grad_norm": 1.0,
        "truncate_grads": True,
        "e_clip": 0.2,
        "clip_value": True,
        "critic_coef": 2.0,
        "bounds_loss_coef": 0.0001,
        "horizon_length": horizon,
        "minibatch_size": batch // minibatches,
        "seq_length": 4,
        "games_to_track": 100,
        "print_stats": True,
        # torch.compile costs ~35 s of inductor start-up on CPU for no throughput gain (§2.4).
        "torch_compile": False,
        "train_dir": str(spec.run_dir.parent),
        "full_experiment_name": spec.run_dir.name,
    }
    config.update(ppo)
    return {
        "params": {
            "seed": spec.seed,
            "algo": {"name": "a2c_discrete" if discrete else "a2c_continuous"},
            "model": {"name": "discrete_a2c" if discrete else "continuous_a2c_logstd"},
            "network": {
                "name": "actor_critic",
                "separate": False,
                "space": space,
                "mlp": {
                    "units": units,
                    "activation": activation,
                    "d2rl": False,
                    "initializer": {"name": "default"},
                    "regularizer": {"name": "None"},
                },
            },
            "load_checkpoint": False,
            "load_path": "",
            # rl-games' default is min(4, cores): one job per core is faster on a shared box (§2.4)
            "torch_threads": 1,
            "config": config,
        }
    }


class Progress(Protocol):
    """What a backend tells the observer about success, independent of rl-games."""

    def epoch_outcomes(self) -> tuple[int, int]:
        """(episodes finished, of which successful) since the last call."""
        ...

    def success_states(self) -> int:
        """Success states in the skill's success folder, this run included."""
        ...

    def flush(self, force: bool) -> None:
        """Write buffered success states (at least every few seconds; always when forced)."""
        ...


@dataclass
class EpochSnapshot:
    epoch: int
    frames: int
    fps: float
    mean_reward: float | None
    mean_episode_length: float | None
    success_rate: float | None
    success_states: int


def _scalar(meter: Any) -> float | None:
    if meter.current_size == 0:
        return None
    # get_mean() is 1-D for rewards and 0-D for lengths (isaaclab-and-rlgames.md §2.4)
    return float(np.asarray(meter.get_mean()).reshape(-1)[0])


class ProgressObserver(AlgoObserver):
    def __init__(
        self,
        spec: TrainerSpec,
        progress: Progress,
        shutdown: Shutdown,
        *,
        min_success_rate: float = 0.0,
        episode_frames: int = 0,
        inner: AlgoObserver | None = None,
        emit: Callable[..., Any] = records.emit,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.progress = progress
        self.shutdown = shutdown
        self.min_success_rate = min_success_rate
        # Frames per environment of one whole episode (its time limit). Until every environment
        # has run that long, only the quick successes have ended and none of the time-outs: the
        # success rate would flatter an untrained policy, and with thousands of environments the
        # success states are there too (seen at 8192: a primitive "done" after 6 epochs).
        self.episode_frames = episode_frames
        self.inner = inner
        self.emit = emit
        self.algo: Any = None
        self.reason: str | None = None
        self.saved: list[str] = []
        self._reported = 0  # checkpoints already named in a record
        self._pending: EpochSnapshot | None = None
        self._last_epoch = 0
        self._last_time = time.monotonic()
        self._last_frames = 0
        self.last_snapshot: EpochSnapshot | None = None
        # (episodes, successes) of recent epochs, newest last: the success rate is taken over
        # the newest `window` episodes. Per-epoch rates are biased early on: the first episodes
        # to finish are the quick successes, failures only end at the time limit.
        self._outcomes: deque[tuple[int, int]] = deque()
        self.window = max(100, spec.num_envs)

    # rl-games hooks -------------------------------------------------------------------------

    def before_init(self, base_name: str, config: dict[str, Any], experiment_name: str) -> None:
        if self.inner is not None:
            self.inner.before_init(base_name, config, experiment_name)

    def after_init(self, algo: Any) -> None:
        self.algo = algo
        self._last_time = time.monotonic()
        original_save = algo.save
        original_update_epoch = algo.update_epoch

        def save(fn: str) -> None:
            original_save(fn)
            self.saved.append(str(fn) + ".pth")

        def update_epoch() -> int:
            self.report_pending()
            return original_update_epoch()

        # Instance attributes shadow the methods; rl-games calls self.save / self.update_epoch.
        algo.save = save
        algo.update_epoch = update_epoch
        if self.inner is not None:
            self.inner.after_init(algo)

    def process_infos(self, infos: Any, done_indices: Any) -> None:
        if self.inner is not None:
            self.inner.process_infos(infos, done_indices)

    def after_steps(self) -> None:
        if self.inner is not None:
            self.inner.after_steps()

    def after_clear_stats(self) -> None:
        if self.inner is not None:
            self.inner.after_clear_stats()

    def after_print_stats(self, frame: int, epoch_num: int, total_time: float) -> None:
        if self.inner is not None:
            self.inner.after_print_stats(frame, epoch_num, total_time)
        # The discrete agent calls this twice per epoch (§1.5): act once.
        if epoch_num == self._last_epoch:
            return
        self._last_epoch = epoch_num
        algo = self.algo
        frames = int(algo.frame)  # the true count; the printed `frame` lags one epoch
        now = time.monotonic()
        fps = (frames - self._last_frames) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_frames = now, frames
        rate, full = self._success_rate(*self.progress.epoch_outcomes())
        full = full and frames >= self.episode_frames * self.spec.num_envs
        reason = self._decide(frames, rate if full else None)
        self.progress.flush(force=reason is not None)
        snapshot = EpochSnapshot(
            epoch=epoch_num,
            frames=frames,
            fps=round(fps, 1),
            mean_reward=_scalar(algo.game_rewards),
            mean_episode_length=_scalar(algo.game_lengths),
            success_rate=rate,
            success_states=self.progress.success_states(),
        )
        self._pending = snapshot
        self.last_snapshot = snapshot
        if reason is not None:
            self.reason = reason
            algo.max_epochs = epoch_num  # rl-games saves a final checkpoint and returns

    # our side -------------------------------------------------------------------------------

    def _success_rate(self, episodes: int, successes: int) -> tuple[float | None, bool]:
        """Success rate over the newest `window` episodes, and whether the window is full."""
        self._outcomes.append((episodes, successes))
        total = sum(e for e, _ in self._outcomes)
        while self._outcomes and total - self._outcomes[0][0] >= self.window:
            total -= self._outcomes.popleft()[0]
        wins = sum(s for _, s in self._outcomes)
        return (wins / total if total else None), total >= self.window

    def _decide(self, frames: int, rate: float | None) -> str | None:
        spec = self.spec
        states = self.progress.success_states()
        good_enough = self.min_success_rate <= 0 or (rate is not None and rate >= self.min_success_rate)
        if states >= spec.min_success_states and frames >= spec.min_frames and good_enough:
            return "target_reached"
        if self.shutdown.stop_requested:
            return "stopped"
        if spec.max_frames is not None and frames >= spec.max_frames:
            return "max_frames"
        return None

    def report_pending(self) -> None:
        snapshot, self._pending = self._pending, None
        if snapshot is None:
            return
        new = self.saved[self._reported :]
        self._reported = len(self.saved)
        self.emit(
            "progress",
            epoch=snapshot.epoch,
            frames=snapshot.frames,
            fps=snapshot.fps,
            mean_reward=snapshot.mean_reward,
            mean_episode_length=snapshot.mean_episode_length,
            success_rate=snapshot.success_rate,
            success_states=snapshot.success_states,
            checkpoint=new[-1] if new else None,
        )

    @property
    def final_checkpoint(self) -> str | None:
        return self.saved[-1] if self.saved else None


def publish_policy(
    spec: TrainerSpec, checkpoint: str, agent_cfg: dict[str, Any], skill_info: dict[str, Any]
) -> Path:
    """Write run_dir/policy/{policy.pth, agent.yaml, skill.json}; the orchestrator copies it."""
    import json

    out = spec.policy_out_dir
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shutil.copyfile(checkpoint, tmp / "policy.pth")
    (tmp / "agent.yaml").write_text(yaml.safe_dump(agent_cfg, sort_keys=False), encoding="utf-8")
    (tmp / "skill.json").write_text(json.dumps(skill_info, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    # A reader sees either no policy folder or a complete one.
    tmp.rename(out)
    return out


def write_params(spec: TrainerSpec, agent_cfg: dict[str, Any]) -> None:
    """params/agent.yaml in the run folder, as Isaac Lab's train.py dumps it."""
    params = spec.run_dir / "params"
    params.mkdir(parents=True, exist_ok=True)
    (params / "agent.yaml").write_text(yaml.safe_dump(agent_cfg, sort_keys=False), encoding="utf-8")
