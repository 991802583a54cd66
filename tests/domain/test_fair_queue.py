"""The fair queue: workers claim in queue order, staff reorder it, a user at their limit of running
sessions waits while those behind go first, and the positions shown follow that very rule."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import TINY, one_skill_task
from training import leases, queueing, services
from training.models import SessionEvent, SessionStatus, TrainingSession
from training.snapshots import progress_snapshot

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def users(django_user_model):
    return {name: django_user_model.objects.create_user(name) for name in ("alice", "bob")}


def start(owner, name: str) -> TrainingSession:
    return services.start_session(one_skill_task(name), TINY, owner=owner)


def claim_all(worker: str = "w") -> list[int]:
    claimed = []
    while (session := leases.claim_next_session(worker)) is not None:
        claimed.append(session.pk)
    return claimed


def positions() -> list[tuple[int, int | None]]:
    return [(p.session_id, p.position) for p in queueing.plan()]


def test_workers_claim_in_queue_order_and_staff_reorder_it(users):
    a, b, c, d = (start(users["alice"], f"t{i}") for i in range(4))
    assert [pk for pk, _ in positions()] == [a.pk, b.pk, c.pk, d.pk]

    queueing.move(d, "top", actor="user:staff")
    queueing.move(a, "down", actor="user:staff")
    queueing.move(b, "bottom", actor="user:staff")
    queueing.move(c, "up", actor="user:staff")

    expected = [d.pk, c.pk, a.pk, b.pk]
    assert positions() == [(pk, i + 1) for i, pk in enumerate(expected)]
    assert SessionEvent.objects.filter(session=d, message="moved top in the queue", actor="user:staff").exists()
    assert claim_all() == expected  # the claim follows exactly what was shown


def test_moving_a_session_that_is_no_longer_queued_is_refused(users):
    session = start(users["alice"], "t")
    leases.claim_next_session("w")
    with pytest.raises(queueing.NotQueued):
        queueing.move(session, "top", actor="user:staff")


def test_a_user_at_their_limit_waits_and_those_behind_go_first(users):
    queueing.set_limit(users["alice"], 1, actor="user:staff")
    a1, a2 = start(users["alice"], "a1"), start(users["alice"], "a2")
    b1 = start(users["bob"], "b1")

    # Shown before anything is claimed: a2 is held behind a1, b1 is next after a1.
    assert positions() == [(a1.pk, 1), (a2.pk, None), (b1.pk, 2)]
    snapshot = progress_snapshot(a2.pk)
    assert snapshot["queue_position"] is None
    assert snapshot["queue_held"] == "its owner may run 1 session at a time"

    assert claim_all() == [a1.pk, b1.pk]
    assert TrainingSession.objects.get(pk=a2.pk).status == SessionStatus.QUEUED

    a1.refresh_from_db()
    a1.transition_to(SessionStatus.COMPLETED, actor="test")
    assert positions() == [(a2.pk, 1)]
    assert claim_all() == [a2.pk]


def test_the_default_limit_applies_to_everyone_without_their_own(users, settings):
    settings.GENHRL_SESSIONS_PER_USER = 1
    queueing.set_limit(users["bob"], 2, actor="user:staff")
    sessions = [start(users[name], f"{name}{i}") for name in ("alice", "bob") for i in range(3)]

    claimed = claim_all()

    assert claimed == [sessions[0].pk, sessions[3].pk, sessions[4].pk]
    queueing.set_limit(None, 0, actor="user:staff")  # staff lift the default: alice may run more
    assert claim_all() == [sessions[1].pk, sessions[2].pk]
    queueing.clear_limit(users["bob"], actor="user:staff")
    assert claim_all() == [sessions[5].pk]


def test_sessions_started_from_a_terminal_have_no_owner_and_no_limit(settings):
    settings.GENHRL_SESSIONS_PER_USER = 1
    sessions = [services.start_session(one_skill_task(f"cli{i}"), TINY, actor="cli:me") for i in range(3)]
    assert claim_all() == [s.pk for s in sessions]


def test_a_claim_moves_everyone_behind_for_their_live_viewers(users):
    first, second = start(users["alice"], "t1"), start(users["bob"], "t2")
    before = TrainingSession.objects.get(pk=second.pk).updated_at

    leases.claim_next_session("w")

    # The relay keys on `updated_at`: the viewer of `second` is sent its new position (#1).
    assert TrainingSession.objects.get(pk=second.pk).updated_at > before
    assert progress_snapshot(second.pk)["queue_position"] == 1
    assert first.pk != second.pk


def test_cancelling_a_queued_session_moves_those_behind_it_up(users):
    first, second = start(users["alice"], "t1"), start(users["bob"], "t2")
    assert progress_snapshot(second.pk)["queue_position"] == 2
    before = TrainingSession.objects.get(pk=second.pk).updated_at

    services.request_cancel(first, actor="test")

    assert progress_snapshot(second.pk)["queue_position"] == 1
    assert TrainingSession.objects.get(pk=second.pk).updated_at > before


def test_running_counts_include_cancelling_sessions(users):
    queueing.set_limit(users["alice"], 1, actor="user:staff")
    first, second = start(users["alice"], "t1"), start(users["alice"], "t2")
    claim_all()
    first.refresh_from_db()
    first.transition_to(SessionStatus.CANCELLING, actor="test", heartbeat_at=timezone.now())

    assert claim_all() == []  # still holding a worker until it has stopped
    assert queueing.running_counts()[users["alice"].pk] == 1
    assert second.pk in [p.session_id for p in queueing.plan() if p.position is None]
