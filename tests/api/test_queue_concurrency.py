"""Queue order and per-user limits under concurrent starts and concurrent claims: every session is
claimed once, no user ever runs more than their limit, each user's sessions start in the order they
were queued, and the positions shown before the claims are the order they were claimed in.

Run on SQLite and on PostgreSQL (`make test`), where the claims race for real: rows locked with
SKIP LOCKED, owners with a transaction-level advisory lock.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test import Client

from tests.factories import api_url, make_researcher, one_skill_task
from training import leases, queueing, services
from training.models import SessionStatus, TrainingSession
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = {"alice": 1, "bob": 2, "carol": 0}  # 0: no limit
PER_USER = 3
CLAIMERS = 6


@pytest.fixture
def lab(django_user_model):
    users = {name: make_researcher(django_user_model.objects.create_user(name)) for name in LIMITS}
    for name, limit in LIMITS.items():
        if limit:
            queueing.set_limit(users[name], limit, actor="user:staff")
    tasks = [one_skill_task(f"task_{i}") for i in range(len(LIMITS) * PER_USER)]
    tokens = {name: ApiToken.issue(user)[1] for name, user in users.items()}
    return users, tasks, tokens


def start_concurrently(tasks, tokens) -> list[int]:
    jobs = [(name, tasks[i * PER_USER + k]) for i, name in enumerate(LIMITS) for k in range(PER_USER)]
    barrier = threading.Barrier(len(jobs))

    def attempt(job) -> int:
        name, task = job
        client = Client(headers={"Authorization": f"Bearer {tokens[name]}"})
        try:
            barrier.wait(timeout=20)
            response = client.post(api_url(task, "start"), {}, content_type="application/json")
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(attempt, jobs))


def claim_concurrently() -> list[int]:
    barrier = threading.Barrier(CLAIMERS)

    def claimer(index: int) -> list[int]:
        claimed = []
        try:
            barrier.wait(timeout=20)
            while (session := leases.claim_next_session(f"worker-{index}")) is not None:
                claimed.append(session.pk)
        finally:
            connection.close()
        return claimed

    with ThreadPoolExecutor(CLAIMERS) as pool:
        return [pk for batch in pool.map(claimer, range(CLAIMERS)) for pk in batch]


def test_limits_and_order_hold_under_concurrent_starts_and_claims(lab):
    users, tasks, tokens = lab
    assert start_concurrently(tasks, tokens) == [201] * len(tasks)
    queued = list(TrainingSession.objects.order_by(*queueing.ORDER))
    shown = {p.session_id: p.position for p in queueing.plan()}

    claimed = claim_concurrently()

    assert len(claimed) == len(set(claimed))  # each claimed once
    running = Counter(TrainingSession.objects.filter(status=SessionStatus.RUNNING).values_list("owner__username", flat=True))
    assert running == {"alice": 1, "bob": 2, "carol": 3}
    for name in LIMITS:
        mine = [s.pk for s in queued if s.owner_id == users[name].pk]
        started = set(TrainingSession.objects.filter(owner=users[name], status=SessionStatus.RUNNING).values_list("pk", flat=True))
        assert [pk in started for pk in mine] == sorted((pk in started for pk in mine), reverse=True), name
    # What people were shown: every claimed session had a number, every held one none.
    assert {pk for pk, position in shown.items() if position is not None} == set(claimed)
    assert sorted(shown[pk] for pk in claimed) == list(range(1, len(claimed) + 1))
    # Those still waiting are held by their owner's limit, and say so.
    assert {p.session_id: p.position for p in queueing.plan()} == {
        s.pk: None for s in TrainingSession.objects.filter(status=SessionStatus.QUEUED)
    }


def test_positions_shown_are_the_order_a_worker_claims_in(lab):
    users, tasks, tokens = lab
    assert start_concurrently(tasks, tokens) == [201] * len(tasks)
    shown = [p.session_id for p in queueing.plan() if p.position is not None]

    claimed = []
    while (session := leases.claim_next_session("only")) is not None:
        claimed.append(session.pk)

    assert claimed == shown


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED: PostgreSQL's row locks")
def test_a_worker_never_claims_past_an_earlier_session_another_worker_holds(lab):
    """Deterministic form of the race above: another worker holds bob's first queued session
    locked (it skipped nothing, it is deciding); this worker must not start his second, which
    the limit of one would then let run ahead of the first."""
    users, tasks, _ = lab
    bob = users["bob"]
    queueing.set_limit(bob, 1, actor="user:staff")
    first, second = (services.start_session(tasks[i], {}, owner=bob, actor="test") for i in (0, 1))
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                TrainingSession.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(20)
        finally:
            connection.close()

    holder = threading.Thread(target=other_worker)
    holder.start()
    try:
        assert locked.wait(20)
        assert leases.claim_next_session("this-worker") is None
    finally:
        release.set()
        holder.join(20)
    assert TrainingSession.objects.get(pk=second.pk).status == SessionStatus.QUEUED
    assert leases.claim_next_session("this-worker").pk == first.pk  # once released, in order
