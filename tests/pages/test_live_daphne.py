"""The live daphne fixture itself: it serves the test database and static files over ASGI."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tasks.models import Task
from tests.live import LiveDaphne

pytestmark = pytest.mark.django_db(transaction=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, cookie: str = ""):
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        return opener.open(request, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


def test_static_files_need_no_login(live_daphne: LiveDaphne):
    for path in ("/static/css/portal.css", "/static/js/portal.js", "/static/django_htmx/htmx-2.min.js"):
        response = get(live_daphne.url(path))
        assert response.status == 200, path


def test_pages_redirect_anonymous_to_login(live_daphne: LiveDaphne):
    response = get(live_daphne.url("/tasks/"))
    assert response.status == 302
    assert response.headers["Location"] == "/accounts/login/?next=/tasks/"


def test_server_sees_rows_and_sessions_made_by_the_test(live_daphne: LiveDaphne, user):
    Task.objects.create(name="seen_by_daphne", robot="G1", root_skill="r", source_path="/x")
    cookie = live_daphne.session_cookie(user)
    response = get(live_daphne.url("/tasks/"), cookie=f"{cookie['name']}={cookie['value']}")
    assert response.status == 200
    assert "seen_by_daphne" in response.read().decode()
