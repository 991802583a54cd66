"""Quirks of real GenHRL libraries import, each with a human-readable warning."""

from __future__ import annotations

import pytest

from tasks.genhrl import parse_task
from tasks.importer import import_path
from tasks.models import Task
from tests.factories import node, skill


def _warning(warnings: list[str], *needles: str) -> str:
    matches = [w for w in warnings if all(needle in w for needle in needles)]
    assert len(matches) == 1, warnings
    return matches[0]


def test_case_twins_are_separate_skills_with_a_warning(lab):
    skills = {
        "walk": skill(False, ["Reach_Box", "reach_box"]),
        "Reach_Box": skill(False, ["reach_BOX"], used_by=["walk"]),
        "reach_BOX": skill(True, used_by=["Reach_Box"]),
        "reach_box": skill(True, used_by=["walk"]),
    }
    structure = node("walk", node("Reach_Box", node("reach_BOX")), node("reach_box"))
    info = parse_task(lab.add_task("walk", skills=skills, structure=structure))

    assert [(s.name, s.level) for s in info.skills] == [
        ("reach_BOX", 0),
        ("reach_box", 0),
        ("Reach_Box", 1),
        ("walk", 2),
    ]
    warning = _warning(info.warnings, "differ only by case")
    for name in ("reach_BOX", "reach_box", "Reach_Box"):
        assert repr(name) in warning


def test_primitive_listing_itself_as_sub_skill_imports_with_warning(lab):
    skills = {"t": skill(False, ["a", "b"]), "a": skill(True, ["a"], used_by=["t"]), "b": skill(True, used_by=["t"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("b"))))

    assert info.training_order == ["a", "b", "t"]
    a = info.skills[0]
    assert (a.is_primitive, a.level, a.sub_skills) == (True, 0, [])
    _warning(info.warnings, "'a'", "lists itself as its own sub-skill")


@pytest.mark.django_db
def test_undefined_sub_skill_is_stored_undefined_and_left_out_of_training_order(lab):
    skills = {
        "t": skill(False, ["mid", "b"]),
        "mid": skill(False, ["a", "ghost"], used_by=["t"]),
        "a": skill(True, used_by=["mid"]),
        "b": skill(True, used_by=["t"]),
    }
    structure = node("t", node("mid", node("a"), node("ghost")), node("b"))
    report = import_path(lab.add_task("t", skills=skills, structure=structure))

    assert report.failed == []
    task = Task.objects.get(name="t")
    rows = [(s.name, s.level, s.order, s.defined) for s in task.skills.order_by("order")]
    assert rows == [("a", 0, 0, True), ("b", 0, 1, True), ("mid", 1, 2, True), ("t", 2, 3, True), ("ghost", 0, 4, False)]
    assert task.skills.get(name="ghost").used_by == ["mid"]
    assert task.skills.get(name="mid").sub_skills == ["a", "ghost"]
    assert task.skill_count == 5 and task.levels == 3
    _warning(task.warnings, "'ghost'", "never defined", "'mid'", "cannot be trained")


def test_composite_whose_only_sub_skill_is_undefined_warns_it_cannot_train(lab):
    skills = {"t": skill(False, ["ghost"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=node("t", node("ghost"))))

    assert info.training_order == ["t"]
    assert info.skills[0].level == 1
    _warning(info.warnings, "Composite skill 't' has no defined sub-skills")


def test_absolute_object_config_paths_warn_and_are_ignored(lab):
    skills = {"t": skill(False, ["a"]), "a": skill(True, used_by=["t"])}
    structure = node("t", node("a", object_config_paths=["/home/someone/IsaacLab/G1_generated/skills/t/object_config.json"]))
    info = parse_task(lab.add_task("t", skills=skills, structure=structure, object_config={"num_cubes": 2}))

    _warning(info.warnings, "absolute", "/home/someone/IsaacLab")
    assert info.object_config == {"num_cubes": 2}


def test_two_level_list_structure_gets_a_virtual_root_named_after_the_task(lab):
    skills = {"a": skill(True, used_by=["t"]), "b": skill(True, used_by=["t"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=[node("a"), node("b")]))

    assert info.root_skill == "t"
    assert info.structure["name"] == "t"
    assert [child["name"] for child in info.structure["children"]] == ["a", "b"]
    assert [(s.name, s.level, s.is_primitive) for s in info.skills] == [("a", 0, True), ("b", 0, True), ("t", 1, False)]
    assert info.skills[-1].sub_skills == ["a", "b"]
    assert info.levels == 2
    _warning(info.warnings, "structure is a list", "virtual root")


def test_two_level_list_structure_uses_a_defined_root_when_the_map_has_one(lab):
    skills = {"t": skill(False, ["a", "b"], description="root"), "a": skill(True), "b": skill(True)}
    info = parse_task(lab.add_task("t", skills=skills, structure=[node("a"), node("b")]))

    assert info.training_order == ["a", "b", "t"]
    assert info.skills[-1].description == "root"
    _warning(info.warnings, "structure is a list")


def test_virtual_root_missing_from_skills_map_is_created(lab):
    skills = {"a": skill(True, used_by=["t"]), "b": skill(True, used_by=["t"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("b"))))

    assert info.training_order == ["a", "b", "t"]
    root = info.skills[-1]
    assert (root.is_primitive, root.defined, root.sub_skills) == (False, True, ["a", "b"])
    _warning(info.warnings, "virtual root named after the task")


def test_skill_defined_but_absent_from_structure_trains_after_its_level_with_warning(lab):
    skills = {
        "t": skill(False, ["mid", "b"]),
        "mid": skill(False, ["a", "extra"], used_by=["t"]),
        "a": skill(True, used_by=["mid"]),
        "b": skill(True, used_by=["t"]),
        "extra": skill(True, used_by=["mid"]),
        "stale": skill(True),
    }
    structure = node("t", node("mid", node("a")), node("b"))
    info = parse_task(lab.add_task("t", skills=skills, structure=structure))

    assert info.training_order == ["a", "b", "extra", "stale", "mid", "t"]
    _warning(info.warnings, "'extra'", "absent from the hierarchy structure")
    _warning(info.warnings, "'stale'", "absent from the hierarchy structure")
    _warning(info.warnings, "'mid'", "children", "skills map is used")


def test_single_skill_task_is_one_primitive_level(lab):
    info = parse_task(lab.add_task("solo", skills={"solo": skill(True)}, structure=node("solo")))

    assert info.training_order == ["solo"]
    assert info.levels == 1 and info.root_skill == "solo" and info.skills[0].is_primitive
    assert info.warnings == []


def test_root_skill_name_may_differ_from_the_task_folder(lab):
    skills = {"DoIt": skill(False, ["a"]), "a": skill(True, used_by=["DoIt"])}
    info = parse_task(lab.add_task("do_it_seed1", skills=skills, structure=node("DoIt", node("a"))))

    assert (info.name, info.root_skill, info.training_order) == ("do_it_seed1", "DoIt", ["a", "DoIt"])
    assert info.warnings == []


def test_names_repeated_in_the_structure_train_once(lab):
    skills = {"t": skill(False, ["a", "b", "a"]), "a": skill(True, used_by=["t"]), "b": skill(True, used_by=["t"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a"), node("b"), node("a"))))

    assert info.training_order == ["a", "b", "t"]


def test_primitive_flag_is_authoritative_over_listed_sub_skills(lab):
    skills = {"t": skill(False, ["a"]), "a": skill(True, ["b"], used_by=["t"]), "b": skill(True, used_by=["a"])}
    info = parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a", node("b")))))

    assert [(s.name, s.level) for s in info.skills] == [("a", 0), ("b", 0), ("t", 1)]
    _warning(info.warnings, "Primitive skill 'a' lists sub-skills")
