"""POST /api/tasks/{task}/training/cancel: 200 with the session now cancelling, 404 when nothing runs."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import api_url
from training import leases, services
from training.models import SessionEvent, SessionStatus
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db


def cancel(client, task):
    return client.post(api_url(task, "cancel"))


def running(session):
    claimed = leases.claim_next_session("test-worker")
    assert claimed is not None and claimed.pk == session.pk
    return claimed


def test_cancel_without_a_session_gets_404(fetch_block, token_client):
    response = cancel(token_client, fetch_block)

    assert response.status_code == 404
    assert "no queued or running session" in response.json()["detail"]


def test_cancel_of_a_finished_session_gets_404(fetch_block, token_client, queue):
    services.request_cancel(queue(fetch_block), actor="test")

    assert cancel(token_client, fetch_block).status_code == 404


def test_cancel_of_a_running_session_answers_200_cancelling(fetch_block, token_client, queue):
    session = running(queue(fetch_block))

    response = cancel(token_client, fetch_block)

    assert response.status_code == 200
    data = response.json()
    assert data["session_id"] == session.pk
    assert data["status"] == SessionStatus.CANCELLING
    assert data["cancel_requested"] is True
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLING
    assert session.cancel_requested_by == "user:researcher"
    assert session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED, actor="user:researcher").exists()


def test_cancel_of_a_queued_session_ends_it_at_once(fetch_block, token_client, queue):
    queue(fetch_block)

    response = cancel(token_client, fetch_block)

    assert response.status_code == 200
    assert response.json()["status"] == SessionStatus.CANCELLED
    assert response.json()["terminal"] is True


def test_cancel_twice_is_harmless(fetch_block, token_client, queue):
    running(queue(fetch_block))
    cancel(token_client, fetch_block)

    response = cancel(token_client, fetch_block)

    assert response.status_code == 200
    assert response.json()["status"] == SessionStatus.CANCELLING


def test_cancel_requires_owner(fetch_block, queue, other_user):
    session = running(queue(fetch_block))
    other = Client(headers={"Authorization": f"Bearer {ApiToken.issue(other_user)[1]}"})

    response = cancel(other, fetch_block)

    assert response.status_code == 403
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING


def test_staff_may_cancel_anyones_session(fetch_block, queue, staff_user):
    running(queue(fetch_block))
    staff = Client(headers={"Authorization": f"Bearer {ApiToken.issue(staff_user)[1]}"})

    response = cancel(staff, fetch_block)

    assert response.status_code == 200
    assert response.json()["status"] == SessionStatus.CANCELLING


def test_a_session_started_from_the_terminal_is_cancelled_by_staff_only(fetch_block, token_client, staff_user):
    services.start_session(fetch_block, {"max_time": 1}, actor="cli:someone")

    assert cancel(token_client, fetch_block).status_code == 403
    staff = Client(headers={"Authorization": f"Bearer {ApiToken.issue(staff_user)[1]}"})
    assert cancel(staff, fetch_block).status_code == 200
