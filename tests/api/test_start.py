"""POST /api/tasks/{task}/training/start: 201 with the session's URLs, 409 when busy, 400 with field errors."""

from __future__ import annotations

import dataclasses

import pytest

from tests.factories import api_url, one_skill_task
from training.config import NOT_API_OPTIONS, TrainingConfig
from training.models import SessionStatus

pytestmark = pytest.mark.django_db

EVERY_OPTION = {
    "backend": "embedded",
    "max_time": 2.5,
    "min_success_states": 20,
    "num_envs": 64,
    "seed": 7,
    "new_run": True,
    "skip_complete": False,
    "headless": False,
    "video": True,
    "video_interval": 500,
    "video_length": 50,
    "min_steps_primitive": 4096,
    "min_steps_composite": 1024,
    "max_frames": 100_000,
    "learning_rate": 3e-4,
    "entropy_coef": 0.005,
    "horizon_length": 32,
    "mini_epochs": 3,
}


def start(client, task, body=None, robot=None):
    return client.post(api_url(task, "start", robot), body if body is not None else {},
                       content_type="application/json")


def test_start_queues_a_session_and_answers_201_with_its_urls(fetch_block, token_client, researcher):
    response = start(token_client, fetch_block, {"max_time": 1})

    assert response.status_code == 201
    data = response.json()
    session = fetch_block.training_sessions.get()
    assert data["session_id"] == session.pk
    assert data["status"] == SessionStatus.QUEUED
    assert data["queue_position"] == 1
    assert session.owner == researcher
    assert session.events.get().actor == "user:researcher"
    assert data["urls"] == {
        "status": "/api/tasks/fetch_block/training/status?robot=PointMass",
        "progress": f"/api/tasks/fetch_block/training/progress/{session.pk}?robot=PointMass",
        "cancel": "/api/tasks/fetch_block/training/cancel?robot=PointMass",
        "page": f"/training/sessions/{session.pk}/",
    }


def test_every_option_of_the_config_table_is_accepted(fetch_block, token_client):
    assert set(EVERY_OPTION) == {f.name for f in dataclasses.fields(TrainingConfig)} - set(NOT_API_OPTIONS)

    response = start(token_client, fetch_block, EVERY_OPTION)

    assert response.status_code == 201, response.json()
    assert fetch_block.training_sessions.get().config == {**EVERY_OPTION, "flat": False, "baseline_of": None}


def test_an_empty_body_takes_every_default(fetch_block, token_client):
    response = token_client.post(api_url(fetch_block, "start"), "", content_type="application/json")

    assert response.status_code == 201
    config = fetch_block.training_sessions.get().config
    assert config == TrainingConfig.defaults("embedded").to_json()


def test_second_start_gets_409_naming_the_active_session(fetch_block, token_client):
    first = start(token_client, fetch_block).json()

    response = start(token_client, fetch_block)

    assert response.status_code == 409
    data = response.json()
    assert data["session_id"] == first["session_id"]
    assert data["status"] == "queued"
    assert data["urls"]["progress"] == first["urls"]["progress"]
    assert fetch_block.training_sessions.count() == 1


def test_another_task_may_start_while_one_trains(fetch_block, patrol, token_client):
    assert start(token_client, fetch_block).status_code == 201

    response = start(token_client, patrol)

    assert response.status_code == 201
    assert response.json()["queue_position"] == 2


def test_invalid_options_get_400_with_errors_by_field(fetch_block, token_client):
    response = start(token_client, fetch_block, {
        "num_envs": 1, "seed": -1, "headless": "maybe", "max_time": "soon", "colour": "red",
    })

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"num_envs", "seed", "headless", "max_time", "colour"}
    assert errors["num_envs"] == ["must be between 16 and 8192"]
    assert errors["colour"] == ["unknown option"]
    assert not fetch_block.training_sessions.exists()


def test_isaaclab_without_a_root_is_a_field_error(fetch_block, token_client, settings):
    settings.GENHRL_ISAACLAB_ROOT = None

    response = start(token_client, fetch_block, {"backend": "isaaclab"})

    assert response.status_code == 400
    assert "GENHRL_ISAACLAB_ROOT" in response.json()["errors"]["backend"][0]


@pytest.mark.parametrize("body", ["[1, 2]", "not json", '"text"'])
def test_a_body_that_is_not_a_json_object_gets_400(fetch_block, token_client, body):
    response = token_client.post(api_url(fetch_block, "start"), body, content_type="application/json")

    assert response.status_code == 400
    assert "body" in response.json()["errors"]


def test_unknown_task_gets_404(db, token_client):
    assert start(token_client, "no_such_task").status_code == 404


def test_task_names_are_case_sensitive(fetch_block, token_client):
    response = start(token_client, "Fetch_Block", robot="PointMass")

    assert response.status_code == 404
    assert not fetch_block.training_sessions.exists()


def test_robot_may_be_left_out_when_the_name_is_unique(fetch_block, token_client):
    assert start(token_client, "fetch_block").status_code == 201


def test_robot_is_needed_when_two_robots_share_a_name(fetch_block, token_client):
    twin = one_skill_task("fetch_block", robot="G1")

    response = start(token_client, "fetch_block")

    assert response.status_code == 400
    assert "G1, PointMass" in response.json()["errors"]["robot"][0]
    assert start(token_client, "fetch_block", robot="G1").status_code == 201
    assert twin.training_sessions.count() == 1
    assert not fetch_block.training_sessions.exists()


def test_wrong_robot_gets_404(fetch_block, token_client):
    assert start(token_client, "fetch_block", robot="G1").status_code == 404


def test_a_flat_baseline_is_not_a_start_option_of_the_api(fetch_block, token_client):
    response = start(token_client, fetch_block, {"flat": True, "baseline_of": 1})

    assert response.status_code == 400
    assert {"flat", "baseline_of"} <= set(response.json()["errors"])
    assert not fetch_block.training_sessions.exists()
