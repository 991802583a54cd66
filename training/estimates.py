"""How long training will take: before a session starts (the configuration dialog) and while it runs
(the ETA of every snapshot).

`estimate_time` answers "how long for these settings" from this task's completed runs, else a
heuristic per backend. `skill_fraction` and `eta` follow a running session: the skill that trains
extrapolates its own rate, the skills not started yet are guessed from the ones this session
trained so far. Both are read-only and cheap: one aggregate query, or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count

from tasks.models import Task
from training.config import TrainingConfig
from training.models import SkillRun, SkillStatus

# Rough minutes per skill when a task has no completed run of that kind yet. Embedded: a point-mass
# skill learns in well under a minute at the default settings (isaaclab-and-rlgames.md §2); Isaac Lab
# skills take tens of minutes on one GPU. Capped by the time limit.
HEURISTIC_SECONDS = {
    "embedded": {"primitive": 60.0, "composite": 120.0},
    "isaaclab": {"primitive": 45 * 60.0, "composite": 30 * 60.0},
}
# A skill this far along has a usable rate for an ETA; before that the estimate is noise.
ETA_MIN_FRACTION = 0.05


@dataclass(frozen=True)
class KindEstimate:
    kind: str
    count: int  # skills of this kind to train
    seconds_each: float
    runs: int  # completed runs of this task it is the mean of; 0 = heuristic

    @property
    def from_history(self) -> bool:
        return self.runs > 0


@dataclass(frozen=True)
class Estimate:
    to_train: int
    seconds: float
    upper_bound: float  # every skill using its whole time limit
    parts: list[KindEstimate]
    backend: str

    @property
    def from_history(self) -> bool:
        return any(part.from_history for part in self.parts)


def estimate_time(task: Task, config: TrainingConfig, rows: list[dict[str, Any]]) -> Estimate:
    """Total training time for these settings: this task's past runs when it has any, else a heuristic.

    `rows` are `queries.skill_status_rows(task)`. Skills to train: every defined skill with
    `new_run` or without skip-complete, else the ones not complete. Each takes the mean duration of
    this task's completed runs of its kind (primitive/composite), else the backend's heuristic,
    never more than the time limit.
    """
    trainable = [row for row in rows if row["defined"]]
    if config.new_run or not config.skip_complete:
        todo = trainable
    else:
        todo = [row for row in trainable if row["status"] != SkillStatus.COMPLETED]
    history = {
        ("primitive" if row["skill__is_primitive"] else "composite"): (row["mean"], row["runs"])
        for row in SkillRun.objects.filter(
            skill__task=task, status=SkillStatus.COMPLETED, elapsed_seconds__gt=0
        ).values("skill__is_primitive").annotate(mean=Avg("elapsed_seconds"), runs=Count("pk"))
    }
    cap = config.max_time_seconds
    parts = []
    for kind in ("primitive", "composite"):
        count = sum(1 for row in todo if row["kind"] == kind)
        if not count:
            continue
        mean, runs = history.get(kind, (HEURISTIC_SECONDS[config.backend][kind], 0))
        parts.append(KindEstimate(kind=kind, count=count, seconds_each=min(float(mean), cap), runs=runs))
    return Estimate(
        to_train=len(todo),
        seconds=sum(part.count * part.seconds_each for part in parts),
        upper_bound=len(todo) * cap,
        parts=parts,
        backend=config.backend,
    )


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
