"""Skills train as their dependency graph allows: side by side with several slots, in training order
with one, and cancel, failure and fairness between sessions keep working with several trainers."""

from __future__ import annotations

import threading
import time

import pytest
from django.test import Client

from tests.factories import TINY, group_gone, orchestrate, wait_for
from training import services
from training.engine.slots import SlotPool
from training.models import SessionStatus, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.training]
SLOW = ("--epoch-seconds", "0.05")


def overlapping(runs):
    return [(a, b) for a in runs for b in runs if a.pk < b.pk and a.started_at < b.finished_at and b.started_at < a.finished_at]


def test_independent_subtrees_train_side_by_side_and_waits_hold(patrol, start, researcher):
    seen = {"most": 0, "page": ""}
    client = Client()
    client.force_login(researcher)

    def watch(orch) -> None:
        training = orch.training()
        seen["most"] = max(seen["most"], len(training))
        if len(training) == 2 and not seen["page"]:
            seen["page"] = client.get(f"/training/sessions/{orch.session.pk}/").content.decode()

    session = orchestrate(start(patrol), *SLOW, slots=SlotPool(2), on_update=watch).run()

    assert session.status == SessionStatus.COMPLETED
    runs = {r.skill.name: r for r in session.skill_runs.select_related("skill")}
    assert seen["most"] == 2 and overlapping(list(runs.values()))
    # A composite after its sub-skills; a skill after the previous sibling it starts from.
    assert runs["patrol_north"].started_at >= runs["reach_blue_beacon"].finished_at
    assert runs["reach_blue_beacon"].started_at >= runs["reach_red_beacon"].finished_at
    assert runs["reach_yellow_beacon"].started_at >= runs["reach_green_beacon"].finished_at
    assert runs["patrol_beacons"].started_at >= max(runs[n].finished_at for n in ("patrol_north", "patrol_south"))
    assert runs["reach_blue_beacon"].start_states_from == runs["reach_red_beacon"].skill
    # The page showed both skills training, each with its own curves and output.
    page = seen["page"]
    assert "Current skills" in page and page.count('class="sp-panels"') == 2


def test_one_slot_keeps_the_training_order(patrol, start):
    session = orchestrate(start(patrol), slots=SlotPool(1)).run()
    assert session.status == SessionStatus.COMPLETED
    started = list(session.skill_runs.order_by("started_at").values_list("order", flat=True))
    assert started == sorted(started)
    assert not overlapping(list(session.skill_runs.all()))


def test_a_failure_starts_nothing_new_but_lets_running_skills_finish(patrol, start):
    session = orchestrate(
        start(patrol, min_success_states=30), *SLOW, "--crash-after", "1", "--only-skill", "reach_red_beacon",
        slots=SlotPool(2),
    ).run()

    assert session.status == SessionStatus.FAILED and session.error.startswith("reach_red_beacon:")
    status = dict(session.skill_runs.values_list("skill__name", "status"))
    assert status["reach_red_beacon"] == SkillStatus.FAILED
    assert status["reach_green_beacon"] == SkillStatus.COMPLETED  # it was training: it finished
    assert status["reach_blue_beacon"] == status["patrol_beacons"] == SkillStatus.CANCELLED  # never started


def test_a_cancel_stops_every_running_trainer(patrol, start):
    groups: list[int] = []

    def cancel_when_two_train(orch) -> None:
        training = orch.training()
        if len(training) == 2 and not groups and all(t.run.frames for t in training):
            groups.extend(t.pgid for t in training)
            services.request_cancel(orch.session, actor="user:someone")

    session = orchestrate(start(patrol, min_success_states=10_000), *SLOW, slots=SlotPool(2),
                          on_update=cancel_when_two_train).run()

    assert session.status == SessionStatus.CANCELLED
    cancelled = session.skill_runs.filter(status=SkillStatus.CANCELLED, stop_reason="cancelled")
    assert cancelled.count() == 2 and set(cancelled.values_list("exit_code", flat=True)) == {0}
    assert all(group_gone(pgid) for pgid in groups)


@pytest.mark.django_db(transaction=True)
def test_a_worker_shares_its_slots_fairly_between_sessions(patrol, fetch_block, settings):
    """One session that could use every slot does not keep a queued session waiting."""
    from tests.factories import FAST, fake_builder
    from training.engine.worker import Worker

    big = services.start_session(patrol, TINY, actor="test")
    small = services.start_session(fetch_block, TINY, actor="test")
    worker = Worker(2, poll_interval=0.05, orchestrator_options={
        "command_builder": fake_builder(*SLOW), "timings": FAST,
    })
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            worker.safe_step()
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: not TrainingSession.objects.filter(status__in=SessionStatus.active()).exists(),
                        timeout=120)
    finally:
        stop.set()
        thread.join(5)
        worker.stop(grace=5)
    big.refresh_from_db()
    small.refresh_from_db()
    assert (big.status, small.status) == (SessionStatus.COMPLETED, SessionStatus.COMPLETED)
    # The small session trained alongside the big one, not after it.
    first_small = small.skill_runs.order_by("started_at").first()
    assert first_small.started_at < big.finished_at
    assert overlapping(list(big.skill_runs.all()) + list(small.skill_runs.all()))


def test_the_slot_pool_gives_each_session_its_fair_share():
    pool = SlotPool(4)
    assert [pool.try_acquire("a") for _ in range(4)] == [True] * 4  # alone: every slot
    pool.release("a")
    pool.want("b", 2)  # another session waits
    assert not pool.try_acquire("a")  # a holds 3, over its share of 2: b goes first
    assert pool.try_acquire("b")
    pool.release("a")
    pool.release("a")
    assert pool.try_acquire("b") and pool.held("b") == 2
    pool.want("b", 0)
    assert pool.try_acquire("a")  # nobody else wants one: a may take it
    pool.release("a")
    pool.want("c", 1)  # a session just claimed, still planning
    assert not pool.try_acquire("a") and pool.try_acquire("c")  # it gets its first slot
