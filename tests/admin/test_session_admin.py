"""The admin's session actions: cancel selected, mark stale interrupted, delete with artifacts (confirmed)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import run_folder, shared_files
from training import services
from training.models import SessionEvent, SessionStatus, TrainingSession
from training.tokens import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

CHANGELIST = "/admin/training/trainingsession/"


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.org", "pw")
    client.force_login(admin)
    return client


def act(client, action, sessions, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in sessions], **extra}
    return client.post(CHANGELIST, data, follow="confirmed" in extra or action != "delete_with_artifacts")


def test_cancel_selected_asks_active_sessions_to_stop_as_the_admin(admin_client, make_session):
    running = make_session(SessionStatus.RUNNING, days_ago=0)
    finished = make_session(days_ago=1)

    response = act(admin_client, "cancel_selected", [running, finished])

    assert response.status_code == 200
    running.refresh_from_db()
    assert running.status == SessionStatus.CANCELLING
    assert running.cancel_requested_by == "user:boss"
    assert running.events.get(kind=SessionEvent.Kind.CANCEL_REQUESTED).actor == "user:boss"
    assert TrainingSession.objects.get(pk=finished.pk).status == SessionStatus.COMPLETED
    assert "Cancel requested for 1 sessions." in response.content.decode()


def test_mark_stale_interrupts_only_silent_sessions(admin_client, make_session):
    silent = make_session(SessionStatus.RUNNING, days_ago=1)
    alive = make_session(SessionStatus.RUNNING, days_ago=0)
    TrainingSession.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now())

    response = act(admin_client, "mark_stale_interrupted", [silent, alive])

    assert response.status_code == 200
    silent.refresh_from_db()
    assert silent.status == SessionStatus.INTERRUPTED
    assert silent.events.filter(kind=SessionEvent.Kind.NOTE, actor="user:boss").exists()
    assert TrainingSession.objects.get(pk=alive.pk).status == SessionStatus.RUNNING


def test_delete_shows_every_folder_and_its_size_first_and_changes_nothing(admin_client, make_session):
    finished = make_session(days_ago=1)
    active = make_session(SessionStatus.RUNNING, days_ago=0)

    response = act(admin_client, "delete_with_artifacts", [finished, active])

    assert response.status_code == 200
    page = response.content.decode()
    assert str(run_folder(finished)) in page
    assert "1000\xa0bytes" in page or "1000 bytes" in page
    assert f"session {active.pk} (Running)" in page  # listed as refused
    assert str(run_folder(active)) not in page
    assert 'name="confirmed" value="yes"' in page
    assert TrainingSession.objects.count() == 2
    assert run_folder(finished).is_dir()


def test_confirmed_delete_removes_rows_and_run_folders_but_keeps_skill_files_and_active_sessions(
    admin_client, make_session
):
    finished = make_session(days_ago=1)
    failed = make_session(SessionStatus.FAILED, days_ago=1)
    active = make_session(SessionStatus.RUNNING, days_ago=0)
    folders = [run_folder(finished), run_folder(failed)]
    shared = shared_files(finished) + shared_files(failed)

    response = act(admin_client, "delete_with_artifacts", [finished, failed, active], confirmed="yes")

    assert response.status_code == 200
    assert list(TrainingSession.objects.values_list("pk", flat=True)) == [active.pk]
    assert not any(folder.exists() for folder in folders)
    assert all(f.is_file() for f in shared)
    assert run_folder(active).is_dir()
    page = response.content.decode()
    assert "Deleted 2 sessions and 2 run folders (2.0 KB)." in page
    assert "1 active sessions were not deleted." in page
    deletions = LogEntry.objects.filter(action_flag=DELETION, user__username="boss")
    assert sorted(int(pk) for pk in deletions.values_list("object_id", flat=True)) == [finished.pk, failed.pk]


def test_the_bulk_delete_and_the_delete_button_are_gone(admin_client, make_session):
    finished = make_session(days_ago=1)

    changelist = admin_client.get(CHANGELIST).content.decode()
    page = admin_client.get(f"{CHANGELIST}{finished.pk}/change/")

    assert "delete_selected" not in changelist
    assert "delete_with_artifacts" in changelist
    assert page.status_code == 200
    assert f"{finished.pk}/delete/" not in page.content.decode()
    assert admin_client.post(f"{CHANGELIST}{finished.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TrainingSession.objects.filter(pk=finished.pk).exists()


def test_session_page_is_read_only(admin_client, make_session):
    session = make_session(SessionStatus.RUNNING, days_ago=0)

    admin_client.post(f"{CHANGELIST}{session.pk}/change/", {"status": "completed"})

    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.RUNNING


def test_lists_filter_and_search(admin_client, make_session):
    session = make_session(days_ago=1)
    services.request_cancel(make_session(SessionStatus.QUEUED, days_ago=0), actor="user:boss")

    for url in (f"{CHANGELIST}?status__exact=completed", f"{CHANGELIST}?q={session.task.name}",
                "/admin/training/skillrun/?status__exact=completed", "/admin/training/sessionevent/?kind=status",
                "/admin/training/apitoken/", f"/admin/training/skillrun/?q={session.task.name}"):
        assert admin_client.get(url).status_code == 200, url
    assert session.task.name in admin_client.get(f"{CHANGELIST}?q={session.task.name}").content.decode()


def test_api_tokens_are_read_only_and_deletable(admin_client, user):
    row, _ = ApiToken.issue(user, name="laptop")

    assert admin_client.get("/admin/training/apitoken/add/").status_code == 403
    page = admin_client.get(f"/admin/training/apitoken/{row.pk}/change/").content.decode()
    assert row.digest not in page
    admin_client.post(f"/admin/training/apitoken/{row.pk}/delete/", {"post": "yes"})
    assert not ApiToken.objects.exists()


def test_staff_without_delete_permission_has_no_delete_action(client, staff_user, make_session):
    staff_user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="training", codename__in=["view_trainingsession", "change_trainingsession"]
    ))
    client.force_login(staff_user)
    make_session(days_ago=1)

    page = client.get(CHANGELIST).content.decode()

    assert "cancel_selected" in page
    assert "delete_with_artifacts" not in page
