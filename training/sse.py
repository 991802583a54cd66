"""Live session progress over SSE, across processes, without Redis.

`send_event` only reaches listeners in the process that calls it (django-sse-stack.md §2), and a
session may be supervised anywhere: the embedded worker in this daphne, another daphne, a
`manage.py train` in a terminal. So the supervisor never sends events itself. It writes the
database, which is the truth, and each daphne process runs one `Relay` thread that:

- while somebody in this process watches a session, polls the watched sessions' change markers
  (`TrainingSession.updated_at` and the newest `SessionEvent` id, both indexed) every
  `GENHRL_RELAY_POLL_MS`, and stops querying when nobody watches;
- is woken at once (`threading.Event`) by `signals.session_changed`, which the verbs (start,
  cancel, resume) and the engine send after each write in this process;
- sends a full snapshot (`progress`, then `done` once the session ended) with `send_event` to the
  listeners of this process. Snapshots are idempotent: duplicates and gaps do no harm.

Streams never fail for lack of database connections. A stream's opening (its session, sign-in
and permission check: `StreamGateMiddleware`) and every snapshot a stream reads (`shared_snapshot`)
hold one of `GENHRL_STREAM_DB_CONNECTIONS` slots per process and close their connection before
giving it back; and a snapshot read is shared: every stream of a session that asks before a read
starts gets that read's result (one read per session change serves all its viewers, as the relay
does for updates). A thousand viewers connecting at once queue for a few connections.

The stream itself (`progress_events`) does not use django-eventstream's `stream()`, whose
connect window drops events published between its first read and its wait (§2.5). It registers
its listener first, then reads and sends the current snapshot, so every later change reaches it
as an event: a client that connects or reconnects gets the current state at once and misses
nothing after it. A finished session's stream ends with `done`.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, InterfaceError, connection
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django_eventstream import send_event
from django_eventstream.channelmanager import DefaultChannelManager
from django_eventstream.utils import get_channelmanager
from django_eventstream.views import Listener, get_listener_manager

from training.models import TrainingSession
from training.permissions import can_view
from training.signals import session_changed
from training.snapshots import progress_snapshot

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "session-"
PROGRESS = "progress"
DONE = "done"
# Sent by the relay, not about one session: `{"database": "unavailable"|"available", "message"}`.
NOTICE = "notice"
DATABASE_DOWN_MESSAGE = (
    "The portal cannot reach its database: training goes on, and this view catches up when it is back."
)
# An `alive` event this often while nothing changes: below every proxy's idle timeout (nginx 60 s),
# and what lets a page tell a quiet stream from a dead one (a server stopped without closing it, a
# network gone): training.js shows "connection lost" when nothing arrives for a few of these.
KEEPALIVE_SECONDS = 3.0
ALIVE = "alive"
# With nobody watching, the relay only waits to be woken; this bounds a missed wake-up.
IDLE_WAIT_SECONDS = 5.0
# After a database error the relay backs off, so a database outage does not become a busy loop.
ERROR_BACKOFF_SECONDS = 1.0


def channel_for(session_id: int) -> str:
    return f"{CHANNEL_PREFIX}{session_id}"


def session_id_of(channel: str) -> int | None:
    if not channel.startswith(CHANNEL_PREFIX):
        return None
    tail = channel[len(CHANNEL_PREFIX):]
    return int(tail) if tail.isdigit() else None


class SessionChannelManager(DefaultChannelManager):
    """Channels are `session-<id>`; nothing is stored (snapshots replace replay)."""

    def can_read_channel(self, user: Any, channel: str) -> bool:
        """Who may watch a session's progress: whoever may view the session (`permissions.can_view`).

        Every stream (ours and any django-eventstream view) asks here, so the stream can never be
        more open than the session page. `user` is None for anonymous.
        """
        session_id = session_id_of(channel)
        if session_id is None or user is None or not user.is_authenticated:
            return False
        session = TrainingSession.objects.select_related("task", "owner").filter(pk=session_id).first()
        return session is not None and can_view(user, session)

    def is_channel_reliable(self, channel: str) -> bool:
        # A full snapshot supersedes every earlier event, so there is nothing worth replaying.
        return False


def encode_snapshot(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, cls=DjangoJSONEncoder, separators=(",", ":"))


def done_payload(snapshot: dict[str, Any]) -> str:
    return encode_snapshot(
        {"session_id": snapshot["session_id"], "status": snapshot["status"], "error": snapshot["error"]}
    )


def sse_message(event: str, data: str) -> bytes:
    if "\n" in data or "\r" in data:
        # Compact JSON never has raw newlines; anything else sent to the channel might.
        data = "\ndata: ".join(data.splitlines())
    return f"event: {event}\ndata: {data}\n\n".encode()


Fingerprint = tuple[datetime | None, int | None]
DELETED: Fingerprint = (None, -1)


class Relay:
    """Notices changed sessions in the database and sends their snapshots to this process's listeners.

    One per process (`relay`). `step()` is one pass and can be called by a test on its own.
    """

    def __init__(self, poll_interval: float | None = None) -> None:
        self.poll_interval = (
            poll_interval if poll_interval is not None else settings.GENHRL_RELAY_POLL_MS / 1000.0
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._seen: dict[int, Fingerprint] = {}
        self._thread: threading.Thread | None = None
        self.sent = 0  # snapshots sent, for tests and the benchmark
        self.database_down = False

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the relay thread (once per process)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="genhrl-sse-relay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self, session_id: int | None = None) -> None:
        """Look now (thread-safe, never raises): `session_id` changed, or someone started watching."""
        if session_id is not None:
            with self._lock:
                self._pending.add(session_id)
        self._wake.set()

    def on_session_changed(self, sender: Any = None, session_id: int | None = None, **kwargs: Any) -> None:
        """Receiver of `signals.session_changed`: only sets a flag, so it cannot stop training."""
        self.wake(session_id)

    # -- one pass --------------------------------------------------------------------------------
    def watched_sessions(self) -> set[int]:
        """Sessions with at least one listener in this process."""
        manager = get_listener_manager()
        with manager.lock:
            channels = list(manager.listeners_by_channel)
        return {sid for sid in map(session_id_of, channels) if sid is not None}

    def fingerprints(self, session_ids: set[int]) -> dict[int, Fingerprint]:
        """Change markers of the sessions: every write of the supervisor moves one of them."""
        rows = (
            TrainingSession.objects.filter(pk__in=session_ids)
            .annotate(last_event=Max("events__pk"))
            .values_list("pk", "updated_at", "last_event")
        )
        return {pk: (updated_at, last_event) for pk, updated_at, last_event in rows}

    def step(self) -> int:
        """Send a snapshot of every watched session that changed or was flagged; return how many."""
        watched = self.watched_sessions()
        with self._lock:
            flagged = self._pending & watched
            self._pending.clear()
        for gone in set(self._seen) - watched:
            del self._seen[gone]
        if not watched:
            return 0
        marks = self.fingerprints(watched)
        changed = {sid for sid, mark in marks.items() if self._seen.get(sid) != mark} | (flagged & set(marks))
        for session_id in sorted(changed):
            self._seen[session_id] = marks[session_id]
            self.publish(session_id)
        for session_id in watched - set(marks):
            # Deleted (by the admin) while watched: end its streams instead of keeping them idle.
            if self._seen.get(session_id) != DELETED:
                self._seen[session_id] = DELETED
                payload = {"session_id": session_id, "status": "deleted", "error": "the session was deleted"}
                send_event(channel_for(session_id), DONE, encode_snapshot(payload), json_encode=False)
        return len(changed)

    def publish(self, session_id: int) -> dict[str, Any]:
        """Send the session's current snapshot (and `done` if it ended) to local listeners."""
        snapshot = progress_snapshot(session_id)
        channel = channel_for(session_id)
        send_event(channel, PROGRESS, encode_snapshot(snapshot), json_encode=False)
        if snapshot["terminal"]:
            send_event(channel, DONE, done_payload(snapshot), json_encode=False)
        self.sent += 1
        return snapshot

    def tell_viewers(self, notice: dict[str, Any]) -> None:
        """Send a `notice` to every stream of this process (what it says is not about one session)."""
        data = encode_snapshot(notice)
        for session_id in self.watched_sessions():
            send_event(channel_for(session_id), NOTICE, data, json_encode=False)

    # -- the thread ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            watching = bool(self.watched_sessions())
            self._wake.wait(self.poll_interval if watching else IDLE_WAIT_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception as exc:
                # A database hiccup must not end live progress for the life of the process.
                logger.exception("progress relay: pass failed; retrying")
                if isinstance(exc, DatabaseError | InterfaceError) and not self.database_down:
                    self.database_down = True
                    self.tell_viewers({"database": "unavailable", "message": DATABASE_DOWN_MESSAGE})
                try:
                    connection.close()
                except Exception:
                    logger.debug("progress relay: closing the connection failed", exc_info=True)
                self._stop.wait(ERROR_BACKOFF_SECONDS)
            else:
                if self.database_down:
                    self.database_down = False
                    self.tell_viewers({"database": "available", "message": ""})
            # The connection is kept between passes (no close_old_connections): with CONN_MAX_AGE=0
            # that would reconnect every few dozen milliseconds. It is closed after an error.
        connection.close()


relay = Relay()


def start_relay() -> Relay:
    """Start this process's relay and hear the sessions changed in this process (daphne only)."""
    session_changed.connect(relay.on_session_changed, weak=False, dispatch_uid="genhrl-sse-relay")
    relay.start()
    # Stopped (and joined) at exit, after the worker (atexit runs last-registered first): a daemon
    # thread still inside a database call while the interpreter finalises can crash it (the
    # likeliest cause of the rare "Segmentation fault" at a Ctrl-C of `make run`; issue 10).
    atexit.register(relay.stop)
    return relay


# -- the stream ------------------------------------------------------------------------------------
def can_watch(user: Any, session_id: int) -> bool:
    """Ask the channel manager, so the stream and any eventstream view share one rule."""
    return bool(get_channelmanager().can_read_channel(user, channel_for(session_id)))


# -- sharing the database among streams --------------------------------------------------------------
STREAM_PATH = re.compile(r"/training/progress/\d+/?$")  # the API's progress stream (training/api/views.py)
_gate: threading.BoundedSemaphore | None = None
_gate_size = 0
_gate_lock = threading.Lock()


def stream_gate() -> threading.BoundedSemaphore:
    """The process's slots for streams' database work (`GENHRL_STREAM_DB_CONNECTIONS`)."""
    global _gate, _gate_size
    size = int(settings.GENHRL_STREAM_DB_CONNECTIONS)
    with _gate_lock:
        if _gate is None or _gate_size != size:
            _gate, _gate_size = threading.BoundedSemaphore(size), size
        return _gate


class StreamGateMiddleware:
    """Opens a progress stream (session, sign-in, permission: all of the view) inside a slot of
    `stream_gate`, and closes the request thread's connection before the stream starts.

    Without it every connecting stream holds a connection of its own until its first snapshot: a
    thousand viewers opening a page together exceed PostgreSQL's `max_connections` (issue 11).
    First in MIDDLEWARE, so everything that reads the database for the request happens inside.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or not STREAM_PATH.search(request.path_info):
            return self.get_response(request)
        with stream_gate():
            try:
                return self.get_response(request)
            finally:
                # The thread (and so its connection) lives as long as the stream: close it now.
                connection.close()


def _close_connection() -> None:
    connection.close()  # looked up in the calling thread: each thread has its own connection


def _gated_snapshot(session_id: int) -> dict[str, Any]:
    """Read a snapshot inside a slot of `stream_gate`, then close this thread's connection."""
    with stream_gate():
        try:
            return progress_snapshot(session_id)
        finally:
            connection.close()


class _SharedReads:
    """One event loop's snapshot reads: per session the read in progress and the next one asked for."""

    def __init__(self) -> None:
        self.next: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.running: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # snapshots read from the database, for tests and the benchmark

    def start(self, session_id: int) -> None:
        future = self.next.pop(session_id)
        self.running.add(session_id)
        task = asyncio.ensure_future(self._read(session_id, future))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _read(self, session_id: int, future: asyncio.Future[dict[str, Any]]) -> None:
        try:
            self.reads += 1
            snapshot = await sync_to_async(_gated_snapshot, thread_sensitive=False)(session_id)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(snapshot)
        finally:
            self.running.discard(session_id)
            if session_id in self.next:
                self.start(session_id)  # streams that asked while this read ran get a fresh one


_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedReads] = weakref.WeakKeyDictionary()


def shared_reads() -> _SharedReads:
    loop = asyncio.get_running_loop()
    reads = _reads.get(loop)
    if reads is None:
        reads = _reads[loop] = _SharedReads()
    return reads


async def shared_snapshot(session_id: int) -> dict[str, Any]:
    """The session's snapshot from a read that starts after this call: shared by every stream of
    the session that asks before it starts (so a stream that listens, then asks, misses nothing).
    """
    reads = shared_reads()
    future = reads.next.get(session_id)
    if future is None:
        future = reads.next[session_id] = asyncio.get_running_loop().create_future()
        # Retrieved here, so a read whose every stream went away logs nothing.
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        if session_id not in reads.running:
            reads.start(session_id)
    return await asyncio.shield(future)


async def progress_events(session_id: int, user_id: Any) -> AsyncIterator[bytes]:
    """The body of a progress stream: the current snapshot now, then one per change, then `done`."""
    channel = channel_for(session_id)
    listener = Listener()
    listener.user_id = user_id
    listener.channels = {channel}
    listener.assign_loop()
    manager = get_listener_manager()
    # Listen before reading: a change after the read then arrives as an event, never in a gap.
    manager.add_listener(listener)
    relay.wake()
    # The request thread's connection (its sign-in and permission check) is not the stream's to keep.
    await sync_to_async(_close_connection)()
    first = asyncio.ensure_future(shared_snapshot(session_id))
    try:
        prefix = b"retry: 3000\n\n"
        while True:
            try:
                snapshot = await asyncio.wait_for(asyncio.shield(first), KEEPALIVE_SECONDS)
                break
            except TimeoutError:
                # The first read waits for a slot of the stream gate (many viewers at once): say the
                # stream is alive, or the page's silence watchdog reports a lost connection.
                yield prefix + sse_message(ALIVE, "{}")
                prefix = b""
        yield prefix + sse_message(PROGRESS, encode_snapshot(snapshot))
        if snapshot["terminal"]:
            yield sse_message(DONE, done_payload(snapshot))
            return
        while True:
            try:
                # asyncio.timeout, not wait_for: no extra task per wait, for each of many streams.
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    await listener.aevent.wait()
            except TimeoutError:
                yield sse_message(ALIVE, "{}")
                continue
            with manager.lock:
                items = listener.channel_items.pop(channel, [])
                listener.channel_items = {}
                overflow, listener.overflow = listener.overflow, False
                listener.aevent.clear()
            notice = next((e.data for e in reversed(items) if e.type == NOTICE), None)
            if overflow:
                # Events were dropped for this slow client: read the truth instead.
                snapshot = await shared_snapshot(session_id)
                progress = encode_snapshot(snapshot)
                done = done_payload(snapshot) if snapshot["terminal"] else None
            else:
                # Full snapshots: only the newest of a burst matters.
                progress = next((e.data for e in reversed(items) if e.type == PROGRESS), None)
                done = next((e.data for e in items if e.type == DONE), None)
            body = b"" if notice is None else sse_message(NOTICE, notice)
            if progress is not None:
                body += sse_message(PROGRESS, progress)
            if done is not None:
                body += sse_message(DONE, done)
            if body:
                yield body
            if done is not None:
                return
    finally:
        if not first.done():
            first.cancel()
        manager.remove_listener(listener)

