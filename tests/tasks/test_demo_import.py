"""The bundled PointMass demo imports as embedded-backend tasks with per-skill specs."""

from __future__ import annotations

import json

import pytest

from tasks.importer import DEMO_ROBOT_DIR, import_demo
from tasks.models import Task

pytestmark = pytest.mark.django_db


def test_import_demo_adds_both_tasks_without_warnings():
    report = import_demo()

    assert sorted(result.label for result in report.added) == ["PointMass/fetch_block", "PointMass/patrol_beacons"]
    assert report.failed == []
    assert report.warning_count == 0


def test_patrol_beacons_has_seven_skills_on_three_levels():
    import_demo()

    task = Task.objects.get(robot="PointMass", name="patrol_beacons")
    assert (task.skill_count, task.levels) == (7, 3)
    assert [(s.name, s.level) for s in task.skills.order_by("order")] == [
        ("reach_red_beacon", 0),
        ("reach_blue_beacon", 0),
        ("reach_green_beacon", 0),
        ("reach_yellow_beacon", 0),
        ("patrol_north", 1),
        ("patrol_south", 1),
        ("patrol_beacons", 2),
    ]


def test_fetch_block_has_three_skills_on_two_levels():
    import_demo()

    task = Task.objects.get(robot="PointMass", name="fetch_block")
    assert (task.skill_count, task.levels) == (3, 2)
    assert [(s.name, s.level) for s in task.skills.order_by("order")] == [
        ("go_to_block", 0),
        ("go_to_goal", 0),
        ("fetch_block", 1),
    ]


def test_demo_skills_store_their_embedded_spec_and_task_is_embedded():
    import_demo()

    task = Task.objects.get(robot="PointMass", name="patrol_beacons")
    assert task.backend == Task.Backend.EMBEDDED
    spec_dir = DEMO_ROBOT_DIR / "skills" / "patrol_beacons" / "skills"
    for skill in task.skills.all():
        assert skill.embedded_spec == json.loads((spec_dir / skill.name / "embedded.json").read_text())
    assert task.skills.get(name="reach_red_beacon").embedded_spec["type"] == "reach"


def test_import_demo_twice_skips_unchanged_tasks():
    import_demo()
    report = import_demo()

    assert report.added == [] and report.updated == []
    assert len(report.unchanged) == 2
    assert Task.objects.count() == 2
