"""Notifications: when an opted-in owner's session completes or fails, an e-mail and a webhook
(JSON, Slack-compatible `text`) go out from the outbox, retried with backoff, failures logged."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from tests.factories import TINY, WebhookServer
from training import notifications, services
from training.lab_models import Notification
from training.models import SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.GENHRL_PUBLIC_URL = "https://portal.example.org"
    settings.GENHRL_NOTIFY_ATTEMPTS = 3
    settings.GENHRL_NOTIFY_BACKOFF_SECONDS = 30


def ended(task, owner, status: str = SessionStatus.COMPLETED, error: str = "") -> TrainingSession:
    session = services.start_session(task, TINY, owner=owner)
    session.transition_to(SessionStatus.RUNNING, actor="test", worker_id="w", heartbeat_at=timezone.now())
    session.transition_to(status, actor="test", error=error)
    return session


def test_a_webhook_reaches_a_server_on_loopback_after_a_retry(researcher, fetch_block, caplog):
    with WebhookServer(500) as server:
        notifications.save_settings(researcher, email=False, webhook_url=server.url, on_completed=True, on_failed=True)
        session = ended(fetch_block, researcher)

        (message,) = notifications.enqueue_due()
        with caplog.at_level(logging.WARNING, logger="training.notifications"):
            (first,) = notifications.deliver_due()
        assert first.status == Notification.Status.PENDING and first.attempts == 1
        assert "HTTPError" in first.last_error and "retrying" in caplog.text  # logged
        assert notifications.deliver_due() == []  # not due yet: it backs off
        later = timezone.now() + timedelta(seconds=31)
        (second,) = notifications.deliver_due(now=later)

    assert second.status == Notification.Status.SENT
    assert len(server.received) == 2
    request = server.received[-1]
    assert request["headers"]["Content-Type"] == "application/json"
    data = request["json"]
    assert data["text"].startswith(f"Training fetch_block (PointMass) completed: session #{session.pk}")
    assert data["text"].endswith(f"https://portal.example.org/training/sessions/{session.pk}/")
    assert data["event"] == "session.completed"
    assert data["session"]["url"] == f"https://portal.example.org/training/sessions/{session.pk}/"
    assert notifications.enqueue_due() == []  # once per session and channel


def test_an_email_says_how_it_ended_and_links_to_it(researcher, fetch_block):
    notifications.save_settings(researcher, email=True, webhook_url="", on_completed=True, on_failed=True)
    session = ended(fetch_block, researcher, SessionStatus.FAILED, error="go_to_block: time limit of 1 min reached")

    notifications.enqueue_due()
    notifications.deliver_due()

    (sent,) = mail.outbox
    assert sent.to == ["researcher@example.org"]
    assert sent.subject == f"[GenHRL] fetch_block: training failed (session #{session.pk})"
    assert "Error: go_to_block: time limit of 1 min reached" in sent.body
    assert f"https://portal.example.org/training/sessions/{session.pk}/" in sent.body


def test_a_delivery_that_keeps_failing_is_logged_and_given_up(researcher, fetch_block, caplog):
    notifications.save_settings(researcher, email=False, webhook_url="http://127.0.0.1:9/nothing-listens",
                                on_completed=True, on_failed=True)
    ended(fetch_block, researcher)
    notifications.enqueue_due()

    now = timezone.now()
    with caplog.at_level(logging.WARNING, logger="training.notifications"):
        for step in range(3):
            (message,) = notifications.deliver_due(now=now)  # never raises
            now = message.next_attempt_at + timedelta(seconds=1)
            assert message.attempts == step + 1
    assert message.status == Notification.Status.FAILED
    assert "failed for good after 3 attempts" in caplog.text
    assert notifications.deliver_due(now=now + timedelta(days=1)) == []
    assert [notifications.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 120, 480]


def test_redirects_are_not_followed(researcher, fetch_block):
    with WebhookServer(302) as server:
        notifications.save_settings(researcher, email=False, webhook_url=server.url, on_completed=True, on_failed=True)
        ended(fetch_block, researcher)
        notifications.enqueue_due()
        (message,) = notifications.deliver_due()
    assert message.status == Notification.Status.PENDING and "302" in message.last_error


def test_only_what_the_owner_asked_for_since_they_asked(researcher, other_user, fetch_block, patrol):
    before = ended(fetch_block, researcher)  # ended before they opted in: never announced
    TrainingSession.objects.filter(pk=before.pk).update(finished_at=timezone.now() - timedelta(minutes=1))
    notifications.save_settings(researcher, email=True, webhook_url="", on_completed=False, on_failed=True)
    ended(patrol, researcher)  # completed, but they only want failures
    cancelled = services.start_session(fetch_block, TINY, owner=researcher)
    services.request_cancel(cancelled, actor="test")  # they cancelled it themselves
    ended(fetch_block, other_user, SessionStatus.FAILED)  # someone else's
    interrupted = ended(patrol, researcher, SessionStatus.INTERRUPTED)

    assert [(m.session_id, m.event) for m in notifications.enqueue_due()] == [(interrupted.pk, "interrupted")]


def test_one_sender_wins_a_message(researcher, fetch_block):
    notifications.save_settings(researcher, email=True, webhook_url="", on_completed=True, on_failed=True)
    ended(fetch_block, researcher)
    (message,) = notifications.enqueue_due()

    assert notifications._claim(message, timezone.now())
    stale = Notification.objects.get(pk=message.pk)
    stale.status, stale.attempts = Notification.Status.PENDING, 0  # what a second sender read earlier
    assert not notifications._claim(stale, timezone.now())


def test_only_http_webhooks_are_accepted():
    for url in ("file:///etc/passwd", "ftp://example.org/x", "http://", "javascript:alert(1)"):
        with pytest.raises(notifications.InvalidWebhook):
            notifications.check_webhook(url)
    assert notifications.check_webhook(" https://hooks.slack.com/services/T/B/X ") == "https://hooks.slack.com/services/T/B/X"
