"""Permission matrix of every state-changing API endpoint: owner, other user, staff, anonymous.

Each is run with an API token and with a browser session (CSRF enforced), because both paths
set `request.user` differently and each must reach the same rule.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import ANONYMOUS, AUTHS, OTHER, OWNER, STAFF, api_url
from training import services
from training.models import SessionEvent, SessionStatus, TrainingSession
from training.tokens import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

# Who may start: researchers (the owner fixture) and staff; a plain account is refused.
START = {OWNER: 201, OTHER: 403, STAFF: 201, ANONYMOUS: 401}
CANCEL = {OWNER: 200, OTHER: 403, STAFF: 200, ANONYMOUS: 401}
RESUME = {OWNER: 201, OTHER: 403, STAFF: 201, ANONYMOUS: 401}
ACTOR_NAMES = {OWNER: "user:researcher", STAFF: "user:staff"}


def post(client_for, actor, auth, url):
    client, headers = client_for(actor, auth)
    return client.post(url, "", content_type="application/json", headers=headers)


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("actor", list(START))
def test_start_requires_the_start_permission(reach_beacon, client_for, actor, auth):
    response = post(client_for, actor, auth, api_url(reach_beacon, "start"))

    assert response.status_code == START[actor], response.content
    if response.status_code == 201:
        session = TrainingSession.objects.get()
        assert session.owner.username == {OWNER: "researcher", STAFF: "staff"}[actor]
        created = session.events.get()
        assert (created.actor, created.to_state) == (ACTOR_NAMES[actor], SessionStatus.QUEUED)
        assert created.time is not None
    else:
        assert not TrainingSession.objects.exists()


def test_start_refusal_names_the_group_to_ask_for(reach_beacon, client_for):
    response = post(client_for, OTHER, "token", api_url(reach_beacon, "start"))

    assert "Researchers" in response.json()["detail"]


def test_another_researcher_may_start(reach_beacon, other_researcher):
    client = Client(headers={"Authorization": f"Bearer {ApiToken.issue(other_researcher)[1]}"})

    assert client.post(api_url(reach_beacon, "start"), "", content_type="application/json").status_code == 201


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("actor", list(CANCEL))
def test_cancel_is_for_the_owner_and_staff(queued, client_for, actor, auth):
    response = post(client_for, actor, auth, api_url(queued.task, "cancel"))

    assert response.status_code == CANCEL[actor], response.content
    queued.refresh_from_db()
    if response.status_code == 200:
        assert queued.status == SessionStatus.CANCELLED
        assert queued.cancel_requested_by == ACTOR_NAMES[actor]
        request = queued.events.get(kind=SessionEvent.Kind.CANCEL_REQUESTED)
        assert request.actor == ACTOR_NAMES[actor] and request.time is not None
    else:
        assert queued.status == SessionStatus.QUEUED
        assert not queued.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED).exists()


def test_cancel_by_another_researcher_is_403(queued, other_researcher):
    client = Client(headers={"Authorization": f"Bearer {ApiToken.issue(other_researcher)[1]}"})

    assert client.post(api_url(queued.task, "cancel")).status_code == 403


@pytest.mark.parametrize("auth", AUTHS)
@pytest.mark.parametrize("actor", list(RESUME))
def test_resume_is_for_the_owner_and_staff(cancelled, client_for, actor, auth):
    before = TrainingSession.objects.count()

    response = post(client_for, actor, auth, api_url(cancelled.task, "resume"))

    assert response.status_code == RESUME[actor], response.content
    if response.status_code == 201:
        resumed = TrainingSession.objects.get(pk=response.json()["session_id"])
        assert resumed.is_active and resumed.resumed_from_id == cancelled.pk
        assert resumed.owner.username == {OWNER: "researcher", STAFF: "staff"}[actor]
        created = resumed.events.get(to_state=SessionStatus.QUEUED)
        assert created.actor == ACTOR_NAMES[actor] and created.time is not None
        assert cancelled.events.filter(kind=SessionEvent.Kind.NOTE, actor=ACTOR_NAMES[actor]).exists()
    else:
        assert TrainingSession.objects.count() == before


def test_resume_while_training_is_409(queued, client_for):
    response = post(client_for, OWNER, "token", api_url(queued.task, "resume"))

    assert response.status_code == 409
    assert response.json()["session_id"] == queued.pk


def test_resume_without_an_unfinished_session_is_404(reach_beacon, client_for):
    response = post(client_for, OWNER, "token", api_url(reach_beacon, "resume"))

    assert response.status_code == 404
    assert "to resume" in response.json()["detail"]


def test_resume_after_a_completed_session_is_404(cancelled, client_for):
    TrainingSession.objects.filter(pk=cancelled.pk).update(status=SessionStatus.COMPLETED)

    assert post(client_for, OWNER, "token", api_url(cancelled.task, "resume")).status_code == 404


def test_resume_is_404_once_the_resumed_session_completed(cancelled, client_for):
    assert post(client_for, OWNER, "token", api_url(cancelled.task, "resume")).status_code == 201
    services.request_cancel(TrainingSession.objects.get(resumed_from=cancelled), actor="test")
    TrainingSession.objects.filter(resumed_from=cancelled).update(status=SessionStatus.COMPLETED)

    assert post(client_for, OWNER, "token", api_url(cancelled.task, "resume")).status_code == 404


def test_resume_of_an_unknown_task_is_404(db, client_for):
    client, headers = client_for(OWNER, "token")

    assert client.post("/api/tasks/nope/training/resume", headers=headers).status_code == 404


def test_openapi_documents_resume_and_the_403s(db, client_for):
    client, _ = client_for(ANONYMOUS)
    paths = client.get("/api/openapi.json").json()["paths"]

    resume = paths["/api/tasks/{task_name}/training/resume"]["post"]
    assert {"201", "401", "403", "404", "409"} <= set(resume["responses"])
    assert {"BearerToken": []} in resume["security"]
    for action in ("start", "cancel"):
        assert "403" in paths[f"/api/tasks/{{task_name}}/training/{action}"]["post"]["responses"]
