"""Fixtures shared by every test area: accounts and paths to the real GenHRL fixtures.

Area-specific fixtures live in `tests/<area>/conftest.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The real GenHRL task files, in their real layout, shared by the whole team beside this repository.
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "isaaclab"
G1_GENERATED = (
    SHARED_FIXTURES / "source" / "isaaclab_tasks" / "isaaclab_tasks" / "manager_based" / "G1_generated"
)
DEMO_ROOT = REPO_ROOT / "tasks" / "demo"
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture
def isaaclab_fixture_tree() -> Path:
    if not G1_GENERATED.is_dir():
        if ON_CI:
            pytest.fail(f"shared GenHRL fixtures missing at {SHARED_FIXTURES}")
        pytest.skip("shared GenHRL fixtures are not beside this checkout")
    return SHARED_FIXTURES


@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Training artifacts of a test go to its own folder, never to the developer's data/."""
    runs = tmp_path / "training"
    runs.mkdir()
    settings.GENHRL_RUNS_DIR = runs
    return runs


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple"


@pytest.fixture
def user(django_user_model, password):
    return django_user_model.objects.create_user("researcher", "researcher@example.org", password)


@pytest.fixture
def other_user(django_user_model, password):
    return django_user_model.objects.create_user("other", "other@example.org", password)


@pytest.fixture
def staff_user(django_user_model, password):
    return django_user_model.objects.create_user("staff", "staff@example.org", password, is_staff=True)


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
