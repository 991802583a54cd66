"""The worker loop: claims queued sessions, supervises each in a thread, holds their leases.

One class, two homes: `manage.py training_worker` runs it in the foreground of its own process
(`serve()`, stopped by SIGTERM), and the embedded worker runs it in a thread of daphne
(`start()`/`stop()`). With the embedded one, `make run` trains what the web queues with no other
process to start; it is started from `genhrl_site/asgi.py` (so management commands never start
one) when GENHRL_EMBEDDED_WORKER is on, and serves the "default" queue. Either way it claims queued
sessions with the conditional update of `leases.claim_next_session` (so other workers may poll the
same table), runs at most GENHRL_WORKER_SLOTS at once (the others wait, queued, with their place in
the queue shown), and holds each by its heartbeat. Each pass of its loop is `step()`, which a test
can call alone. The embedded worker hears `signals.session_queued`, so a session queued in this
process is claimed at once.

Each session runs in its own thread through `Orchestrator(...).run()`, which supervises the
trainer subprocesses and writes every change to the database, where the SSE relay
(`training/sse.py`) picks it up.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from training import leases, queueing, sweeps
from training.engine.notifier import Notifier
from training.engine.orchestrator import Orchestrator
from training.engine.reporting import WorkerReporter
from training.engine.slots import SlotPool
from training.leases import worker_identity
from training.models import TrainingSession
from training.services import DEFAULT_QUEUE
from training.signals import session_queued

logger = logging.getLogger(__name__)

# With the Ray executor: how often a worker looks for jobs whose runs are already over.
RAY_SWEEP_INTERVAL = 30.0


@dataclass
class RunningSession:
    """One session being trained by this worker."""

    session_id: int
    orchestrator: Orchestrator
    thread: threading.Thread
    started: float = field(default_factory=time.monotonic)


class Worker:
    """A supervisor with `slots` trainers at once, fed from the queue of sessions in the database."""

    def __init__(
        self,
        slots: int | None = None,
        *,
        queue: str = DEFAULT_QUEUE,
        poll_interval: float = 2.0,
        heartbeat_interval: float = leases.HEARTBEAT_INTERVAL,
        reap_interval: float = leases.REAP_INTERVAL,
        stale_after: timedelta | None = None,
        worker_id: str | None = None,
        orchestrator_options: dict[str, Any] | None = None,
    ) -> None:
        self.slots = slots if slots is not None else settings.GENHRL_WORKER_SLOTS
        # Trainers at once, shared by the sessions this worker supervises (engine/slots.py): a
        # session may use several when its skill tree allows, fairly with the others.
        self.pool = SlotPool(self.slots)
        self.queue = queue
        self.stale_after = stale_after
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.reap_interval = reap_interval
        self.worker_id = worker_id or worker_identity()
        # Passed to every orchestrator (tests give a fake trainer and short grace periods).
        self.orchestrator_options = orchestrator_options or {}
        self.running: dict[int, RunningSession] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0
        self._last_reap = 0.0
        self._last_sweep = 0.0
        # When this worker last found the database reachable again after an outage: every
        # supervisor's heartbeat went stale during it, so nothing is reaped until they have had a
        # lease's time to write again (else a live session would be marked interrupted).
        self._database_back_at = float("-inf")
        self._database_down = False
        # Bumped by signal handlers (`request_shutdown`); only `serve()` acts on it, because a
        # handler must not take the locks the interrupted main thread may hold.
        self.shutdown_requests = 0
        self.shutdown_reason = ""  # what a handler saw ("... received SIGTERM"), for the sessions
        # Issue 14: host and trainer figures with each heartbeat (engine/reporting.py), and the
        # notifier thread that tells owners when their sessions end (engine/notifier.py).
        self.reporter = WorkerReporter(self)
        self.notifier = Notifier()

    # -- one pass ---------------------------------------------------------------------------------
    def step(self) -> list[int]:
        """One supervisor pass: forget finished sessions, renew leases, reap, claim; returns claimed ids."""
        self.collect_finished()
        now = time.monotonic()
        if now - self._last_heartbeat >= self.heartbeat_interval:
            self.renew_heartbeats()
            self._last_heartbeat = now
            self.reporter.report()
        if now - self._last_reap >= self.reap_interval and self._reaping_allowed(now):
            # Sessions of crashed workers (any process) would otherwise block their task forever.
            leases.reap_stale_sessions(stale_after=self.stale_after)
            self._last_reap = now
        if settings.GENHRL_EXECUTOR == "ray" and now - self._last_sweep >= RAY_SWEEP_INTERVAL:
            self._last_sweep = now
            self._sweep_ray()
        if not self._stop.is_set():
            # A sweep whose trial ended queues its next one now (at the back of the queue), so
            # this very pass can claim it. Failures are logged per sweep inside.
            sweeps.advance_all(self.queue)
        claimed = []
        while not self._stop.is_set() and self.free_slots() > 0:
            session = self.claim_one()
            if session is None:
                break
            claimed.append(session.pk)
        return claimed

    def _sweep_ray(self) -> None:
        """Stop Ray jobs whose runs are over; a cluster hiccup is logged, never stops the loop."""
        try:
            stopped = leases.sweep_ray_jobs()
        except Exception:
            logger.warning("worker %s: Ray sweep failed; retrying later", self.worker_id, exc_info=True)
            return
        if stopped:
            logger.warning("worker %s: stopped Ray jobs whose runs were over: %s", self.worker_id, stopped)

    def _reaping_allowed(self, now: float) -> bool:
        if self._database_down:
            return False  # the first pass since an outage: the heartbeats are all still stale
        lease = (self.stale_after or leases.lease_duration()).total_seconds()
        return now - self._database_back_at >= lease

    def free_slots(self) -> int:
        """Sessions this worker may still take on: each needs at least one trainer slot."""
        with self._lock:
            return self.slots - len(self.running)

    def claim_one(self) -> TrainingSession | None:
        """Claim the oldest queued session and start its thread, or return None if there is none."""
        session = leases.claim_next_session(self.worker_id, queue=self.queue)
        if session is None:
            return None
        session = TrainingSession.objects.select_related("task").get(pk=session.pk)
        orchestrator = Orchestrator(
            session, worker_id=self.worker_id, slots=self.pool, **self.orchestrator_options
        )
        self.pool.want(orchestrator, 1)  # before it plans: a running session must not take its slot
        thread = threading.Thread(
            target=self._run, args=(orchestrator,), name=f"genhrl-session-{session.pk}", daemon=True
        )
        with self._lock:
            self.running[session.pk] = RunningSession(session.pk, orchestrator, thread)
        thread.start()
        logger.info("worker %s: training session %s of %s", self.worker_id, session.pk, session.task)
        return session

    def collect_finished(self) -> list[int]:
        with self._lock:
            done = [sid for sid, slot in self.running.items() if not slot.thread.is_alive()]
            for sid in done:
                del self.running[sid]
        if done:
            # A running session ended: a session held by its owner's limit may be next now, and
            # its owner may want to hear about it.
            self.notifier.wake()
            try:
                queueing.touch_queue(self.queue)
            except Exception:
                logger.warning("worker %s: cannot refresh the queue's positions", self.worker_id, exc_info=True)
        return done

    def renew_heartbeats(self) -> int:
        """Renew the lease of every session whose thread is alive.

        The orchestrator heartbeats while a trainer runs; this covers the gaps (planning, deleting
        a big `--new-run` folder, publishing a policy).
        """
        with self._lock:
            alive = [sid for sid, slot in self.running.items() if slot.thread.is_alive()]
        return leases.renew(alive, self.worker_id)

    def _run(self, orchestrator: Orchestrator) -> None:
        try:
            orchestrator.run()
        except Exception:
            # run() records its own failures; anything else must not take the worker down.
            logger.exception("worker %s: session %s ended with an error", self.worker_id, orchestrator.session.pk)
        finally:
            connection.close()
            self._wake.set()  # a slot is free: look at the queue now

    # -- the thread -------------------------------------------------------------------------------
    def notify(self) -> None:
        """A session was queued: claim it now instead of at the next poll (thread-safe)."""
        self._wake.set()

    def on_session_queued(self, sender: Any = None, session_id: int | None = None, **kwargs: Any) -> None:
        """Receiver of `signals.session_queued`: only sets a flag, so it cannot fail a request."""
        self.notify()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="genhrl-worker", daemon=True)
            self._thread.start()
        self.notifier.start()
        logger.info("embedded worker %s started with %s slot(s)", self.worker_id, self.slots)

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.safe_step()
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        connection.close()

    def stop(self, grace: float = 30.0, *, reason: str = "the web server stopped") -> None:
        """Stop claiming, stop running sessions gracefully, and wait for them (bounded).

        A session cut short by a server shutdown is nobody's cancel: it ends `interrupted` with
        `reason`, its success states and completed skills kept, so it can be resumed. After
        `grace` seconds the trainers are stopped at once (SIGTERM, then SIGKILL, to their own
        process groups only).
        """
        self._stop.set()
        self._wake.set()
        with self._lock:
            slots = list(self.running.values())
        for slot in slots:
            slot.orchestrator.shutdown(reason)
        deadline = time.monotonic() + grace
        for slot in slots:
            slot.thread.join(max(0.0, deadline - time.monotonic()))
        stragglers = [slot for slot in slots if slot.thread.is_alive()]
        for slot in stragglers:
            slot.orchestrator.shutdown(reason, now=True)
        for slot in stragglers:
            slot.thread.join(4.0)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._thread = None
        self.notifier.stop()
        self.collect_finished()
        self.reporter.stopped()


    # -- the foreground loop (`manage.py training_worker`) ------------------------------------------
    def request_shutdown(self) -> None:
        """For signal handlers: the first call stops gracefully, the second at once."""
        self.shutdown_requests += 1

    def serve(self, *, reason: str = "the worker was stopped (SIGTERM)", hard_timeout: float = 10.0) -> None:
        """Run the loop in this thread until shut down, then leave every session resumable.

        After the first `request_shutdown()` it claims nothing more, stops each trainer
        gracefully (SIGINT, so it checkpoints and flushes its success states) and marks each
        session `interrupted` with `reason`, renewing the leases while it waits. A second request
        stops the trainers at once (SIGTERM, then SIGKILL, to their own process groups) and returns
        within `hard_timeout`; a session still not ended then is left to the lease reaper.
        """
        handled = 0
        hard_deadline: float | None = None
        self.notifier.start()
        while True:
            requests = self.shutdown_requests
            if requests > handled:
                handled = requests
                self._stop.set()
                now = requests >= 2
                self.shutdown_sessions(self.shutdown_reason or reason, now=now)
                if now and hard_deadline is None:
                    hard_deadline = time.monotonic() + hard_timeout
            if self._stop.is_set():
                self.collect_finished()
                if not self.running:
                    break
                if time.monotonic() - self._last_heartbeat >= self.heartbeat_interval:
                    self.renew_heartbeats()
                    self._last_heartbeat = time.monotonic()
                if hard_deadline is not None and time.monotonic() >= hard_deadline:
                    self.kill_trainers()
                    break
            else:
                self.safe_step()
            self._nap(0.05 if self._stop.is_set() else self.poll_interval)
        self.notifier.stop()
        self.reporter.stopped()
        connection.close()

    def safe_step(self) -> None:
        """`step()`, surviving a database outage: the loop retries on its next pass."""
        try:
            self.step()
        except Exception:
            self._database_down = True
            logger.exception("worker %s: pass failed; retrying", self.worker_id)
            try:
                connection.close()
            except Exception:
                logger.debug("worker: closing the connection failed", exc_info=True)
        else:
            if self._database_down:
                self._database_down = False
                self._database_back_at = time.monotonic()
            close_old_connections()

    def _nap(self, seconds: float) -> None:
        # Short slices, so a shutdown request (a plain counter) is seen within 50 ms.
        deadline = time.monotonic() + seconds
        seen = self.shutdown_requests
        while time.monotonic() < deadline and self.shutdown_requests == seen:
            if self._wake.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
                self._wake.clear()
                return

    def shutdown_sessions(self, reason: str, *, now: bool = False) -> int:
        """Ask every running session to stop and end `interrupted` (resumable); returns how many."""
        with self._lock:
            slots = list(self.running.values())
        for slot in slots:
            slot.orchestrator.shutdown(reason, now=now)
        return len(slots)

    def kill_trainers(self) -> None:
        """Last resort at the hard deadline: SIGKILL each running trainer's own process group."""
        with self._lock:
            slots = list(self.running.values())
        for slot in slots:
            slot.orchestrator.kill_trainers()
        for slot in slots:
            slot.thread.join(2.0)


embedded_worker = Worker()


def start_embedded_worker() -> Worker:
    """Start this process's worker (daphne only) and stop it cleanly when the process exits."""
    session_queued.connect(embedded_worker.on_session_queued, weak=False, dispatch_uid="genhrl-embedded-worker")
    embedded_worker.reporter.embedded = True
    embedded_worker.start()
    # atexit runs before daemon threads are torn down, so trainers are stopped, not orphaned.
    atexit.register(embedded_worker.stop)
    return embedded_worker
