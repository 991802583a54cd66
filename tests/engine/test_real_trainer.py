"""End to end with the real trainer (rl-games on the embedded world): tiny, but real learning."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from training import paths
from training.engine.orchestrator import Orchestrator
from training.models import MetricPoint, SessionEvent, SessionStatus, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.training]

# Small enough for seconds per skill on two cores; the trainer stops itself on reaching the target.
SMALL = ["--num-envs", "64", "--min-success-states", "20", "--min-steps-primitive", "4096",
         "--min-steps-composite", "1024", "--max-time", "2", "--seed", "1"]


def test_manage_py_train_fetch_block_end_to_end(fetch_block):
    out = io.StringIO()
    call_command("train", "fetch_block", "--robot", "PointMass", *SMALL, stdout=out, stderr=io.StringIO())

    session = TrainingSession.objects.get(task=fetch_block)
    assert session.status == SessionStatus.COMPLETED, session.error
    runs = {r.skill.name: r for r in session.skill_runs.select_related("skill")}
    assert list(runs) == ["go_to_block", "go_to_goal", "fetch_block"]
    for run in runs.values():
        assert run.status == SkillStatus.COMPLETED
        assert run.exit_code == 0
        assert run.success_states >= 20
        assert run.frames > 0 and run.epochs > 0 and run.best_reward is not None
        assert paths.has_policy(run.skill)
        assert MetricPoint.objects.filter(skill_run=run, tag="mean_reward").exists()
        assert run.log_lines.exists()
    assert session.source_time is not None
    assert session.events.filter(kind=SessionEvent.Kind.STATUS, to_state="completed").exists()
    # The composite loaded its two sub-skills from their published policies.
    spec = json.loads((Path(runs["fetch_block"].run_dir) / "spec.json").read_text())
    assert [s["policy_dir"] for s in spec["sub_skills"]] == [
        str(paths.policy_dir(runs[n].skill).resolve()) for n in ("go_to_block", "go_to_goal")
    ]
    # go_to_goal starts where go_to_block's successes left the world.
    assert runs["go_to_goal"].start_states_from == runs["go_to_block"].skill
    assert runs["go_to_goal"].start_states > 0
    assert "All 3 skills trained." in out.getvalue()


def test_cancel_flushes_the_real_trainers_buffered_success_states(fetch_block):
    from tests.factories import FAST, group_gone
    from training import services

    seen: dict[str, int] = {}

    def cancel_once_states_are_reported(orch) -> None:
        training = orch.training()
        # The trainer buffers states for up to a few seconds; its records count the buffer too.
        if training and "pgid" not in seen and training[0].run.success_states > 0:
            seen["pgid"] = training[0].pgid
            seen["reported"] = training[0].run.success_states
            services.request_cancel(orch.session, actor="user:someone")

    session = services.start_session(
        fetch_block, {"num_envs": 64, "min_success_states": 1_000_000, "min_steps_primitive": 0, "max_time": 2},
        actor="test",
    )
    session = Orchestrator(
        session, actor="test", timings=FAST, on_update=cancel_once_states_are_reported
    ).run()

    assert session.status == SessionStatus.CANCELLED
    run = session.skill_runs.get(order=0)
    assert run.status == SkillStatus.CANCELLED
    on_disk = paths.count_success_states(paths.success_dir(run.skill))
    assert on_disk >= seen["reported"] > 0
    assert run.success_states == on_disk
    assert group_gone(seen["pgid"])
