"""GET /api/tasks/{task}/training/progress/{id}: the stream, driven in-process through Django's ASGI handler.

The relay is stepped by hand here; `test_progress_live.py` runs it for real in a daphne, with the
training in another process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.db import connections
from django.test import AsyncClient

from tests.factories import aevents, api_url
from training import leases, services, sse
from training.api.schemas import ProgressSnapshot
from training.models import SessionStatus

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _close_connections_of_the_sync_thread() -> Iterator[None]:
    """`sync_to_async` outside a request runs in asgiref's one shared thread; close what it opened there.

    Otherwise PostgreSQL keeps a session open on the test database and it cannot be dropped.
    """
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


def bearer(token: str) -> dict[str, str]:
    # Per request: AsyncClient(headers=...) mangles header names in Django 5.2.
    return {"Authorization": f"Bearer {token}"}


async def open_stream(token: str, url: str) -> tuple[Any, AsyncIterator[tuple[str, Any]]]:
    response = await AsyncClient().get(url, headers=bearer(token))
    assert response.status_code == 200, response.content
    return response, aevents(aiter(response.streaming_content))


async def next_event(stream: AsyncIterator[tuple[str, Any]], timeout: float = 5.0) -> tuple[str, Any]:
    return await asyncio.wait_for(anext(stream), timeout)


def progress_url(session) -> str:
    return api_url("fetch_block", f"progress/{session.pk}", robot="PointMass")


async def test_stream_sends_the_current_snapshot_at_once(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)

    response, stream = await open_stream(token, progress_url(session))

    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    event, data = await next_event(stream, timeout=2)
    assert event == "progress"
    ProgressSnapshot.model_validate(data)
    assert (data["session_id"], data["task"], data["robot"], data["status"]) == (
        session.pk, "fetch_block", "PointMass", "queued"
    )
    await stream.aclose()


async def test_relay_brings_a_change_made_elsewhere(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)
    _, stream = await open_stream(token, progress_url(session))
    await next_event(stream)

    # Another connection changes the row; this process hears nothing but what the relay reads.
    await sync_to_async(leases.claim_next_session)("elsewhere")
    await sync_to_async(sse.relay.step)()

    event, data = await next_event(stream)
    assert (event, data["status"], data["worker"]) == ("progress", "running", "elsewhere")
    await stream.aclose()


async def test_stream_of_a_finished_session_ends_with_done(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)
    await sync_to_async(services.request_cancel)(session, actor="test")

    _, stream = await open_stream(token, progress_url(session))

    assert (await next_event(stream))[1]["status"] == "cancelled"
    event, data = await next_event(stream)
    assert (event, data) == ("done", {"session_id": session.pk, "status": "cancelled", "error": ""})
    with pytest.raises(StopAsyncIteration):
        await next_event(stream)


async def test_stream_closes_with_done_when_the_session_ends(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)
    _, stream = await open_stream(token, progress_url(session))
    await next_event(stream)

    await sync_to_async(leases.claim_next_session)("elsewhere")
    await sync_to_async(services.request_cancel)(session, actor="test")
    await sync_to_async(session.refresh_from_db)()
    await sync_to_async(session.transition_to)(SessionStatus.CANCELLED, actor="test")
    await sync_to_async(sse.relay.step)()

    seen = []
    async for event, data in stream:
        seen.append((event, data["status"]))
    assert seen == [("progress", "cancelled"), ("done", "cancelled")]


async def test_in_process_changes_are_sent_without_waiting_for_a_poll(fetch_block, token, queue, monkeypatch):
    from training.signals import session_changed

    session = await sync_to_async(queue)(fetch_block)
    _, stream = await open_stream(token, progress_url(session))
    await next_event(stream)
    monkeypatch.setattr(sse.relay, "poll_interval", 30.0)  # only a wake-up can be fast enough now
    sse.start_relay()
    try:
        await sync_to_async(leases.claim_next_session)("here")
        started = asyncio.get_running_loop().time()
        await sync_to_async(session_changed.send_robust)(sender=None, session_id=session.pk)

        statuses = []
        while "running" not in statuses:  # the relay's first look may repeat the queued state
            statuses.append((await next_event(stream, timeout=2))[1]["status"])
    finally:
        sse.relay.stop()
    assert asyncio.get_running_loop().time() - started < 2
    await stream.aclose()


async def test_a_burst_is_coalesced_to_the_newest_snapshot(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)
    _, stream = await open_stream(token, progress_url(session))
    await next_event(stream)

    for status in ("a", "b", "c"):
        await sync_to_async(sse.send_event)(sse.channel_for(session.pk), "progress", f'{{"status":"{status}"}}',
                                            json_encode=False)

    assert (await next_event(stream))[1] == {"status": "c"}
    await stream.aclose()


async def test_a_slow_client_that_overflows_gets_the_truth_from_the_database(fetch_block, token, queue):
    session = await sync_to_async(queue)(fetch_block)
    _, stream = await open_stream(token, progress_url(session))
    await next_event(stream)

    for n in range(25):  # more than a listener queues
        await sync_to_async(sse.send_event)(sse.channel_for(session.pk), "progress", f'{{"status":"fake-{n}"}}',
                                            json_encode=False)

    event, data = await next_event(stream)
    assert (event, data["status"], data["session_id"]) == ("progress", "queued", session.pk)
    await stream.aclose()


async def test_alive_events_flow_while_nothing_changes(fetch_block, token, queue, monkeypatch):
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.05)
    session = await sync_to_async(queue)(fetch_block)
    response = await AsyncClient().get(progress_url(session), headers=bearer(token))
    chunks = aiter(response.streaming_content)
    await anext(chunks)

    assert await asyncio.wait_for(anext(chunks), 2) == b"event: alive\ndata: {}\n\n"
    await chunks.aclose()


async def test_the_listener_is_removed_when_the_client_disconnects(fetch_block, token, queue):
    from asgiref.testing import ApplicationCommunicator
    from django.core.asgi import get_asgi_application

    session = await sync_to_async(queue)(fetch_block)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": f"/api/tasks/fetch_block/training/progress/{session.pk}", "query_string": b"robot=PointMass",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }
    communicator = ApplicationCommunicator(get_asgi_application(), scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(5)
    assert start["status"] == 200
    body = await communicator.receive_output(5)
    assert b"event: progress" in body["body"] and body["more_body"]
    assert session.pk in sse.relay.watched_sessions()

    await communicator.send_input({"type": "http.disconnect"})
    await communicator.wait(5)

    assert session.pk not in sse.relay.watched_sessions()


async def test_a_session_of_another_task_is_404(fetch_block, patrol, token, queue):
    session = await sync_to_async(queue)(fetch_block)

    response = await AsyncClient().get(api_url(patrol, f"progress/{session.pk}"), headers=bearer(token))

    assert response.status_code == 404


async def test_who_may_watch_is_the_channel_managers_decision(fetch_block, token, queue, monkeypatch):
    session = await sync_to_async(queue)(fetch_block)
    monkeypatch.setattr(sse.SessionChannelManager, "can_read_channel", lambda self, user, channel: False)

    response = await AsyncClient().get(progress_url(session), headers=bearer(token))

    assert response.status_code == 403


async def test_browser_session_may_watch(fetch_block, researcher, queue):
    session = await sync_to_async(queue)(fetch_block)
    client = AsyncClient()
    await client.aforce_login(researcher)

    response = await client.get(progress_url(session))

    assert response.status_code == 200
    await aiter(response.streaming_content).aclose()
