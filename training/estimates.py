"""How long training will take: before a session starts (the configuration dialog) and while it runs
(the ETA of every snapshot).

`estimate_time` answers "how long for these settings", and says how it knows:

- **from past runs**: this task's completed runs of the same kind, backend and number of
  environments (their mean time);
- **from this host's speed** (embedded backend, before any such run): the frames a skill of that
  kind needs at these environments, divided by the frames per second the trainer reached on this
  host (the median `fps` of its recent completed runs of that kind, else `bench_trainer`'s
  measurement in `bench-results/trainer.json`, else a typical laptop's), plus the trainer's start-up;
- **rule of thumb** (Isaac Lab before any run: no speed of its GPU host is known here).

The "at most" figure is a bound, not a forecast: every skill left using its whole time limit.
`skill_fraction` and `eta` follow a running session. All read-only and cheap: a few aggregate queries.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count

from tasks.models import Task
from training import queries
from training.config import TrainingConfig
from training.models import SkillRun, SkillStatus, hierarchical

# Isaac Lab before any run of the task: rough minutes per skill on one GPU. Capped by the time limit.
HEURISTIC_SECONDS = {
    "embedded": {"primitive": 60.0, "composite": 120.0},
    "isaaclab": {"primitive": 45 * 60.0, "composite": 30 * 60.0},
}
# The embedded model, measured on the demo tasks (bench-results/estimates.json): PPO epochs a skill
# needs at 512 environments (more environments, fewer but bigger epochs: ~ sqrt(512 / envs)), steps
# per environment per epoch (the trainer's horizons), the trainer's start-up (process, torch,
# frozen sub-policies), and frames per second when nothing was measured on this host.
REFERENCE_ENVS = 512
EPOCHS_AT_REFERENCE = {"primitive": 25.0, "composite": 12.0}
HORIZON = {"primitive": 16, "composite": 8}
STARTUP_SECONDS = {"primitive": 3.0, "composite": 4.0}
TYPICAL_FPS = {"primitive": 60_000.0, "composite": 6_000.0}
# A composite decision runs its sub-skills' policies: slower per frame than a primitive's step, and
# more so the deeper it is. `bench_trainer` measures a primitive; composites are this fraction of it.
COMPOSITE_SPEED = 0.1
# Recent completed runs whose speed stands for this host's.
SPEED_RUNS = 20
BENCH_FILE = Path(settings.BASE_DIR) / "bench-results" / "trainer.json"
# A skill this far along has a usable rate for an ETA; before that the estimate is noise.
ETA_MIN_FRACTION = 0.05

HISTORY, HOST, BENCH, TYPICAL, RULE = "history", "host", "bench", "typical", "rule"


@dataclass(frozen=True)
class KindEstimate:
    kind: str
    count: int  # skills of this kind to train
    seconds_each: float
    runs: int  # completed runs it is the mean of (HISTORY) or whose speed it used (HOST); else 0
    basis: str = RULE  # HISTORY, HOST, BENCH, TYPICAL or RULE
    fps: float | None = None  # the speed it assumed (not HISTORY / RULE)

    @property
    def from_history(self) -> bool:
        return self.basis == HISTORY


@dataclass(frozen=True)
class Estimate:
    to_train: int
    seconds: float
    upper_bound: float  # a bound, not a forecast: every skill left using its whole time limit
    parts: list[KindEstimate]
    backend: str
    max_time_seconds: float = 0.0
    num_envs: int = 0
    # With several training slots: the longest chain of skills that wait for each other (a
    # composite for its sub-skills, a skill for its previous sibling), or the work shared by the
    # slots if that is longer. None with one slot, where it is `seconds`.
    parallel_seconds: float | None = None
    slots: int = 1

    @property
    def from_history(self) -> bool:
        return any(part.from_history for part in self.parts)

    @property
    def basis(self) -> str:
        """How the whole was made, in a few words, for the dialog's headline."""
        kinds = {part.basis for part in self.parts}
        if kinds == {HISTORY}:
            runs = sum(part.runs for part in self.parts)
            return f"from {runs} past run{'' if runs == 1 else 's'} of this task"
        if kinds <= {HOST, HISTORY} and HOST in kinds:
            return "from this host's measured speed" + (" and past runs" if HISTORY in kinds else "")
        if kinds <= {HOST, HISTORY, BENCH}:
            return "from bench_trainer's measured speed" + (" and past runs" if HISTORY in kinds else "")
        if RULE in kinds:
            return "a rule of thumb" + (" and past runs" if HISTORY in kinds else "")
        return "from typical speeds (no run measured on this host yet)"


def estimate_time(task: Task, config: TrainingConfig, rows: list[dict[str, Any]]) -> Estimate:
    """Total training time for these settings, and how it was made (see the module's docstring).

    `rows` are `queries.skill_status_rows(task)`. Skills to train: every defined skill with
    `new_run` or without skip-complete, else the ones not complete. Never more than the time limit
    per skill.
    """
    trainable = [row for row in rows if row["defined"]]
    if config.new_run or not config.skip_complete:
        todo = trainable
    else:
        todo = [row for row in trainable if row["status"] != SkillStatus.COMPLETED]
    history = _task_history(task, config)
    cap = config.max_time_seconds
    parts = []
    for kind in ("primitive", "composite"):
        count = sum(1 for row in todo if row["kind"] == kind)
        if not count:
            continue
        if kind in history:
            mean, runs = history[kind]
            part = KindEstimate(kind, count, min(mean, cap), runs, HISTORY)
        elif config.backend == "embedded":
            fps, runs, basis = host_fps(kind, config.backend)
            seconds = STARTUP_SECONDS[kind] + frames_needed(kind, config) / _at_envs(fps, config.num_envs)
            part = KindEstimate(kind, count, min(seconds, cap), runs, basis, fps)
        else:
            part = KindEstimate(kind, count, min(HEURISTIC_SECONDS[config.backend][kind], cap), 0, RULE)
        parts.append(part)
    seconds = sum(part.count * part.seconds_each for part in parts)
    slots = int(settings.GENHRL_WORKER_SLOTS)
    parallel = None
    if slots > 1 and len(todo) > 1:
        each = {part.kind: part.seconds_each for part in parts}
        chain = critical_path(task, {row["skill"]: each[row["kind"]] for row in todo}, [r["skill"] for r in todo])
        parallel = min(seconds, max(chain, seconds / slots))
    return Estimate(
        to_train=len(todo),
        seconds=seconds,
        upper_bound=len(todo) * cap,
        parts=parts,
        backend=config.backend,
        max_time_seconds=cap,
        num_envs=config.num_envs,
        parallel_seconds=parallel,
        slots=slots,
    )


def critical_path(task: Task, seconds: dict[str, float], order: list[str]) -> float:
    """The longest chain of these skills (in training order) that wait for each other, as
    `engine.planning.dependencies` orders them: a composite waits for its sub-skills, a skill for
    its previous sibling when that one trains earlier. Skills not in `seconds` are done already."""
    siblings = queries.hierarchy_parents(task)
    sub_skills = {s.name: list(s.sub_skills) for s in task.skills.filter(is_primitive=False)}
    place = {name: index for index, name in enumerate(order)}
    finish: dict[str, float] = {}
    for name in order:  # training order: every skill's dependencies come before it
        waits = [sub for sub in sub_skills.get(name, []) if sub in place]
        names = siblings.get(name) or []
        index = names.index(name) if name in names else 0
        if index > 0 and names[index - 1] in place and place[names[index - 1]] < place[name]:
            waits.append(names[index - 1])
        finish[name] = seconds[name] + max((finish.get(w, 0.0) for w in waits), default=0.0)
    return max(finish.values(), default=0.0)


def frames_needed(kind: str, config: TrainingConfig) -> float:
    """Frames a skill of `kind` trains at these settings: the epochs it needs times the frames per
    epoch, and never fewer than the configured minimum."""
    envs = max(1, config.num_envs)
    epochs = EPOCHS_AT_REFERENCE[kind] * math.sqrt(REFERENCE_ENVS / envs)
    horizon = config.horizon_length or HORIZON[kind]
    minimum = config.min_steps_primitive if kind == "primitive" else config.min_steps_composite
    return max(float(minimum), max(epochs, 3.0) * envs * horizon)


def _at_envs(fps: float, num_envs: int) -> float:
    # The batched simulator is fastest from a few hundred environments up; below, per-step
    # overheads dominate and the speed falls with the number of environments.
    return fps * min(1.0, (max(1, num_envs) / REFERENCE_ENVS) ** 0.8)


def host_fps(kind: str, backend: str) -> tuple[float, int, str]:
    """This host's training speed for `kind`: (frames per second, runs it is the median of, basis)."""
    speeds = list(
        SkillRun.objects.filter(
            status=SkillStatus.COMPLETED, fps__gt=0, session__backend=backend,
            skill__is_primitive=(kind == "primitive"),
        ).filter(hierarchical("session__")).order_by("-pk").values_list("fps", flat=True)[:SPEED_RUNS]
    )
    if speeds:
        return float(statistics.median(speeds)), len(speeds), HOST
    bench = _bench_fps()
    if bench is not None:
        return (bench if kind == "primitive" else bench * COMPOSITE_SPEED), 0, BENCH
    return TYPICAL_FPS[kind], 0, TYPICAL


@lru_cache(maxsize=1)
def _bench_fps() -> float | None:
    """`manage.py bench_trainer`'s median training speed (a primitive, embedded), if it ran here."""
    try:
        summary = json.loads(BENCH_FILE.read_text()).get("summary", {})
        value = float(summary.get("bare_training_fps_median") or 0)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return value if value > 0 else None


def _task_history(task: Task, config: TrainingConfig) -> dict[str, tuple[float, int]]:
    """Mean time of this task's completed runs per kind, at the same backend and environments."""
    rows = (
        SkillRun.objects.filter(
            skill__task=task, status=SkillStatus.COMPLETED, elapsed_seconds__gt=0,
            session__backend=config.backend, session__config__num_envs=config.num_envs,
        )
        # A flat baseline's run is of the root but steps primitive actions for a whole budget:
        # neither a composite's speed nor its time.
        .filter(hierarchical("session__"))
        .values("skill__is_primitive")
        .annotate(mean=Avg("elapsed_seconds"), runs=Count("pk"))
    )
    return {("primitive" if r["skill__is_primitive"] else "composite"): (float(r["mean"]), r["runs"]) for r in rows}


# -- a running session ----------------------------------------------------------------------------
def skill_fraction(run: SkillRun) -> float:
    """How far one skill is, 0-1: done counts whole; a training skill by its slower criterion."""
    if run.status in SkillStatus.done():
        return 1.0
    if run.status != SkillStatus.TRAINING:
        return 0.0
    states = run.success_states / run.min_success_states if run.min_success_states else 1.0
    frames = run.frames / run.min_frames if run.min_frames else 1.0
    # Never 1.0 while it trains: the trainer still has to stop and publish its policy.
    return max(0.0, min(0.99, states, frames))


def skill_elapsed(run: SkillRun, now: datetime) -> float:
    if run.status == SkillStatus.TRAINING and run.started_at is not None:
        # The supervisor writes elapsed time every half second; the clock is fresher.
        return max(run.elapsed_seconds, (now - run.started_at).total_seconds())
    return run.elapsed_seconds


def eta(runs: list[SkillRun], elapsed: dict[int, float], max_seconds: float) -> float | None:
    """Seconds until every planned skill is done, or None while there is nothing to go on.

    The running skill extrapolates its own rate; skills not yet started are guessed from the
    skills this session trained so far (or the running one's estimate), capped by the time limit.
    """
    trained = [elapsed[r.pk] for r in runs if r.status == SkillStatus.COMPLETED and elapsed[r.pk] > 0]
    typical: float | None = sum(trained) / len(trained) if trained else None
    remaining = 0.0
    for run in runs:
        if run.status == SkillStatus.TRAINING:
            spent = elapsed[run.pk]
            fraction = skill_fraction(run)
            if fraction >= ETA_MIN_FRACTION and spent > 0:
                left = spent * (1 - fraction) / fraction
            elif typical is not None:
                left = typical - spent
            else:
                return None
            left = max(0.0, min(left, max_seconds - spent))
            typical = typical if typical is not None else spent + left
            remaining += left
        elif run.status == SkillStatus.PENDING:
            if typical is None:
                return None
            remaining += min(typical, max_seconds)
    return round(remaining, 1)
