"""Fixtures of the web tests: demo-like tasks, and the live daphne + chromium (from `live.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.models import Skill, Task
from tests.web.live import chromium, live_daphne, use_file_sqlite_test_db

__all__ = ["chromium", "live_daphne"]  # fixtures, re-exported for this folder's tests


def pytest_configure(config: pytest.Config) -> None:
    # Before any database is created: the browser tests' daphne must open the same SQLite file.
    use_file_sqlite_test_db(config)


DOORWAY_OBJECTS: dict[str, Any] = {
    "_comment": "Two walls form a doorway; a block waits beyond it.",
    "num_cubes": 2,
    "_cube_comments": ["Left wall", "Small block"],
    "mass_cubes": [1000.0, 1.0],
    "position_cubes": [[3.0, -2.8, 0.75], [5.5, -3.0, 0.15]],
    "size_cubes": [[0.5, 5.0, 1.5], [0.3, 0.3, 0.3]],
    "num_spheres": 1,
    "_sphere_comments": ["Red ball"],
    "position_spheres": [[1.0, 1.0, 0.1]],
    "radius_spheres": [0.2],
    "num_cylinders": 1,
    "_cylinder_comments": ["Pillar"],
    "position_cylinders": [[2.0, 2.0, 1.0]],
    "radius_cylinders": [0.25],
    "height_cylinders": [2.0],
    "num_cones": 1,
    "_cone_comments": ["Traffic cone"],
    "position_cones": [[-1.0, 2.0, 0.3]],
    "radius_cones": [0.2],
    "height_cones": [0.6],
    "num_capsules": 1,
    "_capsule_comments": ["Capsule buoy"],
    "position_capsules": [[-2.0, -1.0, 0.3]],
    "radius_capsules": [0.1],
    "height_capsules": [0.5],
}

# Like GenHRL's committed doorway_and_goal_seed42: `Walk_to_Small_Block` (composite) and
# `walk_to_Small_Block` (its primitive child) differ only by case. `open_door` is named, never defined.
DOORWAY_HIERARCHY: dict[str, Any] = {
    "name": "doorway_and_goal",
    "description": "Walk through the doorway, then to the small block.",
    "children": [
        {
            "name": "Navigate_Doorway",
            "description": "Get through the doorway.",
            "children": [
                {"name": "approach_doorway", "description": "Walk up to the doorway."},
                {"name": "open_door", "description": "Open the door."},
            ],
        },
        {
            "name": "Walk_to_Small_Block",
            "description": "Go to the small block (composite).",
            "children": [{"name": "walk_to_Small_Block", "description": "Step to the small block (primitive)."}],
        },
    ],
}
DOORWAY_SKILLS = [
    # name, level, order, is_primitive, sub_skills, used_by, defined
    ("approach_doorway", 0, 0, True, [], ["Navigate_Doorway"], True),
    ("open_door", 0, 1, True, [], ["Navigate_Doorway"], False),
    ("walk_to_Small_Block", 0, 2, True, [], ["Walk_to_Small_Block"], True),
    ("Navigate_Doorway", 1, 3, False, ["approach_doorway", "open_door"], ["doorway_and_goal"], True),
    ("Walk_to_Small_Block", 1, 4, False, ["walk_to_Small_Block"], ["doorway_and_goal"], True),
    ("doorway_and_goal", 2, 5, False, ["Navigate_Doorway", "Walk_to_Small_Block"], [], True),
]


def make_task(name: str = "task", robot: str = "G1", **fields: Any) -> Task:
    defaults: dict[str, Any] = {
        "backend": Task.Backend.ISAACLAB,
        "description": f"{name} description",
        "root_skill": name,
        "source_path": f"/lab/{robot}_generated/skills/{name}",
        "skill_count": 1,
        "levels": 1,
    }
    return Task.objects.create(name=name, robot=robot, **{**defaults, **fields})


@pytest.fixture
def doorway_task(db: None) -> Task:
    """A three-level G1 task with case twins, an undefined skill, warnings and every shape kind."""
    task = make_task(
        "doorway_and_goal",
        "G1",
        description="Walk through a doorway formed by two heavy walls, then walk to a small block.",
        hierarchy=DOORWAY_HIERARCHY,
        object_config=DOORWAY_OBJECTS,
        warnings=["skill 'open_door' is named in the hierarchy but not defined in skill_library.json"],
        skill_count=len(DOORWAY_SKILLS),
        levels=3,
    )
    descriptions = {}

    def collect(node: dict[str, Any]) -> None:
        descriptions[node["name"]] = node["description"]
        for child in node.get("children", []):
            collect(child)

    collect(DOORWAY_HIERARCHY)
    Skill.objects.bulk_create(
        Skill(
            task=task,
            name=name,
            description=descriptions[name] if defined else "",
            level=level,
            order=order,
            is_primitive=primitive,
            sub_skills=subs,
            used_by=used_by,
            defined=defined,
        )
        for name, level, order, primitive, subs, used_by, defined in DOORWAY_SKILLS
    )
    return task


@pytest.fixture
def demo_tasks(db: None) -> list[Task]:
    """The bundled demo tasks (robot PointMass), imported the way `make run` imports them."""
    from tasks.importer import import_demo

    report = import_demo()
    assert report.ok, report.lines()
    return list(Task.objects.filter(robot="PointMass").order_by("name"))
