"""GET /api/tasks/{task}/training/status: the active session, every skill, and totals."""

from __future__ import annotations

import pytest

from tests.factories import api_url, give_states, one_skill_task
from training import services
from training.api.schemas import ProgressSnapshot, TaskStatus

pytestmark = pytest.mark.django_db


def status(client, task):
    response = client.get(api_url(task, "status"))
    assert response.status_code == 200, response.content
    return response.json()


def test_idle_task_lists_every_skill_in_training_order(fetch_block, token_client):
    data = status(token_client, fetch_block)

    TaskStatus.model_validate(data)
    assert (data["task"], data["robot"], data["training"], data["session"]) == (
        "fetch_block", "PointMass", False, None
    )
    assert [s["name"] for s in data["skills"]] == ["go_to_block", "go_to_goal", "fetch_block"]
    assert [s["kind"] for s in data["skills"]] == ["primitive", "primitive", "composite"]
    assert {s["status"] for s in data["skills"]} == {"pending"}
    assert data["totals"] == {"total": 3, "completed": 0, "pending": 3}


def test_totals_count_skills_with_enough_success_states_and_a_policy(fetch_block, token_client):
    give_states(fetch_block.skills.get(name="go_to_block"), 60)
    give_states(fetch_block.skills.get(name="go_to_goal"), 10)

    data = status(token_client, fetch_block)

    by_name = {s["name"]: s for s in data["skills"]}
    assert by_name["go_to_block"]["status"] == "completed"
    assert by_name["go_to_block"]["success_states"] == 60
    assert by_name["go_to_goal"]["success_states"] == 10
    assert by_name["go_to_goal"]["min_success_states"] == 50
    assert data["totals"] == {"total": 3, "completed": 1, "pending": 2}


def test_undefined_skills_are_listed_but_not_counted(db, token_client):
    task = one_skill_task("with_gap")
    task.skills.create(name="never_written", level=0, order=1, defined=False)

    data = status(token_client, task)

    assert [s["defined"] for s in data["skills"]] == [True, False]
    assert data["totals"] == {"total": 1, "completed": 0, "pending": 1}


def test_active_session_is_a_full_snapshot_with_its_place_in_the_queue(fetch_block, patrol, token_client, queue):
    first = queue(patrol)
    session = queue(fetch_block, min_success_states=20)

    data = status(token_client, fetch_block)

    snapshot = data["session"]
    ProgressSnapshot.model_validate(snapshot)
    assert snapshot["session_id"] == session.pk
    assert (snapshot["status"], snapshot["stage"], snapshot["queue_position"]) == ("queued", "initializing", 2)
    assert snapshot["progress"] == 0.0
    assert snapshot["eta_s"] is None
    # Not planned yet: the skills it will train, pending.
    assert [(s["name"], s["status"], s["min_success_states"]) for s in snapshot["skills"]] == [
        ("go_to_block", "pending", 20), ("go_to_goal", "pending", 20), ("fetch_block", "pending", 20),
    ]
    assert data["last_session"]["session_id"] == session.pk
    services.request_cancel(first, actor="test")
    assert status(token_client, fetch_block)["session"]["queue_position"] == 1


def test_finished_session_shows_as_the_last_one(fetch_block, token_client, queue):
    session = queue(fetch_block)
    services.request_cancel(session, actor="test")

    data = status(token_client, fetch_block)

    assert data["training"] is False
    assert data["session"] is None
    assert data["last_session"]["status"] == "cancelled"


def test_unknown_task_gets_404(db, token_client):
    assert token_client.get(api_url("nope", "status")).status_code == 404
