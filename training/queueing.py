"""The fair queue: the order in which workers claim queued sessions, per-user limits, staff
reordering, and the queue positions people see, all from one rule so that a position shown is the
order the workers will really follow.

The rule (`leases.claim_next_session` applies it, `plan` simulates it):

1. Queued sessions of a queue are taken in *queue order*: `queue_rank`, the time a session was
   queued unless staff moved it (`move`), then age.
2. A session whose owner already runs as many sessions as their limit allows (`SessionLimit`: the
   user's own row, else the lab-wide row, else GENHRL_SESSIONS_PER_USER; 0 means none) is *held*:
   it keeps its place and those behind it go first, until one of the owner's sessions ends.
3. A sweep runs one trial at a time, and queues the next one only when the last one ended, so each
   trial joins the back of the queue behind whoever queued meanwhile: a sweep never holds more than
   one place and never starves other users (see training/sweeps.py).

The limit is checked when a worker claims, under a per-owner lock (PostgreSQL: a transaction-level
advisory lock; SQLite: its single writer), so concurrent workers never exceed it; and under a limit
a session is claimed only if the owner's sessions queued ahead of it fit too, so a worker that
skipped a row another worker holds never starts an owner's sessions out of their order.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from training.lab_models import SessionLimit
from training.models import SessionEvent, SessionStatus, TrainingSession
from training.signals import notify_changed

logger = logging.getLogger(__name__)

# Queue order: staff moves change `queue_rank`; equal ranks fall back to age.
ORDER = ("queue_rank", "created_at", "pk")
# The statuses that count against a user's limit: a session holding a worker.
RUNNING = (SessionStatus.RUNNING, SessionStatus.CANCELLING)
# Namespace of the PostgreSQL advisory locks taken per owner while claiming (any 32-bit number
# the portal owns; the owner's id is the low half of the key).
_LOCK_NAMESPACE = 0x47484C  # "GHL"
MOVES = ("top", "up", "down", "bottom")


# -- limits -----------------------------------------------------------------------------------------
def default_limit() -> int:
    """Sessions any user may run at once unless their own limit says otherwise (0: no limit)."""
    row = SessionLimit.objects.filter(user__isnull=True).order_by("pk").first()
    return row.max_running if row is not None else int(getattr(settings, "GENHRL_SESSIONS_PER_USER", 0))


def limits(user_ids: Iterable[int]) -> dict[int, int]:
    """Each user's limit (0: none), from their own row or the default."""
    ids = set(user_ids)
    default = default_limit()
    own = dict(SessionLimit.objects.filter(user_id__in=ids).values_list("user_id", "max_running"))
    return {uid: own.get(uid, default) for uid in ids}


def limit_for(user_id: int) -> int:
    return limits([user_id])[user_id]


def running_counts(user_ids: Iterable[int] | None = None) -> Counter[int]:
    """Sessions each owner has running (or cancelling) now, in every queue."""
    rows = TrainingSession.objects.filter(status__in=RUNNING, owner__isnull=False)
    if user_ids is not None:
        rows = rows.filter(owner_id__in=set(user_ids))
    grouped = rows.order_by().values("owner_id").annotate(n=Count("pk")).values_list("owner_id", "n")
    return Counter(dict(grouped))


def owners_at_limit(user_ids: Iterable[int]) -> set[int]:
    """Of these owners, those who may not start another session now."""
    ids = set(user_ids)
    if not ids:
        return set()
    caps = limits(ids)
    running = running_counts(ids)
    return {uid for uid in ids if caps[uid] and running[uid] >= caps[uid]}


def lock_owner(owner_id: int) -> None:
    """Serialize claims of one owner's sessions until the transaction ends (PostgreSQL).

    SQLite needs nothing: its transactions take the one write lock at BEGIN (IMMEDIATE mode,
    settings.py), so two claims never interleave.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, int(owner_id)])


def may_claim(session: TrainingSession) -> bool:
    """In the claiming transaction: may this session start now? Locks the owner first, so what it
    reads cannot change before the claim commits.

    Under a limit, a session starts only if it and every session of the owner queued ahead of it
    fit: another worker may hold an earlier one locked (SKIP LOCKED passed over it) and be waiting
    for this lock, and taking the later one could leave the earlier held by the limit, out of the
    order it was queued in. The earlier one's worker claims it once this transaction ends.
    """
    if session.owner_id is None:
        return True  # started from a terminal (`manage.py train`): no account to limit
    lock_owner(session.owner_id)
    cap = limit_for(session.owner_id)
    if not cap:
        return True
    room = cap - running_counts([session.owner_id])[session.owner_id]
    if room <= 0:
        return False
    fitting = (
        TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=session.queue, owner_id=session.owner_id)
        .order_by(*ORDER).values_list("pk", flat=True)[:room]
    )
    return session.pk in set(fitting)


# -- positions --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    """A queued session's place: `position` 1 is claimed next; held sessions have none."""

    session_id: int
    owner_id: int | None
    position: int | None
    held: str = ""  # why it waits although a slot may be free


def plan(queue: str = "default", limit: int | None = None) -> list[Place]:
    """Every queued session of `queue` in queue order, numbered in the order workers will claim them
    if nothing else changes: a session whose owner is (or, after the claims ahead of it, would be) at
    their limit is held, without a number. With `limit`, only the first `limit` (a place depends
    only on the sessions ahead of it, so they are numbered the same)."""
    queued = TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=queue).order_by(*ORDER)
    rows = list((queued[:limit] if limit is not None else queued).values_list("pk", "owner_id"))
    owners = {owner for _, owner in rows if owner is not None}
    caps = limits(owners)
    running = running_counts(owners)
    places: list[Place] = []
    position = 0
    for pk, owner in rows:
        cap = caps.get(owner, 0) if owner is not None else 0
        if cap and running[owner] >= cap:
            places.append(Place(pk, owner, None, f"its owner may run {cap} session{'s' if cap != 1 else ''} at a time"))
            continue
        position += 1
        if owner is not None:
            running[owner] += 1  # as if claimed: their next session may be held behind it
        places.append(Place(pk, owner, position))
    return places


def place_of(session: TrainingSession) -> Place | None:
    """The queued session's place in its queue (None unless it is queued)."""
    if session.status != SessionStatus.QUEUED:
        return None
    return next((p for p in plan(session.queue) if p.session_id == session.pk), None)


def positions(queue: str = "default", limit: int | None = None) -> dict[int, Place]:
    return {place.session_id: place for place in plan(queue, limit)}


def touch_queue(queue: str) -> None:
    """Every queued session's place may have changed: bump them so live viewers (the SSE relay
    keys on `updated_at`) get their new position."""
    TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=queue).update(updated_at=timezone.now())


# -- staff ------------------------------------------------------------------------------------------
class NotQueued(Exception):
    """Only a queued session has a place to move."""


def move(session: TrainingSession, to: str, *, actor: str) -> TrainingSession:
    """Move a queued session in its queue (staff): `top`, `up` (before the one ahead), `down`, `bottom`.

    Up and down swap ranks with the neighbour, so the rest of the queue keeps its order exactly.
    The move is recorded on the session, and every queued viewer is told (positions changed).
    """
    if to not in MOVES:
        raise ValueError(f"move must be one of {', '.join(MOVES)}")
    with transaction.atomic():
        session = TrainingSession.objects.select_for_update().get(pk=session.pk)
        if session.status != SessionStatus.QUEUED:
            raise NotQueued(f"session {session.pk} is {session.status}, not queued")
        queued = list(
            TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=session.queue)
            .order_by(*ORDER).values_list("pk", "queue_rank")
        )
        ids = [pk for pk, _ in queued]
        index = ids.index(session.pk)
        ranks = dict(queued)
        mine = ranks[session.pk]
        if to == "top" and index > 0:
            mine = min(ranks.values()) - 1.0
        elif to == "bottom" and index < len(ids) - 1:
            mine = max(ranks.values()) + 1.0
        elif to in ("up", "down"):
            other = index - 1 if to == "up" else index + 1
            if 0 <= other < len(ids):
                neighbour = ids[other]
                theirs = ranks[neighbour]
                if theirs == mine:  # equal ranks order by age: step past instead of swapping
                    mine = theirs - 1e-3 if to == "up" else theirs + 1e-3
                else:
                    TrainingSession.objects.filter(pk=neighbour).update(queue_rank=mine)
                    mine = theirs
        if mine != ranks[session.pk]:
            TrainingSession.objects.filter(pk=session.pk).update(queue_rank=mine)
            SessionEvent.objects.create(
                session=session, kind=SessionEvent.Kind.NOTE, actor=actor, message=f"moved {to} in the queue",
            )
            touch_queue(session.queue)
    notify_changed(session.pk)
    session.refresh_from_db()
    return session


def set_limit(user: Any | None, max_running: int, *, actor: str) -> SessionLimit:
    """Set how many sessions `user` (None: everyone without a limit of their own) may run at once."""
    if max_running < 0:
        raise ValueError("a limit cannot be negative")
    with transaction.atomic():
        row = SessionLimit.objects.filter(user=user).order_by("pk").first() if user is not None else (
            SessionLimit.objects.filter(user__isnull=True).order_by("pk").first()
        )
        if row is None:
            row = SessionLimit(user=user)
        row.max_running, row.updated_by, row.updated_at = max_running, actor, timezone.now()
        row.save()
    for queue in TrainingSession.objects.filter(status=SessionStatus.QUEUED).values_list("queue", flat=True).distinct():
        touch_queue(queue)
    logger.info("%s set the session limit of %s to %s", actor, user or "everyone", max_running)
    return row


def clear_limit(user: Any, *, actor: str) -> None:
    """Drop a user's own limit: the default applies to them again."""
    SessionLimit.objects.filter(user=user).delete()
    logger.info("%s removed the session limit of %s", actor, user)
    for queue in TrainingSession.objects.filter(status=SessionStatus.QUEUED).values_list("queue", flat=True).distinct():
        touch_queue(queue)


def limit_rows() -> list[SessionLimit]:
    """The per-user limits staff set, by user name."""
    return list(SessionLimit.objects.filter(user__isnull=False).select_related("user").order_by("user__username"))
