"""The five real GenHRL tasks import with the reference orchestrator's levels and training order.

Expected orders were worked out by hand from each skill_library.json: depth-first pre-order of
the structure, then sorted stably by level (primitives 0, composites 1 + deepest sub-skill).
"""

from __future__ import annotations

import pytest

from tasks.importer import import_path
from tasks.models import Skill, Task

pytestmark = pytest.mark.django_db

EXPECTED_ORDERS: dict[str, list[tuple[str, int]]] = {
    "build_stairs_seed42": [
        ("position_small_block", 0),
        ("position_medium_block", 0),
        ("position_large_block", 0),
        ("ascend_first_step", 0),
        ("ascend_second_step", 0),
        ("ascend_third_step", 0),
        ("build_stairs", 1),
        ("climb_stairs", 1),
        ("build_stairs_seed42", 2),
    ],
    "doorway_and_goal_seed42": [
        ("approach_doorway_and_align", 0),
        ("walk_through_doorway", 0),
        ("walk_to_Small_Block", 0),
        ("Navigate_Doorway", 1),
        ("Walk_to_Small_Block", 1),
        ("doorway_and_goal_seed42", 2),
    ],
    "knock_over_pillars_seed42": [
        ("walk_to_cylinderColumn1", 0),
        ("knock_over_cylinderColumn1", 0),
        ("walk_to_cylinderColumn2", 0),
        ("knock_over_cylinderColumn2", 0),
        ("walk_to_cylinderColumn3", 0),
        ("knock_over_cylinderColumn3", 0),
        ("walk_to_cylinderColumn4", 0),
        ("knock_over_cylinderColumn4", 0),
        ("walk_to_cylinderColumn5", 0),
        ("knock_over_cylinderColumn5", 0),
        ("knock_over_pillars_seed42", 1),
    ],
    "move_three_objects_seed42": [
        ("walk_to_cube_for_robot_to_push_1", 0),
        ("push_cube_for_robot_to_push_1_towards_platform_for_cubes", 0),
        ("push_cube_for_robot_to_push_1_onto_platform_for_cubes", 0),
        ("walk_to_cube_for_robot_to_push_2", 0),
        ("push_cube_for_robot_to_push_2_towards_platform_for_cubes", 0),
        ("push_cube_for_robot_to_push_2_onto_platform_for_cubes", 0),
        ("walk_to_cube_for_robot_to_push_3", 0),
        ("push_cube_for_robot_to_push_3_towards_platform_for_cubes", 0),
        ("push_cube_for_robot_to_push_3_onto_platform_for_cubes", 0),
        ("move_three_objects_seed42", 1),
    ],
    "obstacle_course_seed42": [
        ("walk_to_lowWall", 0),
        ("jump_over_lowWall", 0),
        ("stabilize_after_jump", 0),
        ("walk_to_largeSphere", 0),
        ("push_largeSphere_towards_highWall", 0),
        ("walk_to_smallSphere", 0),
        ("kick_smallSphere", 0),
        ("walk_to_blockCube", 0),
        ("jump_on_top_of_blockCube", 0),
        ("stabilize_on_blockCube", 0),
        ("OvercomeLowWall", 1),
        ("PushLargeSphere", 1),
        ("KickSmallSphere", 1),
        ("JumpOnBlockCube", 1),
        ("obstacle_course_seed42", 2),
    ],
}
EXPECTED_COUNTS = {
    "build_stairs_seed42": (9, 3),
    "doorway_and_goal_seed42": (6, 3),
    "knock_over_pillars_seed42": (11, 2),
    "move_three_objects_seed42": (10, 2),
    "obstacle_course_seed42": (15, 3),
}


def test_real_fixture_tree_imports_all_five_tasks(isaaclab_fixture_tree):
    report = import_path(isaaclab_fixture_tree)

    assert report.failed == []
    assert sorted(result.name for result in report.added) == sorted(EXPECTED_COUNTS)
    for name, (skills, levels) in EXPECTED_COUNTS.items():
        task = Task.objects.get(robot="G1", name=name)
        assert (task.skill_count, task.levels) == (skills, levels)
        assert task.skills.count() == skills
        assert task.root_skill == name
        assert task.backend == "isaaclab"


@pytest.mark.parametrize("name", sorted(EXPECTED_ORDERS))
def test_real_fixture_training_order_matches_reference(isaaclab_fixture_tree, name):
    import_path(isaaclab_fixture_tree)

    skills = Skill.objects.filter(task__robot="G1", task__name=name).order_by("order")
    assert [(skill.name, skill.level) for skill in skills] == EXPECTED_ORDERS[name]
    assert [skill.order for skill in skills] == list(range(len(EXPECTED_ORDERS[name])))
    assert all(skill.defined for skill in skills)
    assert all(skill.is_primitive == (skill.level == 0) for skill in skills)


def test_doorway_case_twins_are_two_skills(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)

    task = Task.objects.get(name="doorway_and_goal_seed42")
    composite = task.skills.get(name="Walk_to_Small_Block")
    primitive = task.skills.get(name="walk_to_Small_Block")
    assert composite.pk != primitive.pk
    assert (composite.is_primitive, composite.level, composite.sub_skills) == (False, 1, ["walk_to_Small_Block"])
    assert (primitive.is_primitive, primitive.level, primitive.used_by) == (True, 0, ["Walk_to_Small_Block"])
    assert any("differ only by case" in warning for warning in task.warnings)


def test_absolute_object_config_paths_from_the_fixtures_warn(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)

    for name in ("doorway_and_goal_seed42", "move_three_objects_seed42"):
        warnings = Task.objects.get(name=name).warnings
        assert any("/home/tomcannon/" in warning and "absolute" in warning for warning in warnings)
    assert not any("absolute" in w for w in Task.objects.get(name="build_stairs_seed42").warnings)


def test_description_comes_from_description_txt(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)

    task = Task.objects.get(name="doorway_and_goal_seed42")
    assert task.description.startswith("Environment set-up description:")
    assert "walk through the doorway" in task.description


def test_object_config_is_the_skills_side_copy_and_a_differing_copy_warns(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)

    task = Task.objects.get(name="obstacle_course_seed42")
    assert task.object_config["num_spheres"] == 2
    assert task.object_config["_sphere_comments"] == ["Large sphere for robot to push", "Small sphere for robot to kick"]
    assert any("tasks/obstacle_course_seed42/object_config.json differs" in w for w in task.warnings)
    assert task.source_path.endswith("G1_generated/skills/obstacle_course_seed42")
    assert task.robot_path.endswith("G1_generated")
    assert task.hierarchy["name"] == "obstacle_course_seed42"
    assert [child["name"] for child in task.hierarchy["children"]] == [
        "OvercomeLowWall",
        "PushLargeSphere",
        "KickSmallSphere",
        "JumpOnBlockCube",
    ]
