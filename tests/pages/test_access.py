"""Every page needs a login; the login page, logout and the navigation work."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tasks.models import Task

pytestmark = pytest.mark.django_db


def _pages(task: Task) -> list[str]:
    return [
        reverse("dashboard"),
        reverse("task_list"),
        reverse("task_list") + "?q=door&sort=name",
        task.get_absolute_url(),
        reverse("task_detail", kwargs={"robot": "G1", "name": "no_such_task"}),
    ]


def test_anonymous_is_sent_to_login_from_every_page(client, doorway_task):
    for url in _pages(doorway_task):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def test_anonymous_rescan_is_sent_to_login_and_imports_nothing(client, monkeypatch):
    monkeypatch.setattr("tasks.importer.import_path", lambda path: pytest.fail("must not import"))
    response = client.post(reverse("task_rescan"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_admin_goes_to_admin_login(client):
    response = client.get("/admin/tasks/task/")
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_login_page_renders_without_login(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'name="password"' in body
    assert "csrfmiddlewaretoken" in body
    assert "Log out" not in body  # no navigation for anonymous visitors


def test_login_redirects_to_the_page_asked_for(client, user, password):
    response = client.post(
        reverse("login"), {"username": user.username, "password": password, "next": reverse("task_list")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("task_list")


def test_login_without_next_lands_on_dashboard(client, user, password):
    response = client.post(reverse("login"), {"username": user.username, "password": password}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert "Dashboard" in response.content.decode()


def test_wrong_password_shows_an_error(client, user):
    response = client.post(reverse("login"), {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert "alert-error" in response.content.decode()


def test_logout_is_a_post(user_client):
    assert user_client.get(reverse("logout")).status_code == 405
    response = user_client.post(reverse("logout"))
    assert response.status_code == 302
    assert user_client.get(reverse("dashboard")).status_code == 302  # logged out


def test_navigation_shows_admin_to_staff_only(user_client, django_user_model, password, client):
    body = user_client.get(reverse("dashboard")).content.decode()
    assert 'href="/admin/"' not in body
    assert "researcher" in body and "Log out" in body

    staff = django_user_model.objects.create_user("boss", password=password, is_staff=True)
    client.force_login(staff)
    assert 'href="/admin/"' in client.get(reverse("dashboard")).content.decode()


def test_pages_carry_csrf_header_for_htmx_and_no_cdn(user_client):
    body = user_client.get(reverse("task_list")).content.decode()
    assert "hx-headers='{\"X-CSRFToken\": \"" in body
    assert "/static/django_htmx/htmx-2.min.js" in body
    assert not re.search(r'(src|href)="(https?:)?//', body)  # nothing loaded from elsewhere


def test_missing_task_gets_the_portal_404_page(user_client):
    response = user_client.get(reverse("task_detail", kwargs={"robot": "G1", "name": "nope"}))
    assert response.status_code == 404
    assert "Task and robot names are case-sensitive." in response.content.decode()
