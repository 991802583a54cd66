"""Who may do what on the training pages (the rules are training.permissions', shared with the API):
any signed-in user watches; starting needs the start permission (staff implicitly); cancel and
retry are for the session's owner and staff."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import WEB_OPTIONS, run_session
from training.models import SessionStatus, Stage, TrainingSession

pytestmark = pytest.mark.django_db
MODAL = {"HX-Request": "true", "HX-Target": "modal-root"}


def configure_url(task) -> str:
    return reverse("training:configure", kwargs={"robot": task.robot, "name": task.name})


def test_without_the_start_permission_the_buttons_say_why(client, other_user, fetch_block):
    client.force_login(other_user)
    page = client.get(fetch_block.get_absolute_url()).content.decode()
    panel = page.split('id="training-panel"')[1][:1500]
    assert "disabled" in panel and "Researchers group" in panel
    dialog = client.get(configure_url(fetch_block), headers=MODAL).content.decode()
    assert "You cannot start training yet." in dialog
    assert 'id="config-submit" class="btn btn-primary" disabled' in dialog
    listing = client.get(reverse("task_list")).content.decode()
    assert 'id="bulk-train"' not in listing and "data-bulk-select" not in listing


def test_starting_without_the_permission_is_403(client, other_user, fetch_block):
    client.force_login(other_user)
    response = client.post(configure_url(fetch_block), {**WEB_OPTIONS, "backend": "embedded"})
    assert response.status_code == 403
    assert "Researchers" in response.content.decode()
    assert not TrainingSession.objects.exists()


def test_train_selected_refuses_tasks_it_may_not_start(client, other_user, demo):
    client.force_login(other_user)
    body = client.post(reverse("training:bulk_start"), {"task": [demo["fetch_block"].pk]},
                       headers={"HX-Request": "true"}).content.decode()
    assert "fetch_block</strong> was not started" in body and "permission" in body
    assert not TrainingSession.objects.exists()


def test_staff_may_start_without_the_group(client, staff_user, fetch_block):
    client.force_login(staff_user)
    response = client.post(configure_url(fetch_block), {**WEB_OPTIONS, "backend": "embedded", "skip_complete": "on",
                                                          "headless": "on", "video_interval": 2000,
                                                          "video_length": 200})
    assert response.status_code == 302
    assert TrainingSession.objects.get().owner == staff_user


def test_anyone_signed_in_may_watch(client, other_user, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    client.force_login(other_user)
    for view in ("session", "session_progress"):
        assert client.get(reverse(f"training:{view}", kwargs={"pk": session.pk})).status_code == 200


def test_retry_is_for_the_owner_and_staff_with_the_start_permission(client, other_user, staff_user, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    session.transition_to(SessionStatus.FAILED, actor="worker:test", error="boom")
    session.set_stage(Stage.COMPLETE, actor="worker:test")
    retry_url = reverse("training:session_retry", kwargs={"pk": session.pk})
    client.force_login(other_user)
    page = client.get(reverse("training:session", kwargs={"pk": session.pk})).content.decode()
    assert retry_url not in page
    assert client.post(retry_url).status_code == 403
    # The owner, once the permission is withdrawn, may not start it again either.
    researcher.groups.clear()
    client.force_login(researcher)
    assert client.post(retry_url).status_code == 403
    client.force_login(staff_user)
    assert client.post(retry_url).status_code == 302
    assert TrainingSession.objects.count() == 2
