"""The pages' watcher (`training:task_watch`): 204 while nothing changed, else the per-task events."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.factories import WEB_OPTIONS
from training import services

pytestmark = pytest.mark.django_db
URL = reverse("training:task_watch")


def test_task_page_and_list_carry_a_watcher_of_their_tasks(researcher_client, demo):
    fetch = demo["fetch_block"]
    body = researcher_client.get(fetch.get_absolute_url()).content.decode()
    assert f'hx-get="{URL}?s={fetch.pk}:0:"' in body and 'hx-trigger="every 1s"' in body
    body = researcher_client.get(reverse("task_list")).content.decode()
    assert 'id="training-watch"' in body and f"{fetch.pk}:0:" in body and f"{demo['patrol_beacons'].pk}:0:" in body


def test_unchanged_is_204_and_a_start_elsewhere_triggers_that_tasks_event(researcher_client, demo, researcher):
    fetch, patrol = demo["fetch_block"], demo["patrol_beacons"]
    shown = f"{fetch.pk}:0:~{patrol.pk}:0:"
    assert researcher_client.get(URL, {"s": shown}).status_code == 204

    session = services.start_session(fetch, WEB_OPTIONS, owner=researcher)  # as the terminal or the API would
    response = researcher_client.get(URL, {"s": shown})
    assert response.status_code == 200
    events = json.loads(response["HX-Trigger"])
    assert f"training-changed-{fetch.pk}" in events and f"training-changed-{patrol.pk}" not in events
    assert f"{fetch.pk}:{session.pk}:queued" in response.content.decode()
    assert researcher_client.get(URL, {"s": f"{fetch.pk}:{session.pk}:queued"}).status_code == 204


@pytest.mark.parametrize("bad", ["x", "1:2", "1:2:RUNNING", "1:2:a b", "~".join(["1:0:"] * 201)])
def test_bad_state_is_a_clear_400(researcher_client, bad):
    response = researcher_client.get(URL, {"s": bad})
    assert response.status_code == 400 and "expected up to 200 items" in response.content.decode()


def test_the_card_badge_sends_its_button_along(researcher_client, demo, researcher):
    fetch = demo["fetch_block"]
    services.start_session(fetch, WEB_OPTIONS, owner=researcher)
    url = reverse("training:task_badge", kwargs={"robot": fetch.robot, "name": fetch.name})
    body = researcher_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert f'id="card-train-{fetch.pk}"' in body and 'hx-swap-oob="true"' in body and "View progress" in body
