"""Keeping a supervisor going while its database is unreachable.

A trainer needs no database: it trains and writes files. Its supervisor needs one only to record
what happens. So a failed write (a terminated connection, a restarting server, SQLite's "database
is locked") must not stop training: `DatabaseGuard.call` runs one database step, and when the
database fails it closes the broken connection and says "not now"; the caller keeps what it
wanted to write (records, lines, the outcome) and tries again after a bounded back-off. Once the
outage passes `outage_limit` the orchestrator stops its trainers gracefully (they keep their
success states and write a final checkpoint), and if it lasts twice that long it gives up and
leaves the session to the lease reaper.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a lost or refused connection raises; anything else (an IntegrityError, a bug) is not an outage.
OUTAGE_ERRORS = (OperationalError, InterfaceError)
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 2.0  # short enough that a database back after a long outage is seen within seconds


class DatabaseGuard:
    """Runs database steps, and tracks an outage: since when, when to try next, when to give up."""

    def __init__(self, *, outage_limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.outage_limit = outage_limit
        self.clock = clock
        self.down_since: float | None = None
        self._last_failure = 0.0
        self._retry_at = 0.0
        self._backoff = BACKOFF_FIRST
        self._last_outage: float | None = None  # length of the outage that just ended, until reported

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def call(self, step: Callable[..., T], *args: Any) -> T | None:
        """`step(*args)`, or None if the database is down (now, or still within the back-off)."""
        now = self.clock()
        if self.down_since is not None and now < self._retry_at:
            return None
        try:
            result = step(*args)
        except OUTAGE_ERRORS as exc:
            self._failed(now, exc)
            return None
        if self.down_since is not None:
            self._last_outage = now - self.down_since
            logger.warning("database reachable again after %.1f s", self._last_outage)
            self.down_since = None
            self._backoff = BACKOFF_FIRST
        return result

    def _failed(self, now: float, exc: Exception) -> None:
        self._last_failure = now
        if self.down_since is None:
            self.down_since = now
            logger.warning("database unreachable (%s); training goes on, writes are kept", exc)
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._retry_at = now + self._backoff
        try:
            connection.close()  # the next step reconnects
        except Exception:
            logger.debug("closing the broken connection failed", exc_info=True)

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else self.clock() - self.down_since

    def outage_over_limit(self) -> bool:
        return self.down_for() >= self.outage_limit

    def given_up(self) -> bool:
        """Twice the limit passed and the database still refused a try made after that."""
        if self.down_since is None:
            return False
        return self._last_failure - self.down_since >= 2 * self.outage_limit

    def recovered(self) -> bool:
        """True once after an outage ended (so the caller can record that it happened)."""
        return self._last_outage is not None

    def recovery_message(self, dropped_lines: int) -> str:
        seconds, self._last_outage = self._last_outage or 0.0, None
        kept = (
            f"; {dropped_lines} lines of output are only in trainer.log" if dropped_lines
            else "; nothing was lost"
        )
        return f"the database was unreachable for {seconds:.0f} s; training went on{kept}"
