"""`manage.py list_tasks`: imported tasks per robot, as text or JSON, cheaply."""

from __future__ import annotations

import json
from datetime import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from tasks.importer import import_demo, import_path
from tasks.models import Task

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("list_tasks", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_list_tasks_text_groups_by_robot_with_short_descriptions(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)
    import_demo()

    out = run()

    lines = out.splitlines()
    assert lines[0] == "Robot G1:"
    assert "Robot PointMass:" in lines
    build = next(line for line in lines if "build_stairs_seed42" in line)
    assert "  9 skills  3 levels  isaaclab" in build
    description = lines[lines.index(build) + 1]
    assert description.startswith("      Environment set-up description:")
    assert len(description.strip()) == 100 and description.endswith("...")
    assert lines[-1] == "7 tasks"


def test_list_tasks_filters_by_robot():
    import_demo()
    Task.objects.create(name="other", robot="G1", root_skill="other", source_path="/x")

    out = run("--robot", "PointMass")

    assert "fetch_block" in out and "patrol_beacons" in out and "other" not in out
    assert out.splitlines()[-1] == "2 tasks"


def test_list_tasks_json():
    import_demo()

    data = json.loads(run("--json"))

    assert [task["name"] for task in data["tasks"]] == ["fetch_block", "patrol_beacons"]
    fetch = data["tasks"][0]
    assert set(fetch) == {"name", "robot", "skills", "levels", "backend", "description", "imported_at"}
    assert (fetch["robot"], fetch["skills"], fetch["levels"], fetch["backend"]) == ("PointMass", 3, 2, "embedded")
    assert fetch["description"].startswith("The point-mass robot drives to the block")
    datetime.fromisoformat(fetch["imported_at"])


def test_list_tasks_when_nothing_is_imported():
    assert "No tasks. Import some with" in run()
    assert json.loads(run("--json", "--robot", "G1")) == {"tasks": []}


def test_listing_a_thousand_tasks_takes_one_query(django_assert_num_queries):
    Task.objects.bulk_create(
        Task(name=f"task_{i:04d}", robot="G1", root_skill="r", source_path="/x", skill_count=3, levels=2)
        for i in range(1000)
    )

    with django_assert_num_queries(1):
        out = run("--json")

    assert len(json.loads(out)["tasks"]) == 1000
