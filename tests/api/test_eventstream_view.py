"""django-eventstream's own view obeys the same rule: a denied reader gets `stream-error`, no data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from django.test import AsyncClient

from training import sse
from training.sse import channel_for

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.api.eventstream_urls"),
    pytest.mark.usefixtures("fast_passwords"),
]


@pytest.fixture(autouse=True)
def _close_connections_of_the_sync_thread() -> Iterator[None]:
    # The view reads in asgiref's shared thread; its connection would keep PostgreSQL's test
    # database from being dropped.
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


async def read_all(client: AsyncClient, session_id: int) -> str:
    response = await client.get(f"/events/?channel={channel_for(session_id)}")
    assert response["Content-Type"].startswith("text/event-stream")

    async def drain() -> str:
        return "".join([c.decode() if isinstance(c, bytes) else c async for c in response.streaming_content])

    # A permitted reader's stream never ends; a denied one's ends right after the error.
    return await asyncio.wait_for(drain(), timeout=5)


async def test_denied_user_gets_stream_error_and_no_data(queued, researcher, monkeypatch):
    monkeypatch.setattr(sse, "can_view", lambda who, session: False)
    client = AsyncClient()
    await client.aforce_login(researcher)

    body = await read_all(client, queued.pk)

    assert "event: stream-error" in body
    assert "forbidden" in body
    assert "stream-open" not in body and "event: progress" not in body


async def test_anonymous_gets_stream_error(queued):
    body = await read_all(AsyncClient(), queued.pk)

    assert "event: stream-error" in body and "forbidden" in body
