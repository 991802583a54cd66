"""The staff "Rescan" button: permissions, configuration and how the import report is shown."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tasks.importer import ImportReport, TaskResult
from tasks.models import Task

pytestmark = pytest.mark.django_db
URL = reverse("task_rescan")


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def no_import(monkeypatch):
    monkeypatch.setattr("tasks.importer.import_path", lambda path: pytest.fail("must not import"))


def test_non_staff_gets_403_and_no_import(user_client, settings, tmp_path, no_import):
    settings.GENHRL_ISAACLAB_PATH = tmp_path
    response = user_client.post(URL)
    assert response.status_code == 403
    assert "Only staff can do this." in response.content.decode()
    assert user_client.get(URL).status_code == 403


def test_button_shown_to_staff_only(client, user, staff_user):
    client.force_login(user)
    assert URL not in client.get(reverse("task_list")).content.decode()
    client.force_login(staff_user)
    assert URL in client.get(reverse("task_list")).content.decode()


def test_get_is_not_allowed(staff_client, no_import):
    assert staff_client.get(URL).status_code == 405


def test_post_needs_csrf_token(staff_user, settings, tmp_path, no_import):
    from django.test import Client

    settings.GENHRL_ISAACLAB_PATH = tmp_path
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(URL).status_code == 403


def test_unset_path_is_explained(staff_client, settings, no_import):
    settings.GENHRL_ISAACLAB_PATH = None
    response = staff_client.post(URL)
    assert response.status_code == 302 and response["Location"] == reverse("task_list")
    assert any("GENHRL_ISAACLAB_PATH" in text for text in texts(response))


def test_rescan_imports_real_tree_and_reports(staff_client, settings, isaaclab_fixture_tree):
    settings.GENHRL_ISAACLAB_PATH = isaaclab_fixture_tree
    response = staff_client.post(URL, {"next": reverse("dashboard")}, follow=True)
    assert response.redirect_chain == [(reverse("dashboard"), 302)]
    assert Task.objects.filter(robot="G1").count() == 5
    body = response.content.decode()
    assert "5 added, 0 updated" in body
    assert "message-warning" in body  # the real tasks carry import warnings

    again = staff_client.post(URL, follow=True).content.decode()
    assert "0 added, 0 updated, 5 skipped (unchanged)" in again


def test_report_shows_failures_and_caps_warnings(staff_client, settings, tmp_path, monkeypatch):
    settings.GENHRL_ISAACLAB_PATH = tmp_path
    report = ImportReport(
        path=str(tmp_path),
        results=[
            TaskResult("G1", "good", "added", "/x", warnings=[f"warning {i}" for i in range(8)]),
            TaskResult("G1", "bad", "failed", "/y", error="skill_library.json: not JSON"),
        ],
    )
    monkeypatch.setattr("tasks.importer.import_path", lambda path: report)
    response = staff_client.post(URL)
    messages = texts(response)
    assert messages[0].startswith(f"Rescanned {tmp_path}: 1 added")
    assert "G1/bad was not imported: skill_library.json: not JSON" in messages
    assert "G1/good: warning 4" in messages and "G1/good: warning 5" not in messages
    assert messages[-1] == "…and 3 more warnings, shown on each task's page."


def test_missing_folder_is_a_message_not_a_500(staff_client, settings, tmp_path):
    settings.GENHRL_ISAACLAB_PATH = tmp_path / "missing"
    response = staff_client.post(URL)
    assert response.status_code == 302
    assert any(text.startswith("Rescan failed:") for text in texts(response))


def test_next_must_be_local(staff_client, settings, no_import):
    settings.GENHRL_ISAACLAB_PATH = None
    response = staff_client.post(URL, {"next": "https://evil.example/"})
    assert response["Location"] == reverse("task_list")
