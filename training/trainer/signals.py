"""Signal handling: first SIGINT asks for a graceful stop, SIGTERM (or a second SIGINT) terminates.

The handlers never do I/O themselves. A graceful stop only sets a flag that the training loop
reads at the end of an epoch. A terminate raises `Terminated` (a BaseException, so library code
that catches `Exception`, like rl-games' retrying checkpoint writer, cannot swallow it) and the
main function flushes success states on the way out. Inside `critical()` (e.g. while a success
state file is renamed into place) the exception is held back until the block ends, so a file is
never written twice or half.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """Raised in the main thread when the trainer must exit now (SIGTERM or a second SIGINT)."""

    def __init__(self, exit_code: int, signal_name: str) -> None:
        super().__init__(f"{signal_name}: exiting with {exit_code}")
        self.exit_code = exit_code
        self.signal_name = signal_name


class Shutdown:
    def __init__(self) -> None:
        self.stop_requested = False
        self.pending: Terminated | None = None
        self._depth = 0
        self._final = False

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def finalizing(self) -> None:
        """From now on signals are only recorded: the exit path is already running."""
        self._final = True

    @contextmanager
    def critical(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.pending is not None and not self._final:
            raise self.pending

    def _terminate(self, exit_code: int, name: str) -> None:
        if self.pending is None:
            self.pending = Terminated(exit_code, name)
        if self._depth == 0 and not self._final:
            raise self.pending

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop_requested:
            self.stop_requested = True
            print("[trainer] SIGINT: stopping at the end of this epoch", file=sys.stderr, flush=True)
            return
        self._terminate(130, "SIGINT")

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._terminate(143, "SIGTERM")
