"""Who may call the API: tokens for scripts, session cookie + CSRF for browsers, nobody anonymous."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.factories import api_url, csrf_headers
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "status"),
    ("post", "start"),
    ("post", "cancel"),
    ("get", "progress/1"),
]


@pytest.mark.parametrize(("method", "action"), ENDPOINTS)
def test_anonymous_gets_401_json_not_a_login_redirect(fetch_block, method, action):
    response = getattr(Client(), method)(api_url(fetch_block, action))

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(("method", "action"), ENDPOINTS)
def test_anonymous_learns_nothing_even_about_unknown_tasks(db, method, action):
    response = getattr(Client(), method)(api_url("no_such_task", action))

    assert response.status_code == 401


@pytest.mark.parametrize(("method", "action"), ENDPOINTS)
def test_bad_token_gets_401(fetch_block, method, action):
    client = Client(headers={"Authorization": "Bearer genhrl_not-a-real-token"})

    response = getattr(client, method)(api_url(fetch_block, action))

    assert response.status_code == 401
    assert "token" in response.json()["detail"]


def test_bad_token_is_refused_even_with_a_valid_session(fetch_block, researcher):
    client = Client(headers={"Authorization": "Bearer genhrl_wrong"})
    client.force_login(researcher)

    assert client.get(api_url(fetch_block, "status")).status_code == 401


def test_token_reads_status(fetch_block, token_client):
    response = token_client.get(api_url(fetch_block, "status"))

    assert response.status_code == 200
    assert response.json()["task"] == "fetch_block"


def test_token_starts_without_csrf(fetch_block, token_client, researcher):
    response = token_client.post(api_url(fetch_block, "start"), {"max_time": 1}, content_type="application/json")

    assert response.status_code == 201
    assert fetch_block.training_sessions.get().owner == researcher


def test_token_use_is_recorded(fetch_block, token_client):
    token_client.get(api_url(fetch_block, "status"))

    assert ApiToken.objects.get().last_used_at is not None


def test_revoked_token_gets_401(fetch_block, token_client):
    ApiToken.objects.all().delete()

    assert token_client.get(api_url(fetch_block, "status")).status_code == 401


def test_token_of_an_inactive_user_gets_401(fetch_block, token_client, researcher):
    researcher.is_active = False
    researcher.save(update_fields=["is_active"])

    assert token_client.get(api_url(fetch_block, "status")).status_code == 401


def test_session_cookie_reads_status(fetch_block, browser_client):
    assert browser_client.get(api_url(fetch_block, "status")).status_code == 200


def test_session_cookie_post_without_csrf_token_is_refused(fetch_block, browser_client):
    response = browser_client.post(api_url(fetch_block, "start"), {}, content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not fetch_block.training_sessions.exists()


def test_session_cookie_post_with_csrf_token_starts(fetch_block, browser_client):
    response = browser_client.post(
        api_url(fetch_block, "start"), json.dumps({"max_time": 1}), content_type="application/json",
        headers=csrf_headers(browser_client),
    )

    assert response.status_code == 201


def test_session_cookie_cancel_without_csrf_token_is_refused(fetch_block, browser_client, queue):
    session = queue(fetch_block)

    response = browser_client.post(api_url(fetch_block, "cancel"))

    assert response.status_code == 403
    session.refresh_from_db()
    assert session.status == "queued"
