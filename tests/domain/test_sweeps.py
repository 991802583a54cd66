"""Sweeps: planning trials (grid, random, Optuna's search), running them one at a time through the
queue, scoring and ranking them by mean and spread over seeds, cancelling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TINY, one_skill_task
from training import queueing, services, sweeps
from training.config import ConfigError
from training.lab_models import Sweep, SweepTrial
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db]


def finish(session: TrainingSession, *, status: str = SessionStatus.COMPLETED, frames: int = 1000,
           success_rate: float | None = 0.5, seconds: float = 10.0) -> None:
    """End a trial's session as a worker would have, with these results."""
    started = timezone.now() - timedelta(seconds=seconds)
    session.transition_to(SessionStatus.RUNNING, actor="test", worker_id="w", heartbeat_at=timezone.now(),
                          started_at=started)
    for index, skill in enumerate(session.task.skills.order_by("order")):
        SkillRun.objects.create(session=session, skill=skill, order=index, frames=frames, success_rate=success_rate,
                                started_at=started, status=SkillStatus.COMPLETED)
    session.transition_to(status, actor="test")


def active_trials(sweep: Sweep) -> list[SweepTrial]:
    return list(sweep.trials.filter(session__status__in=SessionStatus.active()))


def make(task, **changes):
    options = {"owner": None, "method": "grid", "space": {"learning_rate": [1e-3, 3e-3]}, "seeds": [1, 2],
               "base": TINY, "metric": "frames", **changes}
    return sweeps.create(task, **options)


def test_a_grid_plans_every_setting_per_seed_and_queues_only_the_first(fetch_block):
    sweep = make(fetch_block, space={"learning_rate": [1e-3, 3e-3], "mini_epochs": [2, 4]})

    trials = list(sweep.trials.order_by("number"))
    assert len(trials) == 8  # 2 x 2 settings, 2 seeds each
    assert [(t.setting, t.seed) for t in trials[:4]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert trials[0].params == {"learning_rate": 1e-3, "mini_epochs": 2}
    queued = [t for t in trials if t.session_id]
    assert len(queued) == 1 and queued[0].number == 0
    session = queued[0].session
    assert session.workspace == f"sweep-{sweep.pk}-trial-0"  # from scratch, away from the task's folders
    assert (session.config["learning_rate"], session.config["mini_epochs"], session.config["seed"]) == (1e-3, 2, 1)
    assert session.config["new_run"] is False and session.config["num_envs"] == TINY["num_envs"]


def test_trials_run_one_after_another_and_the_sweep_completes_ranked(fetch_block):
    sweep = make(fetch_block)
    results = {0: 2000, 1: 2200, 2: 1000, 3: 1400}  # frames per trial: setting 1 is cheaper

    for number in range(4):
        assert sweeps.advance(sweep) is None  # one at a time: nothing more while a trial is active
        trial = sweep.trials.get(number=number)
        assert [t.number for t in active_trials(sweep)] == [number]
        finish(trial.session, frames=results[number] // 3)  # fetch_block has three skills
        queued = sweeps.advance(sweep)
        assert (queued.number if queued else None) == (number + 1 if number < 3 else None)

    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.COMPLETED and sweep.finished_at is not None
    best, second = sweeps.ranking(sweep)
    assert (best.rank, best.params, best.values) == (1, {"learning_rate": 3e-3}, [999.0, 1398.0])
    assert best.mean == pytest.approx(1198.5)
    assert best.std == pytest.approx(399 / 2**0.5)  # sample standard deviation over the seeds
    assert (second.rank, second.mean) == (2, pytest.approx(2100, abs=2))


def test_a_failed_trial_has_no_result_and_ranks_last(fetch_block):
    sweep = make(fetch_block, seeds=[1])
    finish(sweep.trials.get(number=0).session, status=SessionStatus.FAILED)
    sweeps.advance(sweep)
    finish(sweep.trials.get(number=1).session, frames=500)
    sweeps.advance(sweep)

    ranked = sweeps.ranking(sweep)
    assert [(r.setting, r.rank, r.mean) for r in ranked] == [(1, 1, 1500.0), (0, None, None)]


def test_success_rate_ranks_higher_first_and_counts_a_root_that_fell_short(fetch_block):
    sweep = make(fetch_block, seeds=[1], metric="success_rate")
    finish(sweep.trials.get(number=0).session, status=SessionStatus.FAILED, success_rate=0.7)
    sweeps.advance(sweep)
    finish(sweep.trials.get(number=1).session, success_rate=0.9)
    sweeps.advance(sweep)

    assert [(r.setting, r.mean) for r in sweeps.ranking(sweep)] == [(1, 0.9), (0, 0.7)]


def test_wall_time_is_the_sessions_own(fetch_block):
    sweep = make(fetch_block, seeds=[1], metric="wall_time", space={"mini_epochs": [2]})
    finish(sweep.trials.get(number=0).session, seconds=42)
    sweeps.advance(sweep)

    (row,) = sweeps.ranking(sweep)
    assert row.mean == pytest.approx(42, abs=1)


def test_a_busy_task_makes_the_sweep_wait_and_say_so(fetch_block, researcher):
    other = services.start_session(fetch_block, TINY, owner=researcher)
    sweep = make(fetch_block)

    sweep.refresh_from_db()
    assert not sweep.trials.filter(session__isnull=False).exists()
    assert sweep.note == f"waiting: fetch_block is training in session {other.pk}"

    services.request_cancel(other, actor="test")
    assert sweeps.advance(sweep).number == 0
    sweep.refresh_from_db()
    assert sweep.note == ""


def test_a_sweeps_next_trial_queues_behind_whoever_queued_meanwhile(fetch_block, researcher):
    """One trial at a time, each at the back: a sweep never starves the others in the queue."""
    sweep = make(fetch_block)
    queued_meanwhile = services.start_session(one_skill_task("someone_elses"), TINY, owner=researcher)
    finish(sweep.trials.get(number=0).session)

    trial = sweeps.advance(sweep)

    order = [p.session_id for p in queueing.plan()]
    assert order == [queued_meanwhile.pk, trial.session_id]


def test_random_samples_are_repeatable_and_within_range(fetch_block):
    space = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "horizon_length": {"low": 8, "high": 32}}
    first = make(fetch_block, method="random", space=space, budget=5, random_seed=7, seeds=[1])
    again = make(one_skill_task("twin"), method="random", space=space, budget=5, random_seed=7, seeds=[1])

    params = [t.params for t in first.trials.order_by("number")]
    assert params == [t.params for t in again.trials.order_by("number")]
    assert len(params) == 5
    assert all(1e-4 <= p["learning_rate"] <= 1e-2 and 8 <= p["horizon_length"] <= 32 for p in params)
    assert all(isinstance(p["horizon_length"], int) for p in params)


def test_the_search_proposes_each_next_setting_from_the_results_so_far(fetch_block):
    space = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "mini_epochs": [2, 4, 8]}
    sweep = make(fetch_block, method="search", space=space, budget=3, seeds=[1, 2], random_seed=3)

    assert sweep.trials.count() == 2  # the first setting, once per seed; the rest come from results
    for setting in range(3):
        for seed_index in range(2):
            trial = sweep.trials.get(setting=setting, seed=[1, 2][seed_index])
            assert 1e-4 <= trial.params["learning_rate"] <= 1e-2 and trial.params["mini_epochs"] in (2, 4, 8)
            finish(trial.session, frames=100 * (setting + 1))
            sweeps.advance(sweep)
        sweeps.advance(sweep)  # plans the next setting, then queues it
    sweep.refresh_from_db()
    assert sweep.trials.count() == 6
    assert sweep.status == Sweep.Status.COMPLETED
    assert sweeps.ranking(sweep)[0].setting == 0  # fewest frames


def test_propose_tells_optuna_the_results_and_failures():
    space = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}
    results = [({"learning_rate": 1e-3}, 0.5), ({"learning_rate": 5e-3}, None)]

    params = sweeps.propose(space, results, maximize=True, seed=1, budget=10)

    assert set(params) == {"learning_rate"} and 1e-4 <= params["learning_rate"] <= 1e-2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"space": {"learning_rate": {"low": 1e-4, "high": 1e-2}}}, "learning_rate", "a grid needs a list of values"),
        ({"space": {"num_envs": [8, 64]}}, "num_envs", "must be between 16 and 8192"),
        ({"space": {"gamma": [0.9]}}, "gamma", "a sweep varies only"),
        ({"space": {}}, "space", "choose at least one setting"),
        ({"seeds": []}, "seeds", "give at least one seed"),
        ({"seeds": [1, 1]}, "seeds", "a seed is listed twice"),
        ({"method": "random", "budget": 0}, "budget", "how many settings"),
        ({"space": {"learning_rate": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3, 9e-3, 1e-2, 2e-2]},
          "seeds": list(range(20))}, "space", "more than 200"),
        ({"metric": "reward"}, "metric", "must be one of"),
    ],
)
def test_what_does_not_validate_is_named_and_nothing_is_queued(fetch_block, changes, field, message):
    with pytest.raises(ConfigError) as caught:
        make(fetch_block, **changes)
    assert any(message in text for text in caught.value.errors[field]), caught.value.errors
    assert not TrainingSession.objects.exists() and not Sweep.objects.exists()


def test_cancel_stops_the_active_trial_and_skips_the_rest(fetch_block):
    sweep = make(fetch_block)
    first = sweep.trials.get(number=0).session

    sweeps.cancel(sweep, actor="user:test")

    first.refresh_from_db()
    assert first.status == SessionStatus.CANCELLED
    assert sweep.status == Sweep.Status.CANCELLED
    assert sweeps.advance(sweep) is None
    assert sweeps.trial_status(sweep.trials.get(number=1), sweep) == "skipped"


def test_parsing_the_forms_values_and_ranges():
    assert sweeps.parse_values("learning_rate", "1e-3, 3e-3") == {"values": [1e-3, 3e-3]}
    assert sweeps.parse_values("learning_rate", "1e-4..1e-2 log") == {"low": 1e-4, "high": 1e-2, "log": True}
    assert sweeps.parse_values("mini_epochs", "2, 4") == {"values": [2, 4]}
    with pytest.raises(ValueError, match="not a whole number"):
        sweeps.parse_values("mini_epochs", "2.5")
    with pytest.raises(ValueError, match="only 'log'"):
        sweeps.parse_values("learning_rate", "1..2 linear")
