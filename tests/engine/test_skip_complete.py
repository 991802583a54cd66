"""Skip-complete: a skill that already has enough success states and a policy is not retrained."""

from __future__ import annotations

import pytest

from tests.factories import give_states, orchestrate
from training.models import SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_complete_skill_is_skipped_and_counts_as_done(fetch_block, start):
    go_to_block = fetch_block.skills.get(name="go_to_block")
    give_states(go_to_block, 25)

    session = orchestrate(start(fetch_block, min_success_states=20)).run()

    assert session.status == SessionStatus.COMPLETED
    runs = {r.skill.name: r for r in session.skill_runs.all()}
    assert runs["go_to_block"].status == SkillStatus.SKIPPED
    assert runs["go_to_block"].started_at is None
    assert runs["go_to_block"].success_states == 25
    assert runs["go_to_goal"].status == SkillStatus.COMPLETED
    assert runs["fetch_block"].status == SkillStatus.COMPLETED


def test_too_few_states_or_no_policy_is_trained_again(fetch_block, start):
    give_states(fetch_block.skills.get(name="go_to_block"), 5)  # below the minimum
    give_states(fetch_block.skills.get(name="go_to_goal"), 50, policy=False)  # a composite needs it

    session = orchestrate(start(fetch_block, min_success_states=20)).run()

    assert set(session.skill_runs.values_list("status", flat=True)) == {SkillStatus.COMPLETED}


def test_no_skip_complete_retrains_everything(fetch_block, start):
    for skill in fetch_block.skills.all():
        give_states(skill, 100)

    session = orchestrate(start(fetch_block, skip_complete=False)).run()

    assert session.status == SessionStatus.COMPLETED
    assert set(session.skill_runs.values_list("status", flat=True)) == {SkillStatus.COMPLETED}
    assert session.skill_runs.filter(started_at__isnull=False).count() == 3


def test_retry_after_failure_continues_where_it_stopped(fetch_block, start):
    failed = orchestrate(start(fetch_block), "--crash-after", "1").run()
    assert failed.status == SessionStatus.FAILED

    # The first skill failed; train it now, then a retry must not train it a third time.
    first = orchestrate(start(fetch_block)).run()
    assert first.status == SessionStatus.COMPLETED
    retry = orchestrate(start(fetch_block)).run()

    assert retry.status == SessionStatus.COMPLETED
    assert set(retry.skill_runs.values_list("status", flat=True)) == {SkillStatus.SKIPPED}
    go_to_block = fetch_block.skills.get(name="go_to_block")
    assert first.skill_runs.get(skill=go_to_block).attempt == 2
