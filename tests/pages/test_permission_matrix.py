"""The same permission matrix on the pages' POST views: start (configure), cancel and retry (resume)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import ANONYMOUS, OTHER, OWNER, STAFF
from training.models import SessionEvent, SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

ALLOWED = {OWNER: True, OTHER: False, STAFF: True}
ACTOR_NAMES = {OWNER: "user:researcher", STAFF: "user:staff"}
START_FORM = {
    "backend": "embedded", "max_time": "1", "min_success_states": "10", "num_envs": "16", "seed": "42",
    "skip_complete": "on", "headless": "on", "video_interval": "2000", "video_length": "200",
    "min_steps_primitive": "0", "min_steps_composite": "0",
}


@pytest.fixture
def page_client(researcher, other_user, staff_user):
    people = {OWNER: researcher, OTHER: other_user, STAFF: staff_user}

    def make(actor: str) -> Client:
        client = Client()
        if actor != ANONYMOUS:
            client.force_login(people[actor])
        return client

    return make


def assert_sent_to_login(response) -> None:
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("actor", [OWNER, OTHER, STAFF, ANONYMOUS])
def test_start_page_needs_the_start_permission(reach_beacon, page_client, actor):
    response = page_client(actor).post(f"/training/tasks/{reach_beacon.robot}/{reach_beacon.name}/start/", START_FORM)

    if actor == ANONYMOUS:
        assert_sent_to_login(response)
    elif ALLOWED[actor]:
        assert response.status_code in (200, 302), response.content[:500]
        assert TrainingSession.objects.get().events.get().actor == ACTOR_NAMES[actor]
        return
    else:
        assert response.status_code == 403
    assert not TrainingSession.objects.exists()


@pytest.mark.parametrize("actor", [OWNER, OTHER, STAFF, ANONYMOUS])
def test_cancel_page_is_for_the_owner_and_staff(queued, page_client, actor):
    response = page_client(actor).post(f"/training/sessions/{queued.pk}/cancel/")

    queued.refresh_from_db()
    if actor == ANONYMOUS:
        assert_sent_to_login(response)
    elif ALLOWED[actor]:
        assert queued.status == SessionStatus.CANCELLED
        assert queued.events.get(kind=SessionEvent.Kind.CANCEL_REQUESTED).actor == ACTOR_NAMES[actor]
        return
    else:
        assert response.status_code == 403
    assert queued.status == SessionStatus.QUEUED


@pytest.mark.parametrize("actor", [OWNER, OTHER, STAFF, ANONYMOUS])
def test_retry_page_is_for_the_owner_and_staff(cancelled, page_client, actor):
    response = page_client(actor).post(f"/training/sessions/{cancelled.pk}/retry/")

    if actor == ANONYMOUS:
        assert_sent_to_login(response)
    elif ALLOWED[actor]:
        again = TrainingSession.objects.exclude(pk=cancelled.pk).get()
        assert again.is_active
        assert again.events.get(to_state=SessionStatus.QUEUED).actor == ACTOR_NAMES[actor]
        return
    else:
        assert response.status_code == 403
    assert TrainingSession.objects.count() == 1
