"""More streams than database connections: on a real daphne, sixty viewers connect at once and
every one gets its stream and its first snapshot, through a budget of a few connections.

On PostgreSQL the daphne signs in as a role limited to BUDGET + 2 connections (the streams' slots,
the relay, one spare), so a stream that opened a connection of its own would fail with "too many
connections for role": the same failure as `max_connections` at a thousand viewers (issue 11).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.db import connection

from tests.factories import api_url
from tests.live import live_database_url, run_daphne

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 60
BUDGET = 2


@pytest.fixture
def budget_database_url() -> Iterator[str]:
    """The test database as seen by a role with a small connection limit (PostgreSQL), else as is."""
    url = live_database_url()
    if connection.vendor != "postgresql":
        yield url
        return
    role = f"budget_{connection.settings_dict['NAME']}"[:60]
    quoted = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {quoted}")
        cursor.execute(f"CREATE ROLE {quoted} LOGIN CONNECTION LIMIT {BUDGET + 2}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {quoted}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {quoted}")
            cursor.execute(f"DROP ROLE {quoted}")


async def first_snapshot(http: httpx.AsyncClient, url: str, token: str) -> tuple[int, str]:
    async with http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status_code != 200:
            return response.status_code, (await response.aread()).decode(errors="replace")[:200]
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                return 200, line.removeprefix("event: ")
    return 200, "closed"


async def watch_all(base: str, paths: list[str], token: str) -> list[tuple[int, str]]:
    limits = httpx.Limits(max_connections=STREAMS + 10)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(20.0, connect=10.0), limits=limits) as http:
        return await asyncio.gather(*(first_snapshot(http, path, token) for path in paths))


def test_sixty_streams_through_two_connections_all_get_their_snapshot(
    budget_database_url, tmp_path, token, queue, fetch_block, patrol
):
    sessions = [queue(fetch_block), queue(patrol)]
    paths = [api_url(s.task.name, f"progress/{s.pk}", robot="PointMass") for s in sessions]
    env = {"GENHRL_EMBEDDED_WORKER": "0", "GENHRL_STREAM_DB_CONNECTIONS": str(BUDGET),
           "GENHRL_LOGIN_FAILURE_LIMIT": "1000"}

    with run_daphne(budget_database_url, data_dir=tmp_path / "daphne", env=env) as daphne:
        results = asyncio.run(watch_all(daphne.base_url, [paths[i % 2] for i in range(STREAMS)], token))
        log = daphne.log_path.read_text(errors="replace")

    assert results == [(200, "progress")] * STREAMS, [r for r in results if r != (200, "progress")][:3]
    assert "too many" not in log.lower()
