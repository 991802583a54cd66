"""The task page: description, warnings, scene objects, skill tree and skill library."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tasks.models import Skill
from tests.factories import make_task

pytestmark = pytest.mark.django_db


def detail(client, task):
    response = client.get(task.get_absolute_url())
    assert response.status_code == 200
    return response, response.content.decode()


def test_shows_description_badges_and_start_training(client, user, staff_user, doorway_task):
    start_url = reverse("training:configure", kwargs={"robot": "G1", "name": doorway_task.name})
    client.force_login(user)
    _, body = detail(client, doorway_task)
    assert "Walk through a doorway formed by two heavy walls" in body
    assert "6 skills" in body and "3 levels" in body and "1 undefined" in body
    # Without the start permission the button is there but disabled, saying why.
    assert 'id="start-permission-note"' in body and start_url not in body
    client.force_login(staff_user)
    _, body = detail(client, doorway_task)
    assert "Start training" in body and start_url in body


def test_shows_import_warnings(user_client, doorway_task):
    _, body = detail(user_client, doorway_task)
    assert "1 import warning" in body
    assert "skill &#x27;open_door&#x27; is named in the hierarchy but not defined" in body


def test_scene_lists_every_shape_kind_with_labels_and_sizes(user_client, doorway_task):
    response, body = detail(user_client, doorway_task)
    counts = {group.kind: group.count for group in response.context["scene"].groups}
    assert counts == {"cubes": 2, "spheres": 1, "cylinders": 1, "cones": 1, "capsules": 1}
    for label in ("Left wall", "Small block", "Red ball", "Pillar", "Traffic cone", "Capsule buoy"):
        assert label in body
    assert "0.5 × 5 × 1.5 m" in body and "r 0.25 m, h 2 m" in body and "(3, -2.8, 0.75)" in body
    assert "Two walls form a doorway" in body
    assert body.count('class="map-object') == 6  # the top-down map draws each object


def test_tree_nests_skills_with_level_kind_and_training_position(user_client, doorway_task):
    response, body = detail(user_client, doorway_task)
    tree = response.context["tree"]
    assert tree.name == "doorway_and_goal"
    assert [c.name for c in tree.children] == ["Navigate_Doorway", "Walk_to_Small_Block"]
    assert [c.name for c in tree.children[0].children] == ["approach_doorway", "open_door"]
    tree_html = body[body.index('id="skill-tree"') : body.index('id="library-title"')]
    assert tree_html.count("<details") == 3  # the three composites expand and collapse
    assert "L2" in tree_html and "badge-composite" in tree_html and "badge-primitive" in tree_html
    assert "#6" in tree_html and "#1" in tree_html  # order + 1
    assert "Get through the doorway." in tree_html


def test_undefined_skill_is_flagged_in_tree_and_table(user_client, doorway_task):
    response, body = detail(user_client, doorway_task)
    open_door = response.context["tree"].children[0].children[1]
    assert open_door.undefined
    assert 'class="tree-node is-undefined"' in body
    row = Skill.objects.get(task=doorway_task, name="open_door")
    assert f'<tr id="skill-{row.pk}" class="is-undefined">' in body


def test_case_twins_are_both_shown_and_kept_apart(user_client, doorway_task):
    response, body = detail(user_client, doorway_task)
    composite = Skill.objects.get(task=doorway_task, name="Walk_to_Small_Block")
    primitive = Skill.objects.get(task=doorway_task, name="walk_to_Small_Block")
    walk = response.context["tree"].children[1]
    assert walk.skill == composite and walk.children[0].skill == primitive
    assert f'id="skill-{composite.pk}"' in body and f'id="skill-{primitive.pk}"' in body
    assert '<code class="skill-name">Walk_to_Small_Block</code>' in body
    assert '<code class="skill-name">walk_to_Small_Block</code>' in body


def test_skill_library_lists_every_skill_in_training_order(user_client, doorway_task):
    response, body = detail(user_client, doorway_task)
    rows = response.context["skill_rows"]
    assert [r.skill.order for r in rows] == list(range(6))
    root = rows[-1]
    assert [ref.name for ref in root.sub_skills] == ["Navigate_Doorway", "Walk_to_Small_Block"]
    navigate = rows[3]
    assert [(ref.name, ref.skill is None) for ref in navigate.sub_skills] == [
        ("approach_doorway", False),
        ("open_door", False),
    ]
    assert [ref.name for ref in rows[0].used_by] == ["Navigate_Doorway"]
    assert 'title="Not defined in the skill library"' not in body  # every named skill has a row here


def test_lookup_is_case_sensitive(user_client, doorway_task):
    url = reverse("task_detail", kwargs={"robot": "G1", "name": "Doorway_And_Goal"})
    assert user_client.get(url).status_code == 404
    url = reverse("task_detail", kwargs={"robot": "g1", "name": "doorway_and_goal"})
    assert user_client.get(url).status_code == 404


def test_names_with_dots_and_dashes_route(user_client):
    task = make_task("reach-v2.1_final", "Franka.arm-2")
    assert task.get_absolute_url() == "/tasks/Franka.arm-2/reach-v2.1_final/"
    _, body = detail(user_client, task)
    assert "reach-v2.1_final" in body


def test_two_level_list_hierarchy_gets_a_virtual_root(user_client):
    task = make_task("fetch", hierarchy=[{"name": "go_a"}, {"name": "go_b"}], root_skill="fetch")
    Skill.objects.create(task=task, name="go_a", level=0, order=0)
    response, _ = detail(user_client, task)
    tree = response.context["tree"]
    assert tree.name == "fetch" and [c.name for c in tree.children] == ["go_a", "go_b"]
    assert tree.children[1].undefined


def test_tree_falls_back_to_sub_skills_without_hierarchy(user_client):
    task = make_task("fetch", hierarchy={}, root_skill="fetch")
    Skill.objects.create(task=task, name="fetch", level=1, order=1, is_primitive=False, sub_skills=["go", "gone"])
    Skill.objects.create(task=task, name="go", level=0, order=0)
    response, _ = detail(user_client, task)
    tree = response.context["tree"]
    assert [c.name for c in tree.children] == ["go", "gone"]
    assert tree.children[1].undefined


def test_cyclic_or_broken_data_still_renders(user_client):
    looping = {"name": "a", "children": [{"name": "b", "children": [{"name": "a", "children": [{"name": "b"}]}]}]}
    task = make_task(
        "loop",
        hierarchy=looping,
        object_config={"num_cubes": "three", "position_cubes": "nope", "num_spheres": 10**9, "_comment": 5},
        warnings=["odd"],
    )
    Skill.objects.create(task=task, name="a", sub_skills="not-a-list", used_by={"odd": 1})
    response, body = detail(user_client, task)
    assert "cycle" in body
    assert response.context["scene"].total == 500  # capped, never a billion rows


def test_task_without_skills_or_scene_says_so(user_client):
    task = make_task("bare", hierarchy={}, root_skill="")
    _, body = detail(user_client, task)
    assert "This task has no hierarchy." in body
    assert "No skills imported for this task." in body
    assert "No object_config.json was imported" in body


def test_demo_task_page(user_client, demo_tasks):
    patrol = next(task for task in demo_tasks if task.name == "patrol_beacons")
    response, body = detail(user_client, patrol)
    assert response.context["scene"].total == 4
    assert "Red beacon (north-west)" in body
    assert len(response.context["skill_rows"]) == 7


def test_detail_query_count_does_not_grow_with_skills(user_client, doorway_task, django_assert_max_num_queries):
    # session, user, task, skills, permissions, then the training panel and per-skill status
    # (constant in the number of skills)
    with django_assert_max_num_queries(12):
        user_client.get(doorway_task.get_absolute_url())
