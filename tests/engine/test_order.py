"""Skills train in the importer's training order: every level bottom-up, depth-first pre-order."""

from __future__ import annotations

import pytest

from tests.factories import orchestrate
from training.models import SessionEvent, SessionStatus, SkillStatus, Stage

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_skills_train_in_order_primitives_first(patrol, start):
    session = orchestrate(start(patrol)).run()

    assert session.status == SessionStatus.COMPLETED
    assert session.stage == Stage.COMPLETE
    runs = list(session.skill_runs.order_by("started_at"))
    assert [r.skill.name for r in runs] == [
        "reach_red_beacon", "reach_blue_beacon", "reach_green_beacon", "reach_yellow_beacon",
        "patrol_north", "patrol_south", "patrol_beacons",
    ]
    assert [r.order for r in runs] == list(range(7))
    assert all(r.status == SkillStatus.COMPLETED for r in runs)
    assert all(r.success_states >= 10 and r.exit_code == 0 for r in runs)


def test_every_change_is_an_event_row(fetch_block, start):
    session = orchestrate(start(fetch_block)).run()

    statuses = list(
        session.events.filter(kind=SessionEvent.Kind.STATUS).values_list("from_state", "to_state")
    )
    assert statuses == [("", "queued"), ("queued", "running"), ("running", "completed")]
    stages = list(session.events.filter(kind=SessionEvent.Kind.STAGE).values_list("to_state", flat=True))
    assert stages == ["planning", "training", "complete"]
    skill_changes = session.events.filter(kind=SessionEvent.Kind.SKILL_STATUS)
    assert skill_changes.count() == 6  # pending -> training -> completed, three skills
