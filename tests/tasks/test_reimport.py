"""Re-importing updates rows in place: no duplicates, skills keep their ids, nothing written if unchanged."""

from __future__ import annotations

import json

import pytest

from tasks.importer import import_path
from tasks.models import Skill, Task
from tests.factories import node, skill

pytestmark = pytest.mark.django_db


def test_reimport_updates_instead_of_duplicating(isaaclab_fixture_tree):
    import_path(isaaclab_fixture_tree)
    report = import_path(isaaclab_fixture_tree)

    assert len(report.unchanged) == 5
    assert report.added == [] and report.updated == [] and report.failed == []
    assert Task.objects.count() == 5
    assert Skill.objects.count() == 9 + 6 + 11 + 10 + 15


def test_unchanged_reimport_writes_nothing(lab):
    task_dir = lab.add_task("t")
    import_path(task_dir)
    stamp = Task.objects.get().updated_at

    report = import_path(task_dir)

    assert [result.status for result in report.results] == ["unchanged"]
    assert Task.objects.get().updated_at == stamp


def test_reimport_keeps_skill_pks_and_applies_changes(lab):
    skills = {"t": skill(False, ["a", "b"]), "a": skill(True, used_by=["t"]), "b": skill(True, used_by=["t"])}
    task_dir = lab.add_task("t", skills=skills, structure=node("t", node("a"), node("b")))
    import_path(task_dir)
    task_pk = Task.objects.get().pk
    pks = dict(Skill.objects.values_list("name", "pk"))

    # b is removed, c is added, a is reworded, and the order of the children changes.
    skills = {
        "t": skill(False, ["c", "a"]),
        "a": skill(True, used_by=["t"], description="reworded"),
        "c": skill(True, used_by=["t"]),
    }
    lab.add_task("t", skills=skills, structure=node("t", node("c"), node("a")))
    report = import_path(task_dir)

    assert [result.status for result in report.results] == ["updated"]
    task = Task.objects.get()
    assert task.pk == task_pk
    rows = {s.name: s for s in task.skills.all()}
    assert set(rows) == {"t", "a", "c"}
    assert rows["a"].pk == pks["a"] and rows["t"].pk == pks["t"]
    assert rows["a"].description == "reworded"
    assert [s.name for s in task.skills.order_by("order")] == ["c", "a", "t"]
    assert rows["t"].sub_skills == ["c", "a"]
    assert not Skill.objects.filter(pk=pks["b"]).exists()
    assert task.skill_count == 3


def test_reimport_picks_up_a_new_description_and_object_config(lab):
    task_dir = lab.add_task("t", description="first")
    import_path(task_dir)

    lab.add_task("t", description="second", object_config={"num_spheres": 1})
    report = import_path(task_dir)

    assert report.updated[0].name == "t"
    task = Task.objects.get()
    assert task.description == "second"
    assert task.object_config == {"num_spheres": 1}


def test_reimport_of_a_skill_gaining_an_embedded_spec_updates_backend(lab):
    task_dir = lab.add_task("t")
    import_path(task_dir)
    assert Task.objects.get().backend == "isaaclab"

    for name in ("t", "go_a", "go_b"):
        spec = task_dir / "skills" / name / "embedded.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(json.dumps({"type": "reach" if name != "t" else "sequence"}))
    import_path(task_dir)

    task = Task.objects.get()
    assert task.backend == "embedded"
    assert task.skills.get(name="go_a").embedded_spec == {"type": "reach"}


def test_same_task_name_for_two_robots_are_two_tasks(lab):
    lab.add_task("t", robot="R1")
    lab.add_task("t", robot="R2")

    import_path(lab.root)

    assert sorted(Task.objects.values_list("robot", "name")) == [("R1", "t"), ("R2", "t")]
