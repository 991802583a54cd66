"""`manage.py status TASK`: skills in training order with level and kind, as text or JSON."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.importer import import_demo, import_path
from tasks.management.commands.status import build_status_rows
from tasks.models import Task

from .conftest import node, skill

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("status", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_status_text_lists_skills_in_training_order():
    import_demo()

    lines = run("patrol_beacons").splitlines()

    assert lines[0] == "patrol_beacons (robot PointMass, embedded): 7 skills, 3 levels, root skill patrol_beacons"
    assert lines[1].split() == ["#", "SKILL", "LEVEL", "KIND"]
    assert [line.split() for line in lines[2:]] == [
        ["1", "reach_red_beacon", "0", "primitive"],
        ["2", "reach_blue_beacon", "0", "primitive"],
        ["3", "reach_green_beacon", "0", "primitive"],
        ["4", "reach_yellow_beacon", "0", "primitive"],
        ["5", "patrol_north", "1", "composite"],
        ["6", "patrol_south", "1", "composite"],
        ["7", "patrol_beacons", "2", "composite"],
    ]


def test_status_json():
    import_demo()

    data = json.loads(run("fetch_block", "--json"))

    assert data == {
        "task": "fetch_block",
        "robot": "PointMass",
        "skills": [
            {"name": "go_to_block", "level": 0, "is_primitive": True, "order": 0, "defined": True},
            {"name": "go_to_goal", "level": 0, "is_primitive": True, "order": 1, "defined": True},
            {"name": "fetch_block", "level": 1, "is_primitive": False, "order": 2, "defined": True},
        ],
    }


def test_status_marks_undefined_skills_and_shows_warnings(lab):
    skills = {"t": skill(False, ["a", "ghost"]), "a": skill(True, used_by=["t"])}
    import_path(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("ghost"))))

    lines = run("t").splitlines()

    assert [line.split()[:4] for line in lines[2:4]] == [["1", "a", "0", "primitive"], ["2", "t", "1", "composite"]]
    assert lines[4].split() == ["-", "ghost", "-", "undefined", "(cannot", "be", "trained)"]
    assert lines[5] == "1 import warning:"
    assert "'ghost' is named" in lines[6]


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
