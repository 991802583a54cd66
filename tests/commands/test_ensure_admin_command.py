"""`manage.py ensure_admin`: creates `admin` once, prints its password once, never an existing one."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out, no_color=True)
    return out.getvalue()


def test_ensure_admin_creates_superuser_and_prints_password_once():
    out = run()

    match = re.search(r"Created superuser 'admin' with password: (\S+)", out)
    assert match, out
    assert "python manage.py changepassword admin" in out
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(match.group(1))

    again = run()

    assert again.strip() == "Superuser 'admin' already exists."
    assert match.group(1) not in again
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_ensure_admin_leaves_an_existing_admin_alone():
    get_user_model().objects.create_user("admin", password="kept-secret-password")

    out = run()

    assert "kept-secret-password" not in out and "password" not in out
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("kept-secret-password")
    assert not admin.is_superuser
