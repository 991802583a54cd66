"""The SSE stream of a session is readable only by users allowed to view it (permissions.can_view)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from training import sse
from training.sse import SessionChannelManager, channel_for
from training.tokens import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def progress_url(session):
    return f"/api/tasks/{session.task.name}/training/progress/{session.pk}?robot={session.task.robot}"


def deny_everyone(monkeypatch):
    monkeypatch.setattr(sse, "can_view", lambda user, session: False)


def test_channel_is_readable_by_whoever_may_view_the_session(queued, researcher, other_user, staff_user):
    manager = SessionChannelManager()
    channel = channel_for(queued.pk)

    assert manager.can_read_channel(researcher, channel)
    assert manager.can_read_channel(other_user, channel)
    assert manager.can_read_channel(staff_user, channel)
    assert not manager.can_read_channel(None, channel)
    assert not manager.can_read_channel(AnonymousUser(), channel)
    assert not manager.can_read_channel(researcher, channel_for(queued.pk + 1000))
    assert not manager.can_read_channel(researcher, "other-channel")


def test_channel_manager_asks_can_view(queued, researcher, monkeypatch):
    deny_everyone(monkeypatch)

    assert not SessionChannelManager().can_read_channel(researcher, channel_for(queued.pk))


def test_inactive_user_may_not_read(queued, researcher):
    researcher.is_active = False

    assert not SessionChannelManager().can_read_channel(researcher, channel_for(queued.pk))


def test_anonymous_progress_stream_is_401(queued):
    response = Client().get(progress_url(queued))

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")


def test_denied_user_gets_403_and_no_stream(queued, researcher, monkeypatch):
    deny_everyone(monkeypatch)
    token = ApiToken.issue(researcher)[1]

    response = Client().get(progress_url(queued), headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert not response.streaming
    assert "progress" not in response.content.decode()
