"""Status transitions: illegal moves and lost races are refused; every change is an event row."""

from __future__ import annotations

import pytest

from training.models import IllegalTransition, SessionEvent, SessionStatus, SkillRun, SkillStatus, Stage

pytestmark = pytest.mark.django_db


def test_active_and_terminal_sets_partition_the_statuses():
    assert SessionStatus.active() | SessionStatus.terminal() == set(SessionStatus.values)
    assert not SessionStatus.active() & SessionStatus.terminal()
    assert SkillStatus.active() | SkillStatus.terminal() == set(SkillStatus.values)
    assert SkillStatus.done() == {"completed", "skipped"}


def test_illegal_session_moves_are_refused(fetch_block, start):
    session = start(fetch_block)

    with pytest.raises(IllegalTransition):
        session.transition_to(SessionStatus.COMPLETED, actor="test")
    session.transition_to(SessionStatus.RUNNING, actor="test")
    session.transition_to(SessionStatus.COMPLETED, actor="test")
    with pytest.raises(IllegalTransition):
        session.transition_to(SessionStatus.RUNNING, actor="test")

    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED
    assert session.started_at is not None and session.finished_at is not None
    assert list(session.events.values_list("from_state", "to_state")) == [
        ("", "queued"), ("queued", "running"), ("running", "completed"),
    ]


def test_a_stale_copy_loses_the_race(fetch_block, start):
    session = start(fetch_block)
    stale = type(session).objects.get(pk=session.pk)
    session.transition_to(SessionStatus.CANCELLED, actor="user:web")

    with pytest.raises(IllegalTransition, match="now cancelled"):
        stale.transition_to(SessionStatus.RUNNING, actor="worker:late")

    assert stale.status == SessionStatus.CANCELLED
    assert session.events.filter(kind=SessionEvent.Kind.STATUS).count() == 2


def test_stage_never_goes_backwards(fetch_block, start):
    session = start(fetch_block)
    session.set_stage(Stage.TRAINING, actor="test")

    with pytest.raises(IllegalTransition):
        session.set_stage(Stage.PLANNING, actor="test")


def test_skill_run_moves(fetch_block, start):
    session = start(fetch_block)
    run = SkillRun.objects.create(session=session, skill=fetch_block.skills.first(), order=0)

    with pytest.raises(IllegalTransition):
        run.transition_to(SkillStatus.COMPLETED, actor="test")
    run.transition_to(SkillStatus.TRAINING, actor="test")
    run.transition_to(SkillStatus.FAILED, actor="test", error="boom")
    with pytest.raises(IllegalTransition):
        run.transition_to(SkillStatus.TRAINING, actor="test")

    event = session.events.filter(skill_run=run).last()
    assert (event.from_state, event.to_state, event.kind) == ("training", "failed", "skill_status")
