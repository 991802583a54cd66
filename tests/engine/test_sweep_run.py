"""A sweep of four tiny trials, run by a worker like any queued sessions: each trains from scratch
in its own folders, one after another, and the sweep ends ranked (mean and spread over seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import FAST, TINY, fake_builder, wait_for
from training import paths, sweeps
from training.engine.worker import Worker
from training.lab_models import Sweep
from training.models import SessionStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def test_a_sweep_of_four_tiny_trials_completes_ranked(fetch_block, researcher):
    # Two settings x two seeds. The fake trainer writes 5 success states per 1000-frame epoch, so a
    # skill needing 10 takes 2 epochs and one needing 20 takes 4: "frames to complete" ranks them.
    sweep = sweeps.create(
        fetch_block, owner=researcher, method="grid", metric="frames", seeds=[1, 2],
        space={"min_success_states": [20, 10], "learning_rate": [3e-4]}, base=TINY,
    )
    worker = Worker(slots=2, worker_id="sweep-worker", poll_interval=0.05,
                    orchestrator_options={"command_builder": fake_builder(), "timings": FAST})
    worker.start()
    try:
        assert wait_for(lambda: Sweep.objects.get(pk=sweep.pk).status == Sweep.Status.COMPLETED, 180, 0.2)
    finally:
        worker.stop(grace=5)

    trials = list(sweep.trials.select_related("session").order_by("number"))
    assert [t.session.status for t in trials] == [SessionStatus.COMPLETED] * 4
    # One at a time, in order (the task trains one session at a time, and so does a sweep).
    for earlier, later in zip(trials, trials[1:], strict=False):
        assert earlier.session.finished_at <= later.session.started_at
    best, worst = sweeps.ranking(sweep)
    assert best.params == {"min_success_states": 10, "learning_rate": 3e-4}
    assert (best.rank, best.mean, best.std) == (1, 6000.0, 0.0)  # 3 skills x 2 epochs x 1000 frames, both seeds
    assert (worst.rank, worst.mean) == (2, 12000.0)

    # Each trial trained in its own workspace, with its own settings and seed; the task's own
    # folders were never touched.
    for trial in trials:
        run = trial.session.skill_runs.get(order=0)
        assert f"@workspaces/sweep-{sweep.pk}-trial-{trial.number}/" in run.run_dir
        spec = json.loads((Path(run.run_dir) / "spec.json").read_text())
        assert (spec["seed"], spec["ppo"], spec["min_success_states"]) == (
            trial.seed, {"learning_rate": 3e-4}, trial.params["min_success_states"])
        assert paths.has_policy(run.skill, trial.session.workspace)
    for skill in fetch_block.skills.all():
        assert paths.count_success_states(paths.success_dir(skill)) == 0
        assert not paths.has_policy(skill)
