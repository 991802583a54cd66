"""The relay: notices changed sessions in the database and sends snapshots to this process's listeners."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import pytest
from django_eventstream.views import Listener, get_listener_manager

from tests.factories import wait_for
from training import leases, services, sse
from training.signals import session_changed

pytestmark = pytest.mark.django_db


@pytest.fixture
def listen() -> Iterator[Callable[[int], Listener]]:
    """Register listeners as a stream would (without a running loop: nothing awaits them here)."""
    loop = asyncio.new_event_loop()
    made: list[Listener] = []

    def make(session_id: int) -> Listener:
        listener = Listener()
        listener.loop = loop
        listener.channels = {sse.channel_for(session_id)}
        get_listener_manager().add_listener(listener)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        get_listener_manager().remove_listener(listener)
    loop.close()


@pytest.fixture
def relay() -> sse.Relay:
    return sse.Relay(poll_interval=0.01)


def received(listener: Listener, session_id: int) -> list[tuple[str, dict]]:
    items = listener.channel_items.pop(sse.channel_for(session_id), [])
    return [(item.type, json.loads(item.data)) for item in items]


def test_nobody_watching_means_no_queries(relay, fetch_block, queue, django_assert_num_queries):
    queue(fetch_block)

    with django_assert_num_queries(0):
        assert relay.step() == 0


def test_first_look_sends_then_only_changes_are_sent(relay, fetch_block, queue, listen):
    session = queue(fetch_block)
    listener = listen(session.pk)

    assert relay.step() == 1
    assert [(t, d["status"]) for t, d in received(listener, session.pk)] == [("progress", "queued")]
    assert relay.step() == 0

    leases.claim_next_session("elsewhere")
    assert relay.step() == 1
    assert [(t, d["status"]) for t, d in received(listener, session.pk)] == [("progress", "running")]


def test_a_finished_session_gets_progress_then_done(relay, fetch_block, queue, listen):
    session = queue(fetch_block)
    listener = listen(session.pk)
    relay.step()
    received(listener, session.pk)

    services.request_cancel(session, actor="test")
    relay.step()

    assert [(t, d["status"]) for t, d in received(listener, session.pk)] == [
        ("progress", "cancelled"), ("done", "cancelled")
    ]


def test_only_watched_sessions_are_read(relay, fetch_block, patrol, queue, listen):
    watched = queue(fetch_block)
    queue(patrol)
    listen(watched.pk)

    assert relay.step() == 1
    assert relay.watched_sessions() == {watched.pk}


def test_a_signal_from_this_process_is_sent_even_without_a_database_change(relay, fetch_block, queue, listen):
    session = queue(fetch_block)
    listener = listen(session.pk)
    relay.step()
    received(listener, session.pk)

    relay.on_session_changed(session_id=session.pk)

    assert relay.step() == 1
    assert len(received(listener, session.pk)) == 1


def test_the_signal_receiver_never_raises_into_the_orchestrator(relay, monkeypatch):
    monkeypatch.setattr(sse, "relay", relay)
    session_changed.connect(relay.on_session_changed, weak=False, dispatch_uid="test-relay")
    try:
        answers = session_changed.send_robust(sender=None, session_id=12345)
    finally:
        session_changed.disconnect(dispatch_uid="test-relay")
    assert all(not isinstance(answer, Exception) for _, answer in answers)


def test_the_relay_thread_survives_a_failing_pass(relay, monkeypatch, fetch_block, queue, listen):
    session = queue(fetch_block)
    listen(session.pk)
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return 0

    monkeypatch.setattr(relay, "step", flaky)
    monkeypatch.setattr(sse, "ERROR_BACKOFF_SECONDS", 0.01)
    relay.start()
    try:
        assert_soon(lambda: len(calls) >= 3)
    finally:
        relay.stop()
    assert not relay.running


def assert_soon(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    assert wait_for(condition, timeout)


def test_permission_is_decided_by_one_channel_manager_method(fetch_block, queue, researcher):
    session = queue(fetch_block)
    manager = sse.SessionChannelManager()

    assert manager.can_read_channel(researcher, sse.channel_for(session.pk))
    assert not manager.can_read_channel(None, sse.channel_for(session.pk))
    assert not manager.can_read_channel(researcher, sse.channel_for(session.pk + 1000))
    assert not manager.can_read_channel(researcher, "something-else")
    assert not manager.is_channel_reliable(sse.channel_for(session.pk))


def test_a_deleted_session_ends_its_streams_once(relay, fetch_block, queue, listen):
    session = queue(fetch_block)
    listener = listen(session.pk)
    relay.step()
    received(listener, session.pk)

    pk = session.pk
    session.delete()
    relay.step()
    relay.step()

    assert received(listener, pk) == [("done", {"session_id": pk, "status": "deleted", "error": "the session was deleted"})]


def test_viewers_are_told_when_the_database_is_away_and_back(relay, monkeypatch, fetch_block, queue, listen):
    """Training goes on without the database; the page says so instead of freezing silently."""
    from django.db import OperationalError

    session = queue(fetch_block)
    listener = listen(session.pk)
    calls = []

    def outage_then_back() -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("server closed the connection unexpectedly")
        return 0

    monkeypatch.setattr(relay, "step", outage_then_back)
    monkeypatch.setattr(sse, "ERROR_BACKOFF_SECONDS", 0.01)
    relay.start()
    try:
        assert_soon(lambda: len(calls) >= 4)
    finally:
        relay.stop()
    notices = [data for kind, data in received(listener, session.pk) if kind == sse.NOTICE]
    assert [n["database"] for n in notices] == ["unavailable", "available"]  # once each
    assert "training goes on" in notices[0]["message"]
