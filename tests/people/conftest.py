"""Fixtures of the permission tests: a task, a researcher who owns sessions, clients of every kind.

`user` (from tests/conftest.py) is made a researcher here: the owner in every matrix. `other_user`
stays a plain account (may view, may not start); `other_researcher` may start but owns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tasks.models import Task
from tests.api.conftest import TINY, csrf_headers, make_researcher, one_skill_task
from training import services
from training.models import TrainingSession
from training.tokens import ApiToken

# The actors of every permission matrix.
OWNER, OTHER, STAFF, ANONYMOUS = "owner", "other", "staff", "anonymous"
ACTORS = [OWNER, OTHER, STAFF, ANONYMOUS]
AUTHS = ["token", "session"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # Four accounts per test; PBKDF2's deliberate slowness would be most of the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(user: Any) -> Any:
    return make_researcher(user)


@pytest.fixture
def other_researcher(django_user_model: Any, password: str) -> Any:
    return make_researcher(django_user_model.objects.create_user("colleague", "colleague@example.org", password))


@pytest.fixture
def task(db: None) -> Task:
    return one_skill_task("reach_beacon")


@pytest.fixture
def queued(task: Task, user: Any) -> TrainingSession:
    """An active session owned by `user`."""
    return services.start_session(task, TINY, owner=user)


@pytest.fixture
def cancelled(queued: TrainingSession) -> TrainingSession:
    """A session that ended unfinished (resumable), owned by `user`."""
    return services.request_cancel(queued, actor="user:researcher")


@pytest.fixture
def client_for(user: Any, other_user: Any, staff_user: Any) -> Callable[[str, str], tuple[Client, dict[str, str]]]:
    """`(client, headers)` acting as one of ACTORS, by API token or by browser session (with CSRF)."""
    people = {OWNER: user, OTHER: other_user, STAFF: staff_user}

    def make(actor: str, auth: str = "token") -> tuple[Client, dict[str, str]]:
        client = Client(enforce_csrf_checks=True)
        if actor == ANONYMOUS:
            return client, {}
        if auth == "token":
            return client, {"Authorization": f"Bearer {ApiToken.issue(people[actor])[1]}"}
        client.force_login(people[actor])
        return client, csrf_headers(client)

    return make


def api_url(task: Task, action: str) -> str:
    return f"/api/tasks/{task.name}/training/{action}?robot={task.robot}"
