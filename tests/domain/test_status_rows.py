"""skill_status_rows and session_snapshot: what `status`, the status API and SSE show."""

from __future__ import annotations

import json

import pytest

from tests.factories import give_states, orchestrate
from training import queries
from training.models import SessionStatus
from training.snapshots import progress_snapshot

pytestmark = [pytest.mark.django_db]


def test_rows_before_any_training(patrol):
    rows = queries.skill_status_rows(patrol)

    assert [r["skill"] for r in rows][:2] == ["reach_red_beacon", "reach_blue_beacon"]
    assert len(rows) == 7
    first = rows[0]
    assert first == {
        "skill": "reach_red_beacon", "skill_id": first["skill_id"], "order": 0, "level": 0,
        "kind": "primitive", "is_primitive": True, "defined": True, "status": "pending",
        "success_states": 0, "unreadable_files": 0, "min_success_states": 50, "has_policy": False,
        "last_run_at": None,
        "last_result": None, "last_error": "", "last_session_id": None, "last_run_elapsed_s": None, "todo_reason": "",
    }


@pytest.mark.training
def test_rows_after_a_failed_session(fetch_block, start):
    give_states(fetch_block.skills.get(name="go_to_block"), 10)
    session = orchestrate(start(fetch_block, skip_complete=False), "--crash-after", "1").run()
    assert session.status == SessionStatus.FAILED

    rows = {r["skill"]: r for r in queries.skill_status_rows(fetch_block)}

    block = rows["go_to_block"]
    assert block["status"] == "completed"  # its earlier states and policy still count
    assert block["last_result"] == "failed"
    assert block["success_states"] > 10
    assert block["min_success_states"] == 10  # of the latest session
    assert block["last_error"] == "the trainer raised an exception:"
    assert block["last_run_at"] is not None
    assert rows["go_to_goal"]["status"] == "cancelled"
    assert rows["go_to_goal"]["last_session_id"] == session.pk


@pytest.mark.training
def test_snapshot_is_complete_and_json_ready(fetch_block, start):
    session = orchestrate(start(fetch_block)).run()

    snapshot = progress_snapshot(session)

    json.dumps(snapshot)
    assert snapshot["status"] == "completed" and snapshot["stage"] == "complete"
    assert snapshot["totals"] == {
        "total": 3, "completed": 3, "failed": 0, "training": 0, "pending": 0, "cancelled": 0, "remaining": 0,
    }
    assert snapshot["progress"] == 1.0
    assert snapshot["source_time"] is not None
    assert [s["name"] for s in snapshot["skills"]] == ["go_to_block", "go_to_goal", "fetch_block"]
    first = snapshot["skills"][0]
    assert first["frames"] > 0 and first["best_reward"] is not None and first["success_states"] >= 10


@pytest.mark.training
def test_metrics_and_log_tail_are_stored(fetch_block, start):
    session = orchestrate(start(fetch_block, min_success_states=25)).run()
    run = session.skill_runs.get(order=0)

    tags = set(run.metric_points.values_list("tag", flat=True))
    assert {"mean_reward", "success_states", "success_rate", "fps"} <= tags
    steps = list(run.metric_points.filter(tag="mean_reward").values_list("step", flat=True))
    assert steps == sorted(steps) and len(steps) >= 2

    tail = queries.log_tail(run, limit=3)
    assert len(tail) == 3 and tail[0].seq < tail[-1].seq
    assert queries.log_tail(run, after_seq=tail[-1].seq) == []
    assert "epoch" in run.log_excerpt
