"""The two signals that connect the layers without importing each other.

- `session_changed(session_id)`: a write changed what a viewer of the session sees (sent by the
  verbs in `training.services` and by the engine after each flush). The SSE relay in a web
  process listens, so viewers of sessions supervised in that process hear at once; other
  processes' writes reach it through the database.
- `session_queued(session_id)`: a session was queued (start, resume). An embedded worker in the
  same process listens and claims it now instead of at its next poll.

Both are sent with `send_robust` through `notify_*`: a failing receiver is logged and never
reaches the caller, so a notifier can never stop training or fail a request.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

session_changed = Signal()
session_queued = Signal()


def _send(signal: Signal, session_id: int) -> None:
    from training.models import TrainingSession

    for receiver, response in signal.send_robust(sender=TrainingSession, session_id=session_id):
        if isinstance(response, Exception):
            logger.warning("receiver %r of a session signal failed: %r", receiver, response)


def notify_changed(session_id: int) -> None:
    """Tell this process's listeners (the SSE relay) that the session changed."""
    _send(session_changed, session_id)


def notify_queued(session_id: int) -> None:
    """Tell this process's listeners (an embedded worker) that the session waits to be claimed."""
    _send(session_queued, session_id)
    _send(session_changed, session_id)
