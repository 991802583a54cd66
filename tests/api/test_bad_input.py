"""Bad input gets a clear 4xx and changes nothing; under /api/ every answer is JSON.

Found by attacking the portal (issue 9): NUL bytes reached PostgreSQL (500 there only), a huge
integer overflowed a float, a deeply nested body overflowed the parser, and Django's own 404/400
pages answered HTML to scripts.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.factories import api_url
from training.models import TrainingSession

pytestmark = pytest.mark.django_db


def start(client: Client, task, body: str | bytes, **extra):
    return client.post(api_url(task, "start"), body, content_type="application/json", **extra)


@pytest.mark.parametrize("path", [
    "/api/tasks/fetch%00block/training/status?robot=PointMass",
    "/api/tasks/fetch_block/training/status?robot=%00",
    "/api/tasks/fetch_block/training/progress/1?robot=Point%00Mass",
])
def test_nul_bytes_in_api_names_are_a_json_404(token_client, fetch_block, path):
    response = token_client.get(path)
    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize("path", [
    "/tasks/PointMass/%00/",
    "/tasks/Point%00Mass/fetch_block/",
    "/training/tasks/PointMass/fetch%00block/panel/",
    "/training/tasks/PointMass/fetch%00block/start/",
    "/tasks/?robot=%00",
])
def test_nul_bytes_in_page_names_are_not_a_server_error(researcher_client, fetch_block, path):
    response = researcher_client.get(path)
    assert response.status_code in (200, 404)  # the task list ignores an unknown robot filter


@pytest.mark.parametrize(("body", "field"), [
    (json.dumps({"max_time": 10**400}), "max_time"),
    ('{"num_envs": "\u0661\u0662\u0668"}', "num_envs"),  # Arabic-Indic digits: 128 to int()
    ('{"num_envs": "1_0_0"}', "num_envs"),
    ('{"num_envs": "128"}', "num_envs"),  # JSON numbers only
    ('{"video": "yes"}', "video"),
    ("[" * 100_000 + "]" * 100_000, "body"),
])
def test_malformed_options_are_a_400_and_start_nothing(token_client, fetch_block, body, field):
    response = start(token_client, fetch_block, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not TrainingSession.objects.exists()


def test_every_api_answer_is_json(token_client, fetch_block, settings):
    for path in ("/api/tasks/fetch_block/training/progress/abc", "/api/tasks/a%2Fb/training/status", "/api/nowhere"):
        response = token_client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json" and response.json()["detail"], path
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    big = start(token_client, fetch_block, json.dumps({"padding": "x" * 4096}))
    assert big.status_code == 400 and big["Content-Type"] == "application/json"
    assert not TrainingSession.objects.exists()


def test_a_server_error_under_the_api_is_json(researcher, fetch_block, monkeypatch):
    from tests.factories import make_researcher
    from training.api import views
    from training.tokens import ApiToken

    def broken(task):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "task_status", broken)
    client = Client(raise_request_exception=False, headers={
        "Authorization": f"Bearer {ApiToken.issue(make_researcher(researcher))[1]}",
    })
    response = client.get(api_url(fetch_block, "status"))
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error; the server log has the details"}


def test_the_openapi_document_states_the_limits_and_the_stream_events(client):
    document = client.get("/api/openapi.json").json()
    start_body = document["paths"]["/api/tasks/{task_name}/training/start"]["post"]["requestBody"]
    options = start_body["content"]["application/json"]["schema"]["properties"]
    num_envs = options["num_envs"]["anyOf"][0]
    assert (num_envs["minimum"], num_envs["maximum"]) == (16, 8192)
    assert options["max_frames"]["anyOf"][0]["minimum"] == 1
    assert options["max_time"]["anyOf"][0]["exclusiveMinimum"] == 0
    assert options["backend"]["anyOf"][0]["enum"] == ["embedded"]  # Isaac Lab is not set up here
    stream = document["paths"]["/api/tasks/{task_name}/training/progress/{session_id}"]["get"]
    events = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]["oneOf"]
    assert [e["properties"]["event"]["const"] for e in events] == ["progress", "done", "notice"]
    assert events[0]["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/ProgressSnapshot"}
