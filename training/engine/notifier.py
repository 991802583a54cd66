"""The notifier: a thread of each worker that writes and sends the messages of ended sessions.

It is not part of any supervisor's loop: a mail server that hangs or a webhook that times out
delays only the next message (`training.notifications` bounds each attempt and retries with
backoff). Every worker runs one; messages are claimed before sending, so none goes out twice.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from training import notifications

logger = logging.getLogger(__name__)


class Notifier:
    """Every `interval` seconds (or when woken): enqueue what ended, deliver what is due."""

    def __init__(self, interval: float = 5.0, *, name: str = "genhrl-notifier") -> None:
        self.interval = interval
        self.name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A session ended: look now rather than at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def step(self) -> int:
        """One pass; returns how many messages it tried to send."""
        notifications.enqueue_due()
        return len(notifications.deliver_due())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                logger.warning("notifier: pass failed; retrying", exc_info=True)
                try:
                    connection.close()
                except Exception:
                    logger.debug("notifier: closing the connection failed", exc_info=True)
            else:
                close_old_connections()
            self._wake.wait(self.interval)
            self._wake.clear()
        connection.close()
