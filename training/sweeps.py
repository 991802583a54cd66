"""Sweeps: one task trained over a set of settings, each trial an ordinary queued session.

A sweep varies some of: parallel environments, minimum success states and the PPO
hyper-parameters that matter (learning rate, entropy coefficient, horizon, mini-epochs), and trains
each setting once per seed. Three ways to choose the settings:

- `grid`: every combination of the listed values;
- `random`: `budget` settings drawn from lists or ranges (uniform, or log-uniform), repeatable from
  the sweep's `random_seed`;
- `search`: Optuna's TPE sampler proposes each next setting from the results so far. The study is
  rebuilt from the database every time (ask-and-tell), so any worker can advance any sweep and a
  restart loses nothing.

How trials run (docs/ARCHITECTURE.md, "Sweeps"): one at a time, through the queue. The rule "one
active session per task" stays: trials of one task share what cannot be shared (Isaac Lab's
per-skill start-state folders in the task tree), so `advance` queues the next trial only when the
last one ended, and each trial joins the back of the queue, behind everyone who queued meanwhile:
a sweep holds at most one place and never starves other users. Each trial trains in a workspace
of its own (`training/paths.py`), so it starts from scratch and never reads or replaces the task's
own success states and policies, and the trials cannot contaminate each other.

Workers call `advance_all` on every pass (after a trial ends they are woken at once); the web
calls `create`, which queues the first trial.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tasks.models import Task
from training import services
from training.config import FLOAT_LIMITS, INTEGER_LIMITS, NUM_ENVS, ConfigError, TrainingConfig
from training.lab_models import Sweep, SweepTrial
from training.models import SessionStatus, SkillRun, TrainingSession

logger = logging.getLogger(__name__)

# What a sweep may vary, and the type of each (seeds are their own list: every setting runs per seed).
PARAMS: dict[str, type] = {
    "num_envs": int,
    "min_success_states": int,
    "learning_rate": float,
    "entropy_coef": float,
    "horizon_length": int,
    "mini_epochs": int,
}
MAX_TRIALS = 200
MAX_SEEDS = 20
MAX_BUDGET = 100
MAX_VALUES = 100
# Which way is better, per metric.
MAXIMIZE = {Sweep.Metric.SUCCESS_RATE: True, Sweep.Metric.FRAMES: False, Sweep.Metric.WALL_TIME: False}


# -- the space --------------------------------------------------------------------------------------
def parse_values(name: str, text: str) -> dict[str, Any]:
    """One parameter of the sweep form: `1e-4, 3e-4, 1e-3` (values) or `1e-4..1e-2 [log]` (a range)."""
    text = text.strip()
    if not text:
        raise ValueError("give values (a, b, c) or a range (low..high, optionally followed by 'log')")
    kind = PARAMS[name]
    if ".." in text:
        body, _, flag = text.partition(" ")
        low_text, _, high_text = body.partition("..")
        if flag.strip() not in ("", "log"):
            raise ValueError(f"unexpected {flag.strip()!r} after the range (only 'log')")
        return {"low": _parse_number(low_text, kind), "high": _parse_number(high_text, kind), "log": flag.strip() == "log"}
    return {"values": [_parse_number(part, kind) for part in text.split(",") if part.strip()]}


def _parse_number(text: str, kind: type) -> float | int:
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{text!r} is not a whole number")
        return int(number)
    return number


def describe(spec: Mapping[str, Any]) -> str:
    """A parameter's spec as the form writes it."""
    if "values" in spec:
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in spec["values"])
    return f"{spec['low']:g}..{spec['high']:g}" + (" log" if spec.get("log") else "")


def _check_space(method: str, space: Mapping[str, Any], base: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """The space, normalized (`{"values": [...]}` or `{"low", "high", "log"}` per parameter)."""
    errors: dict[str, list[str]] = {}
    checked: dict[str, Any] = {}
    if not space:
        raise ConfigError({"space": ["choose at least one setting to vary"]})
    for name, raw in space.items():
        if name not in PARAMS:
            errors.setdefault(name, []).append(f"a sweep varies only {', '.join(PARAMS)} (and seeds)")
            continue
        spec = {"values": list(raw)} if isinstance(raw, list | tuple) else raw
        if not isinstance(spec, Mapping):
            errors.setdefault(name, []).append("expected a list of values or {low, high, log}")
            continue
        kind = PARAMS[name]
        try:
            if "values" in spec:
                if not isinstance(spec["values"], list | tuple) or len(spec["values"]) > MAX_VALUES:
                    raise ValueError(f"expected a list of at most {MAX_VALUES} values")
                values = [_as(kind, v) for v in spec["values"]]
                if not values:
                    raise ValueError("give at least one value")
                if len(set(values)) != len(values):
                    raise ValueError("a value is listed twice")
                for value in values:
                    _validate(name, value, base, task)
                checked[name] = {"values": values}
            elif "low" in spec and "high" in spec:
                if method == Sweep.Method.GRID:
                    raise ValueError("a grid needs a list of values, not a range")
                low, high, log = _as(kind, spec["low"]), _as(kind, spec["high"]), bool(spec.get("log", False))
                if not low < high:
                    raise ValueError("the range needs low < high")
                if log and low <= 0:
                    raise ValueError("a log range needs low > 0")
                _validate(name, low, base, task)
                _validate(name, high, base, task)
                checked[name] = {"low": low, "high": high, "log": log}
            else:
                raise ValueError("expected a list of values or {low, high, log}")
        except ValueError as exc:
            errors.setdefault(name, []).append(str(exc))
    if errors:
        raise ConfigError(errors)
    return checked


def _as(kind: type, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if not math.isfinite(float(value)):
        raise ValueError("must be finite")
    return float(value)


def _validate(name: str, value: Any, base: Mapping[str, Any], task: Task) -> None:
    """A value of the space must pass the same check as the option itself (ranges of config.py)."""
    try:
        TrainingConfig.from_data({**base, name: value}, task=task, strict=True)
    except ConfigError as exc:
        raise ValueError("; ".join(exc.errors.get(name, [str(exc)]))) from None


def limits_text(name: str) -> str:
    """The allowed range of a parameter, for the form's help."""
    if name in FLOAT_LIMITS:
        low, high, inclusive = FLOAT_LIMITS[name]
        return f"{'≥' if inclusive else '>'} {low:g}, ≤ {high:g}"
    if name == "num_envs":
        return "; ".join(f"{backend} {low}–{high}" for backend, (_, low, high) in NUM_ENVS.items())
    low, high = INTEGER_LIMITS[name]
    return f"{low}–{high}"


# -- settings ---------------------------------------------------------------------------------------
def grid(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the listed values, in the order the parameters were given."""
    names = list(space)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(space[n]["values"] for n in names))]


def sample(space: Mapping[str, Any], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` settings drawn at random (the same seed draws the same settings)."""
    settings = []
    for index in range(count):
        rng = random.Random(f"{seed}:{index}")
        settings.append({name: _draw(rng, name, spec) for name, spec in space.items()})
    return settings


def _draw(rng: random.Random, name: str, spec: Mapping[str, Any]) -> float | int:
    if "values" in spec:
        return rng.choice(list(spec["values"]))
    low, high = float(spec["low"]), float(spec["high"])
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if spec.get("log") else rng.uniform(low, high)
    if PARAMS[name] is int:
        return min(int(spec["high"]), max(int(spec["low"]), round(value)))
    return value


def _distributions(space: Mapping[str, Any]) -> dict[str, Any]:
    import optuna

    found: dict[str, Any] = {}
    for name, spec in space.items():
        if "values" in spec:
            found[name] = optuna.distributions.CategoricalDistribution(tuple(spec["values"]))
        elif PARAMS[name] is int:
            found[name] = optuna.distributions.IntDistribution(int(spec["low"]), int(spec["high"]), log=bool(spec["log"]))
        else:
            found[name] = optuna.distributions.FloatDistribution(float(spec["low"]), float(spec["high"]), log=bool(spec["log"]))
    return found


def propose(space: Mapping[str, Any], results: Sequence[tuple[dict[str, Any], float | None]], *, maximize: bool,
            seed: int, budget: int) -> dict[str, Any]:
    """Optuna's next setting given the settings tried so far and their results (None: no result).

    Ask-and-tell on a study rebuilt from `results`: TPE samples at random for its first few trials,
    then models which regions did well.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = _distributions(space)
    sampler = optuna.samplers.TPESampler(seed=seed + len(results), n_startup_trials=min(10, max(2, budget // 3)))
    study = optuna.create_study(direction="maximize" if maximize else "minimize", sampler=sampler)
    for params, value in results:
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=value if value is not None else None, state=state,
        ))
    trial = study.ask(distributions)
    return {name: (int(v) if PARAMS[name] is int else v) for name, v in trial.params.items()}


# -- creating ---------------------------------------------------------------------------------------
def create(
    task: Task,
    *,
    owner: Any | None,
    method: str,
    space: Mapping[str, Any],
    seeds: Sequence[int],
    metric: str = Sweep.Metric.SUCCESS_RATE,
    budget: int = 0,
    base: Mapping[str, Any] | TrainingConfig | None = None,
    name: str = "",
    random_seed: int | None = None,
    queue: str = services.DEFAULT_QUEUE,
    start: bool = True,
) -> Sweep:
    """Check a sweep, plan its trials and queue the first one (`start`).

    Raises `ConfigError` (field -> messages) for anything that does not validate: the method, the
    metric, the seeds, each value or range of the space (checked as the option itself would be),
    the base options, or too many trials.
    """
    errors: dict[str, list[str]] = {}
    if method not in Sweep.Method.values:
        errors["method"] = [f"must be one of {', '.join(Sweep.Method.values)}"]
    if metric not in Sweep.Metric.values:
        errors["metric"] = [f"must be one of {', '.join(Sweep.Metric.values)}"]
    seed_list = _check_seeds(seeds, errors)
    if isinstance(base, TrainingConfig):
        base_config = base
    else:
        try:
            base_config = TrainingConfig.from_data(dict(base or {}), task=task, strict=True)
        except ConfigError as exc:
            errors.update({f"base.{k}": v for k, v in exc.errors.items()})
            base_config = TrainingConfig.from_data({}, task=task)
    # Trials train from scratch in their own workspace: nothing to delete, never the task's folders.
    base_options = {k: v for k, v in base_config.with_changes(new_run=False).to_json().items()
                    if v is not None and k not in ("seed", "max_frames")}
    if base_config.max_frames is not None:
        base_options["max_frames"] = base_config.max_frames
    if errors:
        raise ConfigError(errors)
    checked = _check_space(method, space, base_options, task)
    if method == Sweep.Method.GRID:
        settings = grid(checked)
    else:
        if not 1 <= int(budget or 0) <= MAX_BUDGET:
            raise ConfigError({"budget": [f"how many settings to try: 1-{MAX_BUDGET}"]})
        settings = []
    count = (len(settings) if method == Sweep.Method.GRID else int(budget)) * len(seed_list)
    if count > MAX_TRIALS:
        raise ConfigError({"space": [f"{count} trials is more than {MAX_TRIALS}: fewer values, settings or seeds"]})
    rseed = random_seed if random_seed is not None else random.SystemRandom().randrange(2**31)
    if method == Sweep.Method.RANDOM:
        settings = sample(checked, int(budget), rseed)
    with transaction.atomic():
        sweep = Sweep.objects.create(
            task=task, owner=owner if getattr(owner, "pk", None) else None,
            name=("".join(c for c in name if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF).strip()
                  or f"{Sweep.Method(method).label.lower()} over {', '.join(checked)}")[:100],
            method=method, metric=metric, base=base_options, space=checked, seeds=seed_list,
            budget=len(settings) if method == Sweep.Method.GRID else int(budget), random_seed=rseed,
            queue=queue or services.DEFAULT_QUEUE,
        )
        if method == Sweep.Method.SEARCH:
            settings = [propose(checked, [], maximize=MAXIMIZE[Sweep.Metric(metric)], seed=rseed, budget=sweep.budget)]
        _plan(sweep, settings, first_setting=0)
    logger.info("sweep %s of %s: %s settings x %s seeds", sweep.pk, task, sweep.budget, len(seed_list))
    if start:
        advance(sweep)
    return sweep


def _check_seeds(seeds: Sequence[int], errors: dict[str, list[str]]) -> list[int]:
    low, high = INTEGER_LIMITS["seed"]
    try:
        values = [int(s) for s in seeds if not isinstance(s, bool)]
    except (TypeError, ValueError):
        errors["seeds"] = ["whole numbers"]
        return []
    if not values or len(values) != len(list(seeds)):
        errors["seeds"] = ["give at least one seed (whole numbers)"]
    elif len(values) > MAX_SEEDS:
        errors["seeds"] = [f"at most {MAX_SEEDS} seeds"]
    elif len(set(values)) != len(values):
        errors["seeds"] = ["a seed is listed twice"]
    elif any(not low <= v <= high for v in values):
        errors["seeds"] = [f"each between {low} and {high}"]
    return values


def _plan(sweep: Sweep, settings: list[dict[str, Any]], *, first_setting: int) -> list[SweepTrial]:
    """One trial row per setting and seed, numbered in the order they will run."""
    number = sweep.trials.count()
    rows = []
    for offset, params in enumerate(settings):
        for seed in sweep.seeds:
            rows.append(SweepTrial(sweep=sweep, number=number, setting=first_setting + offset, seed=seed, params=params))
            number += 1
    return SweepTrial.objects.bulk_create(rows)


# -- running ----------------------------------------------------------------------------------------
def trial_config(sweep: Sweep, trial: SweepTrial) -> TrainingConfig:
    """The options of one trial: the sweep's base, its setting and its seed."""
    options = {**sweep.base, **trial.params, "seed": trial.seed, "new_run": False}
    return TrainingConfig.from_data(options, task=sweep.task, strict=True)


def advance(sweep: Sweep) -> SweepTrial | None:
    """Score the trials that ended and queue the next one, if none is active; returns it.

    Safe to call from any process at any time (every worker pass does): the sweep row is locked
    while it decides, and the task's one-active-session rule refuses a second active trial anyway.
    When the task trains another session (someone else's), the sweep waits and says so. A sweep
    with nothing left to run completes.
    """
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update(of=("self",)).select_related("task", "owner").get(pk=sweep.pk)
        if sweep.status != Sweep.Status.RUNNING:
            return None
        score(sweep)
        trials = list(sweep.trials.select_related("session").order_by("number"))
        if any(t.session is not None and t.session.is_active for t in trials):
            return None
        pending = [t for t in trials if t.session_id is None and not t.error]
        if not pending and sweep.method == Sweep.Method.SEARCH:
            pending = _propose_next(sweep, trials)
        for trial in pending:
            try:
                config = trial_config(sweep, trial)
                session = services.start_session(
                    sweep.task, config, owner=sweep.owner, actor=f"sweep:{sweep.pk}", queue=sweep.queue,
                    workspace=trial.workspace,
                )
            except services.SessionAlreadyActive as exc:
                note = f"waiting: {sweep.task.name} is training in session {exc.session.pk if exc.session else '?'}"
                if sweep.note != note:
                    Sweep.objects.filter(pk=sweep.pk).update(note=note, updated_at=timezone.now())
                return None
            except ConfigError as exc:
                # A trial whose options do not validate (a setting out of range) is recorded and skipped.
                SweepTrial.objects.filter(pk=trial.pk).update(error=str(exc), scored=True)
                continue
            SweepTrial.objects.filter(pk=trial.pk).update(session=session)
            Sweep.objects.filter(pk=sweep.pk).update(note="", updated_at=timezone.now())
            trial.session = session
            logger.info("sweep %s: trial %s queued as session %s", sweep.pk, trial.number, session.pk)
            return trial
        if sweep.method == Sweep.Method.SEARCH and _propose_next(sweep, list(sweep.trials.all())):
            return None  # a new setting was planned; the next pass queues it
        Sweep.objects.filter(pk=sweep.pk).update(
            status=Sweep.Status.COMPLETED, finished_at=timezone.now(), updated_at=timezone.now(), note="",
        )
        logger.info("sweep %s completed", sweep.pk)
        return None


def _propose_next(sweep: Sweep, trials: list[SweepTrial]) -> list[SweepTrial]:
    """Search: once every trial of the settings so far has a result, plan the next setting."""
    settings = sorted({t.setting for t in trials})
    if len(settings) >= sweep.budget or any(not t.scored for t in trials):
        return []
    results = [(row.params, row.mean) for row in ranking(sweep, trials)]
    params = propose(
        sweep.space, results, maximize=MAXIMIZE[Sweep.Metric(sweep.metric)], seed=sweep.random_seed,
        budget=sweep.budget,
    )
    return _plan(sweep, [params], first_setting=(settings[-1] + 1) if settings else 0)


def score(sweep: Sweep) -> int:
    """Record the metric of every trial whose session ended; returns how many were scored now."""
    scored = 0
    ended = sweep.trials.filter(scored=False, session__status__in=SessionStatus.terminal()).select_related("session")
    for trial in ended:
        assert trial.session is not None
        value = metric_value(sweep, trial.session)
        SweepTrial.objects.filter(pk=trial.pk).update(value=value, scored=True)
        scored += 1
    return scored


def metric_value(sweep: Sweep, session: TrainingSession) -> float | None:
    """The sweep's metric for one ended trial; None when it has none (it did not complete, or the
    root skill never reported a success rate)."""
    runs = list(SkillRun.objects.filter(session=session).select_related("skill").order_by("order"))
    if sweep.metric == Sweep.Metric.SUCCESS_RATE:
        root = next((r for r in runs if r.skill.name == sweep.task.root_skill), runs[-1] if runs else None)
        # A root skill that trained but fell short still has a rate worth ranking.
        return root.success_rate if root is not None and root.started_at is not None else None
    if session.status != SessionStatus.COMPLETED:
        return None
    if sweep.metric == Sweep.Metric.FRAMES:
        return float(sum(r.frames for r in runs))
    if session.started_at is None or session.finished_at is None:
        return None
    return (session.finished_at - session.started_at).total_seconds()


def advance_all(queue: str | None = None) -> list[SweepTrial]:
    """Advance every running sweep (of `queue`); a sweep that fails to advance is logged and skipped."""
    queued = []
    sweeps = Sweep.objects.filter(status=Sweep.Status.RUNNING)
    if queue is not None:
        sweeps = sweeps.filter(queue=queue)
    for sweep in sweeps.order_by("pk"):
        try:
            trial = advance(sweep)
        except Exception:
            logger.exception("sweep %s: cannot advance; retrying on the next pass", sweep.pk)
            continue
        if trial is not None:
            queued.append(trial)
    return queued


def cancel(sweep: Sweep, *, actor: str) -> Sweep:
    """Stop a sweep: its active trial is cancelled, the trials not yet run never will be."""
    with transaction.atomic():
        updated = Sweep.objects.filter(pk=sweep.pk, status=Sweep.Status.RUNNING).update(
            status=Sweep.Status.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now(), note="",
        )
    if updated:
        for trial in sweep.trials.filter(session__status__in=SessionStatus.active()).select_related("session"):
            assert trial.session is not None
            services.request_cancel(trial.session, actor=actor, message=f"sweep {sweep.pk} cancelled")
        logger.info("sweep %s cancelled by %s", sweep.pk, actor)
    sweep.refresh_from_db()
    return sweep


# -- reading ----------------------------------------------------------------------------------------
@dataclass
class SettingResult:
    """One setting of a sweep over its seeds: its trials, their results, mean and spread."""

    setting: int
    params: dict[str, Any]
    trials: list[SweepTrial] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    mean: float | None = None
    std: float | None = None
    rank: int | None = None

    @property
    def done(self) -> int:
        return sum(1 for t in self.trials if t.scored)


def ranking(sweep: Sweep, trials: list[SweepTrial] | None = None) -> list[SettingResult]:
    """The sweep's settings ranked by the mean of its metric over seeds (best first); settings
    without a result yet come last, in their order."""
    rows: dict[int, SettingResult] = {}
    for trial in trials if trials is not None else sweep.trials.select_related("session").order_by("number"):
        row = rows.setdefault(trial.setting, SettingResult(trial.setting, dict(trial.params)))
        row.trials.append(trial)
        if trial.value is not None:
            row.values.append(trial.value)
    for row in rows.values():
        if row.values:
            row.mean = statistics.fmean(row.values)
            row.std = statistics.stdev(row.values) if len(row.values) > 1 else None
    maximize = MAXIMIZE[Sweep.Metric(sweep.metric)]
    ranked = sorted(
        rows.values(),
        key=lambda r: (r.mean is None, (-r.mean if maximize else r.mean) if r.mean is not None else 0.0, r.setting),
    )
    for index, row in enumerate(r for r in ranked if r.mean is not None):
        row.rank = index + 1
    return ranked


def trial_status(trial: SweepTrial, sweep: Sweep) -> str:
    """What a trial is doing: its session's status, or pending / skipped / invalid."""
    if trial.error:
        return "invalid"
    if trial.session is not None:
        return str(trial.session.status)
    return "pending" if sweep.is_running else "skipped"


def progress(sweep: Sweep) -> dict[str, int]:
    """How many trials the sweep plans (so far, for a search), ran and has results for."""
    trials = list(sweep.trials.select_related("session"))
    planned = sweep.budget * len(sweep.seeds) if sweep.method == Sweep.Method.SEARCH else len(trials)
    return {
        "planned": planned,
        "ended": sum(1 for t in trials if t.scored),
        "active": sum(1 for t in trials if t.session is not None and t.session.is_active),
    }


def visible() -> QuerySet[Sweep]:
    """Every sweep (any signed-in user may look, as with sessions), newest first."""
    return Sweep.objects.select_related("task", "owner").order_by("-created_at", "-pk")


def of_session(session: TrainingSession) -> SweepTrial | None:
    """The sweep trial a session is, if it is one."""
    return SweepTrial.objects.select_related("sweep").filter(session=session).first()
