"""Cancel (owner or staff, confirmed) and Retry (same settings, new session) from the progress view."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import WEB_OPTIONS, run_session
from training.models import SessionEvent, SessionStatus, Stage, TrainingSession

pytestmark = pytest.mark.django_db
LIVE = {"HX-Request": "true", "HX-Target": "session-body-1"}
MODAL = {"HX-Request": "true", "HX-Target": "modal-root"}


def url(session: TrainingSession, view: str) -> str:
    return reverse(f"training:{view}", kwargs={"pk": session.pk})


def test_cancel_without_javascript_asks_first(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    response = researcher_client.get(url(session, "session_cancel"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Stop training" in body and "Yes, cancel training" in body and 'method="post"' in body
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING  # a GET changes nothing


def test_cancel_of_a_running_session_asks_the_worker_to_stop(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    response = researcher_client.post(url(session, "session_cancel"))
    assert response.status_code == 302 and response["Location"] == url(session, "session")
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLING
    assert session.cancel_requested_by == f"user:{researcher.username}"
    assert session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED).exists()


def test_cancel_with_htmx_answers_the_live_partial_and_new_buttons(researcher_client, fetch_block, researcher):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    response = researcher_client.post(url(session, "session_cancel") + "?dialog=1", headers=LIVE)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div class="sp status-cancelling"')
    assert 'hx-swap-oob="true"' in body and "Stopping…" in body
    assert "training-changed" in response["HX-Trigger"]


def test_cancel_of_a_queued_session_ends_it_at_once(researcher_client, fetch_block, queue):
    session = queue(fetch_block, WEB_OPTIONS)
    researcher_client.post(url(session, "session_cancel"))
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED and session.stage == Stage.COMPLETE


def test_only_the_owner_or_staff_can_cancel(client, fetch_block, researcher, other_user, staff_user):
    session = run_session(fetch_block, researcher, WEB_OPTIONS)
    client.force_login(other_user)
    # Others may watch, without a cancel button.
    page = client.get(url(session, "session")).content.decode()
    assert "Cancel training" not in page and "Only researcher or staff can cancel" in page
    assert client.post(url(session, "session_cancel")).status_code == 403
    assert client.get(url(session, "session_cancel")).status_code == 403
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING
    client.force_login(staff_user)
    assert client.post(url(session, "session_cancel")).status_code == 302
    session.refresh_from_db()
    assert session.status == SessionStatus.CANCELLING


def failed_session(task, researcher, **options) -> TrainingSession:
    session = run_session(task, researcher, WEB_OPTIONS, **options)
    session.transition_to(SessionStatus.FAILED, actor="worker:test", error="go_to_block: boom")
    session.set_stage(Stage.COMPLETE, actor="worker:test")
    return session


def test_retry_starts_a_new_session_with_the_same_settings_but_never_a_new_run(researcher_client, fetch_block, researcher):
    failed = failed_session(fetch_block, researcher, new_run=True, seed=7)
    response = researcher_client.post(url(failed, "session_retry"))
    retry = TrainingSession.objects.exclude(pk=failed.pk).get()
    assert response.status_code == 302 and response["Location"] == url(retry, "session")
    assert retry.status == SessionStatus.QUEUED and retry.owner == researcher
    assert retry.config == {**failed.config, "new_run": False}
    assert retry.config["seed"] == 7 and retry.config["num_envs"] == WEB_OPTIONS["num_envs"]


def test_retry_in_the_dialog_opens_the_new_sessions_dialog(researcher_client, fetch_block, researcher):
    failed = failed_session(fetch_block, researcher)
    response = researcher_client.post(url(failed, "session_retry"), headers=MODAL)
    retry = TrainingSession.objects.exclude(pk=failed.pk).get()
    body = response.content.decode()
    assert body.lstrip().startswith("<dialog") and f"Session #{retry.pk}" in body
    assert response["HX-Retarget"] == "#modal-root"


def test_retry_while_it_already_trains_shows_the_running_session(researcher_client, fetch_block, researcher):
    failed = failed_session(fetch_block, researcher)
    running = run_session(fetch_block, researcher, WEB_OPTIONS)
    response = researcher_client.post(url(failed, "session_retry"))
    assert response.status_code == 302 and response["Location"] == url(running, "session")
    assert TrainingSession.objects.count() == 2
    response = researcher_client.post(url(failed, "session_retry"), headers=MODAL)
    assert f"Session #{running.pk}" in response.content.decode()


def test_change_settings_opens_the_form_with_this_sessions_settings(researcher_client, fetch_block, researcher):
    failed = failed_session(fetch_block, researcher, num_envs=128)
    page = researcher_client.get(url(failed, "session")).content.decode()
    link = reverse("training:configure", kwargs={"robot": "PointMass", "name": "fetch_block"}) + f"?from={failed.pk}"
    assert f'href="{link}" hx-get="{link}"' in page
    form = researcher_client.get(link, headers=MODAL).context["form"]
    assert form["num_envs"].value() == 128
