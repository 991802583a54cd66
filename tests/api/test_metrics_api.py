"""The metrics and comparison API (issue 13a): a run's tags and series from its real TensorBoard
files, and two real sessions compared (their config difference), with bad input refused."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _run_id(session) -> int:
    return session.skill_runs.get().pk


def test_a_runs_tags_and_a_downsampled_series(token_client: Client, compared_sessions) -> None:
    run_id = _run_id(compared_sessions[0])
    tags = token_client.get(f"/api/runs/{run_id}/metrics")
    assert tags.status_code == 200, tags.content
    body = tags.json()
    assert body["skill"] == "go_to_block" and body["status"] == "completed"
    assert {"rewards/step", "losses/c_loss", "info/last_lr"} <= set(body["tags"])
    series = token_client.get(f"/api/runs/{run_id}/metrics/series", {"tag": "rewards/step"}).json()
    assert series["tag"] == "rewards/step" and series["total_points"] == len(series["value"]) >= 3
    assert len(series["step"]) == len(series["wall_time"]) == len(series["value"])
    few = token_client.get(f"/api/runs/{run_id}/metrics/series", {"tag": "rewards/step", "max_points": 16}).json()
    assert len(few["value"]) <= 16


def test_comparing_two_real_sessions_shows_their_config_difference(token_client: Client, compared_sessions) -> None:
    first, second = compared_sessions
    answer = token_client.get("/api/compare", {"sessions": f"{first.pk},{second.pk}"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [s["id"] for s in body["sessions"]] == [first.pk, second.pk]
    rows = {row["option"]: row for row in body["config"]}
    assert rows["seed"] == {"option": "seed", "label": "Random seed", "values": [1, 2], "differs": True}
    assert rows["num_envs"]["values"] == [64, 128] and rows["num_envs"]["differs"]
    assert not rows["min_success_states"]["differs"] and not rows["task"]["differs"]
    (skill,) = body["skills"]
    assert skill["skill"] == "go_to_block"
    assert [r["run_id"] for r in skill["runs"]] == [_run_id(first), _run_id(second)]
    assert all(r["frames"] > 0 and r["best_reward"] is not None for r in skill["runs"])
    assert body["urls"]["page"] == f"/training/compare/?sessions={first.pk},{second.pk}"


@pytest.mark.parametrize("sessions", ["", "1", "1,2,3,4,5", "a,b", "1,,2"])
def test_bad_session_lists_are_refused_with_400(token_client: Client, sessions: str) -> None:
    answer = token_client.get("/api/compare", {"sessions": sessions})
    assert answer.status_code == 400
    assert "sessions" in answer.json()["errors"]


def test_unknown_runs_tags_and_sessions_are_404_and_strangers_401(token_client: Client, compared_sessions) -> None:
    run_id = _run_id(compared_sessions[0])
    assert token_client.get(f"/api/runs/{run_id}/metrics/series", {"tag": "no/such"}).status_code == 404
    assert token_client.get("/api/runs/999999/metrics").status_code == 404
    assert token_client.get("/api/compare", {"sessions": f"{compared_sessions[0].pk},999999"}).status_code == 404
    assert Client().get(f"/api/runs/{run_id}/metrics").status_code == 401
    assert Client().get("/api/compare", {"sessions": "1,2"}).status_code == 401
