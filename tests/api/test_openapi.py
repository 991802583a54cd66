"""The OpenAPI document of the JSON API and its docs page."""

from __future__ import annotations

import dataclasses

import pytest
from django.test import Client

from training.config import NOT_API_OPTIONS, TrainingConfig

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/tasks/{task_name}/training/status": "get",
    "/api/tasks/{task_name}/training/start": "post",
    "/api/tasks/{task_name}/training/cancel": "post",
    "/api/tasks/{task_name}/training/resume": "post",
    "/api/tasks/{task_name}/training/progress/{session_id}": "get",
}


def test_openapi_document_describes_every_endpoint(db):
    response = Client().get("/api/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    for path, method in PATHS.items():
        assert method in document["paths"][path], path
        operation = document["paths"][path][method]
        assert {"BearerToken": []} in operation["security"]
        assert "401" in operation["responses"]
    assert set(document["components"]["securitySchemes"]) == {"BearerToken", "SessionCookie"}


def test_start_body_documents_every_training_option(db):
    document = Client().get("/api/openapi.json").json()
    start = document["paths"]["/api/tasks/{task_name}/training/start"]["post"]

    schema = start["requestBody"]["content"]["application/json"]["schema"]
    # Every option but a flat baseline's, which starts from its session's page or the CLI.
    assert set(schema["properties"]) == {f.name for f in dataclasses.fields(TrainingConfig)} - set(NOT_API_OPTIONS)
    assert {"201", "400", "404", "409"} <= set(start["responses"])


def test_progress_stream_is_documented_as_event_stream(db):
    document = Client().get("/api/openapi.json").json()
    progress = document["paths"]["/api/tasks/{task_name}/training/progress/{session_id}"]["get"]

    assert "text/event-stream" in progress["responses"]["200"]["content"]
    snapshot = document["components"]["schemas"]["ProgressSnapshot"]["properties"]
    assert {"session_id", "task", "robot", "status", "stage", "progress", "current_skill", "skills",
            "elapsed_s", "eta_s", "error", "source_time"} <= set(snapshot)


def test_docs_page_uses_no_cdn(db):
    response = Client().get("/api/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn." not in html
