"""Production hardening: sign-in lock-out, HTTPS settings, the CSP header and a private data folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import REPO_ROOT, api_url

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


def sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_repeated_wrong_passwords_lock_the_account_and_the_client(user, password, other_user, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client()
    for _ in range(4):
        assert sign_in(client, user.username, "wrong").status_code == 200  # the form, with its error
    assert sign_in(client, user.username, "wrong").status_code == 429  # the fifth locks
    locked = sign_in(client, user.username, password)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode() and "15 minutes" in locked.content.decode()
    # The account, from anywhere; and anyone, from that client.
    assert sign_in(Client(), user.username, password, address="10.9.9.9").status_code == 429
    assert sign_in(Client(), other_user.username, password, address="10.0.0.1").status_code == 429
    # Someone else from elsewhere is not affected.
    assert sign_in(Client(), other_user.username, password, address="10.9.9.9").status_code == 302


def test_repeated_bad_api_tokens_lock_the_client(fetch_block, token, settings):
    settings.AXES_FAILURE_LIMIT = 3
    answers = [
        Client(headers={"Authorization": "Bearer genhrl_not-a-token"}).get(api_url(fetch_block, "status"))
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]  # the third locks the client out
    good = Client(headers={"Authorization": f"Bearer {token}"}).get(api_url(fetch_block, "status"))
    assert good.status_code == 429
    assert good["Content-Type"].startswith("application/json") and "too many failed" in good.json()["detail"]


def test_pages_carry_a_content_security_policy(researcher_client, demo):
    response = researcher_client.get("/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("style-src-attr")[0]  # only style attributes
    assert response["X-Frame-Options"] == "DENY"


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # argv list, never a shell
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_documented_production_profile_passes_check_deploy(tmp_path: Path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0", "SECRET_KEY": "k" * 20 + "-Q9x_v2M#pL7wZr4!tB8nY1" * 2, "ALLOWED_HOSTS": "portal.lab.example",
        "CSRF_TRUSTED_ORIGINS": "https://portal.lab.example", "GENHRL_HTTPS": "1", "GENHRL_PROXY_COUNT": "1",
        "GENHRL_HSTS_INCLUDE_SUBDOMAINS": "1", "GENHRL_HSTS_PRELOAD": "1", "GENHRL_DATA_DIR": str(tmp_path / "data"),
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    plain = _manage("check", "--deploy", "--fail-level", "WARNING", env={**env, "GENHRL_HTTPS": "0"})
    assert plain.returncode != 0 and "W008" in plain.stderr + plain.stdout  # the laptop default says so


def test_a_new_data_folder_and_its_database_are_private(tmp_path: Path):
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, "GENHRL_DATA_DIR": str(data)}
    result = _manage("migrate", "--noinput", "-v", "0", env=env)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "db.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
