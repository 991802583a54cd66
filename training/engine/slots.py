"""Training slots: how many trainers run at once, and who gets the next free one.

A worker (or `manage.py train --slots N`) owns one `SlotPool`; every session it supervises takes a
slot per trainer it launches and gives it back when the trainer ends. One session may hold
several slots (skills in different subtrees train in parallel), but never at the expense of
another: a session holding its fair share (`total // sessions that want slots`, at least one)
gets another slot only when no other session is waiting for one. (A worker claims a queued
session as soon as it runs fewer sessions than it has slots, and registers it as wanting a slot
at once, so a session that is just planning is not passed over either.)
"""

from __future__ import annotations

import threading
from collections.abc import Hashable


class SlotPool:
    """A counted set of slots shared fairly by the sessions of one worker. Thread-safe."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("a slot pool needs at least one slot")
        self.total = total
        self._lock = threading.Lock()
        self._held: dict[Hashable, int] = {}
        self._wanting: dict[Hashable, int] = {}  # holder -> skills it could start now

    @property
    def free(self) -> int:
        with self._lock:
            return self.total - sum(self._held.values())

    def held(self, holder: Hashable) -> int:
        with self._lock:
            return self._held.get(holder, 0)

    def want(self, holder: Hashable, count: int) -> None:
        """Say how many more trainers `holder` could start now (0: none), for fairness."""
        with self._lock:
            if count > 0:
                self._wanting[holder] = count
            else:
                self._wanting.pop(holder, None)

    def fair_share(self) -> int:
        with self._lock:
            return self._fair_share()

    def _fair_share(self) -> int:
        contenders = set(self._wanting) | {h for h, n in self._held.items() if n}
        return max(1, self.total // max(1, len(contenders)))

    def try_acquire(self, holder: Hashable) -> bool:
        """Take a slot for `holder` if one is free and taking it is fair; False otherwise."""
        with self._lock:
            if self.total - sum(self._held.values()) <= 0:
                return False
            mine = self._held.get(holder, 0)
            if mine >= self._fair_share():
                others_hungry = any(
                    count and self._held.get(other, 0) < self._fair_share()
                    for other, count in self._wanting.items() if other != holder
                )
                if others_hungry:
                    return False
            self._held[holder] = mine + 1
            return True

    def release(self, holder: Hashable) -> None:
        with self._lock:
            mine = self._held.get(holder, 0)
            if mine <= 1:
                self._held.pop(holder, None)
            else:
                self._held[holder] = mine - 1

    def forget(self, holder: Hashable) -> None:
        """`holder` is done: drop what it held and wanted (a safety net; trainers release their own)."""
        with self._lock:
            self._held.pop(holder, None)
            self._wanting.pop(holder, None)
