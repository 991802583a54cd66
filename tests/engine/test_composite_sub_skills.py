"""A composite is launched with its sub-skills' published policies, recursively."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import give_states, orchestrate
from training import paths
from training.engine import planning
from training.engine.planning import SkillSetupError
from training.models import SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_composite_spec_carries_sub_skill_policies_recursively(patrol, start):
    session = orchestrate(start(patrol)).run()
    assert session.status == SessionStatus.COMPLETED
    root_run = session.skill_runs.get(skill__name="patrol_beacons")
    spec = json.loads((Path(root_run.run_dir) / "spec.json").read_text())
    skills = {s.name: s for s in patrol.skills.all()}

    assert [s["name"] for s in spec["sub_skills"]] == ["patrol_north", "patrol_south"]
    north = spec["sub_skills"][0]
    assert north["is_primitive"] is False
    assert north["policy_dir"] == str(paths.policy_dir(skills["patrol_north"]).resolve())
    assert [s["name"] for s in north["sub_skills"]] == ["reach_red_beacon", "reach_blue_beacon"]
    assert north["sub_skills"][0]["skill_spec"]["type"] == "reach"
    for leaf in north["sub_skills"]:
        assert (Path(leaf["policy_dir"]) / "policy.pth").is_file()
    # Each skill's own policy was published from its run folder.
    assert paths.has_policy(skills["patrol_beacons"])
    published = json.loads((paths.policy_dir(skills["patrol_beacons"]) / "skill.json").read_text())
    assert published["sub_skills"] == ["patrol_north", "patrol_south"]


def test_composite_without_sub_skill_policy_fails_with_a_clear_error(fetch_block, start):
    # go_to_block is "complete" by states but was never published as a policy: it is retrained,
    # so force the gap by skipping it with states and a policy, then removing the policy.
    go_to_block = fetch_block.skills.get(name="go_to_block")
    start(fetch_block)
    root = fetch_block.skills.get(name="fetch_block")

    with pytest.raises(SkillSetupError, match="go_to_block of fetch_block has no trained policy"):
        planning.sub_skills_spec(fetch_block, root)

    give_states(go_to_block, 10)
    give_states(fetch_block.skills.get(name="go_to_goal"), 10)
    assert [s["name"] for s in planning.sub_skills_spec(fetch_block, root)] == ["go_to_block", "go_to_goal"]


def test_missing_sub_skill_policy_fails_the_skill_not_the_supervisor(fetch_block, start):
    for name in ("go_to_block", "go_to_goal"):
        give_states(fetch_block.skills.get(name=name), 20)
    lost = paths.policy_dir(fetch_block.skills.get(name="go_to_block")) / "policy.pth"

    def lose_policy_after_planning(orch) -> None:
        # Both primitives were skipped as complete; then the policy disappears (a person cleaned
        # the folder): the composite must refuse to start rather than launch without it.
        if orch.session.stage == "training" and lost.exists():
            lost.unlink()

    session = orchestrate(start(fetch_block, min_success_states=20), on_update=lose_policy_after_planning).run()

    assert session.status == SessionStatus.FAILED
    run = session.skill_runs.get(skill__name="fetch_block")
    assert run.status == SkillStatus.FAILED
    assert run.stop_reason == "setup"
    assert run.started_at is None
    assert "sub-skill go_to_block of fetch_block has no trained policy yet" in run.error
    assert "fetch_block" in session.error


def test_trainer_that_publishes_no_policy_fails(fetch_block, start):
    session = orchestrate(start(fetch_block), "--no-policy").run()

    assert session.status == SessionStatus.FAILED
    runs = {r.skill.name: r for r in session.skill_runs.all()}
    assert runs["go_to_block"].status == SkillStatus.FAILED
    assert "published no policy" in runs["go_to_block"].error
    assert runs["go_to_goal"].status == SkillStatus.CANCELLED
