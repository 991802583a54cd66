"""A skill starts from the success states of the previous sibling in execution order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import orchestrate
from training import paths
from training.engine import planning
from training.models import SessionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def spec_of(run) -> dict:
    return json.loads((Path(run.run_dir) / "spec.json").read_text())


def test_start_states_come_from_the_previous_sibling(patrol, start):
    session = orchestrate(start(patrol)).run()
    assert session.status == SessionStatus.COMPLETED
    runs = {r.skill.name: r for r in session.skill_runs.select_related("skill", "start_states_from")}
    skills = {s.name: s for s in patrol.skills.all()}

    def source(name: str) -> str | None:
        return spec_of(runs[name])["start_states_dir"]

    # First children of their parents start fresh.
    assert source("reach_red_beacon") is None
    assert source("reach_green_beacon") is None
    assert source("patrol_north") is None
    # Later siblings start where the one before them (in execution order, not training order) ended.
    assert source("reach_blue_beacon") == str(paths.success_dir(skills["reach_red_beacon"]).resolve())
    assert source("reach_yellow_beacon") == str(paths.success_dir(skills["reach_green_beacon"]).resolve())
    assert source("patrol_south") == str(paths.success_dir(skills["patrol_north"]).resolve())
    assert runs["patrol_south"].start_states_from == skills["patrol_north"]
    # The trainer reported loading them.
    assert runs["reach_blue_beacon"].start_states >= 10
    assert runs["reach_red_beacon"].start_states == 0


def test_a_sibling_without_states_hands_on_nothing(fetch_block, start):
    start(fetch_block)
    go_to_goal = fetch_block.skills.get(name="go_to_goal")

    assert planning.start_states_source(fetch_block, go_to_goal) is None  # go_to_block has not trained yet
