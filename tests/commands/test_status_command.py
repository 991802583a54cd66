"""`manage.py status TASK`: skills in training order with level and kind, as text or JSON."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.importer import import_demo, import_path
from tasks.models import Task
from tests.factories import give_states, node, run_session, skill
from training.management.commands.status import build_status_rows

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("status", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_status_text_lists_skills_in_training_order():
    import_demo()

    lines = run("patrol_beacons").splitlines()

    assert lines[0] == "patrol_beacons (robot PointMass, embedded): 7 skills, 3 levels, root skill patrol_beacons"
    assert lines[1].split() == ["#", "SKILL", "LEVEL", "KIND", "STATUS", "SUCCESS", "STATES", "POLICY", "LAST", "RUN"]
    untrained = ["pending", "0/50", "no", "never"]
    assert [line.split() for line in lines[2:]] == [
        ["1", "reach_red_beacon", "0", "primitive", *untrained],
        ["2", "reach_blue_beacon", "0", "primitive", *untrained],
        ["3", "reach_green_beacon", "0", "primitive", *untrained],
        ["4", "reach_yellow_beacon", "0", "primitive", *untrained],
        ["5", "patrol_north", "1", "composite", *untrained],
        ["6", "patrol_south", "1", "composite", *untrained],
        ["7", "patrol_beacons", "2", "composite", *untrained],
    ]


def test_status_json():
    import_demo()

    data = json.loads(run("fetch_block", "--json"))

    untrained = {
        "status": "pending",
        "success_states": 0,
        "min_success_states": 50,
        "has_policy": False,
        "last_run_at": None,
        "last_run_elapsed_s": None,
        "last_result": None,
        "last_error": "",
        "todo_reason": "",
    }
    assert data == {
        "task": "fetch_block",
        "robot": "PointMass",
        "skills": [
            {"name": "go_to_block", "level": 0, "is_primitive": True, "order": 0, "defined": True, **untrained},
            {"name": "go_to_goal", "level": 0, "is_primitive": True, "order": 1, "defined": True, **untrained},
            {"name": "fetch_block", "level": 1, "is_primitive": False, "order": 2, "defined": True, **untrained},
        ],
    }


def test_status_marks_undefined_skills_and_shows_warnings(lab):
    skills = {"t": skill(False, ["a", "ghost"]), "a": skill(True, used_by=["t"])}
    import_path(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("ghost"))))

    lines = run("t").splitlines()

    assert [line.split()[:4] for line in lines[2:4]] == [["1", "a", "0", "primitive"], ["2", "t", "1", "composite"]]
    assert lines[4].split()[:8] == ["-", "ghost", "-", "undefined", "(cannot", "be", "trained)", "undefined"]
    assert lines[5] == "1 import warning:"
    assert "'ghost' is named" in lines[6]


def test_status_json_gives_null_for_what_an_undefined_skill_lacks(lab):
    skills = {"t": skill(False, ["a", "ghost"]), "a": skill(True, used_by=["t"])}
    import_path(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("ghost"))))

    ghost = next(row for row in json.loads(run("t", "--json"))["skills"] if row["name"] == "ghost")

    assert ghost["defined"] is False and ghost["status"] == "undefined"
    assert ghost["order"] is None and ghost["is_primitive"] is None


def test_status_json_gives_the_last_runs_time_and_why_a_skill_still_needs_training(user):
    import_demo()
    task = Task.objects.get(name="fetch_block")
    session = run_session(task, user)
    run_ = session.skill_runs.get(skill__name="go_to_block")
    run_.elapsed_seconds = 12.34
    run_.save(update_fields=["elapsed_seconds"])
    # A run stopped early: its success states, but no published policy.
    give_states(task.skills.get(name="go_to_goal"), 54, policy=False)

    rows = {row["name"]: row for row in json.loads(run("fetch_block", "--json"))["skills"]}

    assert rows["go_to_block"]["last_run_elapsed_s"] == 12.3
    assert rows["go_to_goal"]["success_states"] == 54 and rows["go_to_goal"]["status"] == "pending"
    assert "no published policy" in rows["go_to_goal"]["todo_reason"]


def test_status_of_a_task_of_several_robots_needs_robot(lab):
    lab.add_task("t", robot="R1")
    lab.add_task("t", robot="R2")
    import_path(lab.root)

    with pytest.raises(CommandError, match=r"Task 't' exists for several robots \(R1, R2\); pass --robot"):
        run("t")
    assert json.loads(run("t", "--robot", "R2", "--json"))["robot"] == "R2"


def test_status_of_unknown_task_is_an_error():
    import_demo()

    with pytest.raises(CommandError, match="No task named 'nope'"):
        run("nope")
    with pytest.raises(CommandError, match="No task named 'fetch_block' for robot 'G1'"):
        run("fetch_block", "--robot", "G1")


def test_status_names_are_case_sensitive(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)

    rows = build_status_rows(Task.objects.get(name="doorway_and_goal_seed42"))

    assert [(row["name"], row["level"], row["is_primitive"]) for row in rows][2:5] == [
        ("walk_to_Small_Block", 0, True),
        ("Navigate_Doorway", 1, False),
        ("Walk_to_Small_Block", 1, False),
    ]
    with pytest.raises(CommandError):
        run("Doorway_And_Goal_Seed42")
