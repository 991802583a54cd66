"""Concurrent starts of one task (two tabs, a script and a person) give exactly one 201."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from tests.factories import api_url
from training.models import SessionStatus

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS = 8


def test_concurrent_starts_give_one_201_and_the_rest_409(fetch_block, token):
    barrier = threading.Barrier(ATTEMPTS)

    def attempt(_: int) -> int:
        client = Client(headers={"Authorization": f"Bearer {token}"})
        try:
            barrier.wait(timeout=10)
            return client.post(api_url(fetch_block, "start"), {"max_time": 1},
                               content_type="application/json").status_code
        finally:
            connection.close()  # each thread has its own connection: all race in the database

    with ThreadPoolExecutor(ATTEMPTS) as pool:
        codes = sorted(pool.map(attempt, range(ATTEMPTS)))

    assert codes == [201] + [409] * (ATTEMPTS - 1)
    assert fetch_block.training_sessions.filter(status=SessionStatus.QUEUED).count() == 1


def test_concurrent_starts_of_different_tasks_all_succeed(fetch_block, patrol, token):
    barrier = threading.Barrier(2)

    def attempt(task) -> int:
        client = Client(headers={"Authorization": f"Bearer {token}"})
        try:
            barrier.wait(timeout=10)
            return client.post(api_url(task, "start"), {}, content_type="application/json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(attempt, [fetch_block, patrol]))

    assert codes == [201, 201]
