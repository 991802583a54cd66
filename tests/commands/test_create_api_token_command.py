"""`manage.py create_api_token USER`: prints a new token last and stores only its hash."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.factories import api_url
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db


def test_prints_a_working_token_as_the_last_line(researcher, fetch_block):
    out = StringIO()

    call_command("create_api_token", researcher.username, "--name", "laptop", stdout=out)

    token = out.getvalue().strip().splitlines()[-1]
    client = Client(headers={"Authorization": f"Bearer {token}"})
    assert client.get(api_url(fetch_block, "status")).status_code == 200
    row = ApiToken.objects.get()
    assert (row.user, row.name) == (researcher, "laptop")
    assert token.startswith(row.prefix)


def test_stores_only_a_hash(researcher):
    out = StringIO()
    call_command("create_api_token", researcher.username, stdout=out)
    token = out.getvalue().strip().splitlines()[-1]

    row = ApiToken.objects.get()
    stored = " ".join(str(v) for v in ApiToken.objects.values_list().get())
    assert token not in stored
    assert len(row.digest) == 64


def test_each_call_makes_a_new_token(researcher):
    tokens = set()
    for _ in range(2):
        out = StringIO()
        call_command("create_api_token", researcher.username, stdout=out)
        tokens.add(out.getvalue().strip().splitlines()[-1])

    assert len(tokens) == 2
    assert ApiToken.objects.count() == 2


def test_unknown_user_is_an_error(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("create_api_token", "nobody", stdout=StringIO())


def test_inactive_user_is_an_error(researcher):
    researcher.is_active = False
    researcher.save(update_fields=["is_active"])

    with pytest.raises(CommandError, match="inactive"):
        call_command("create_api_token", researcher.username, stdout=StringIO())
