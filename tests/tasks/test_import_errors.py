"""A broken task raises a clear error naming file and problem, imports nothing, and spares its siblings."""

from __future__ import annotations

import pytest

from tasks.genhrl import GenHRLError, parse_task
from tasks.importer import import_path
from tasks.models import Skill, Task
from tests.factories import node, skill, two_level

pytestmark = pytest.mark.django_db

REAL_TASKS = {
    "build_stairs_seed42",
    "doorway_and_goal_seed42",
    "knock_over_pillars_seed42",
    "move_three_objects_seed42",
    "obstacle_course_seed42",
}


def _only_failure(report):
    assert len(report.failed) == 1, report.results
    return report.failed[0]


def test_malformed_json_fails_only_that_task(g1_copy):
    bad = g1_copy.add_task("broken_json", robot="G1", library_text='{"skills": {"a": }')

    report = import_path(g1_copy.root)

    failure = _only_failure(report)
    assert failure.label == "G1/broken_json"
    assert str(bad / "skill_library.json") in failure.error
    assert "malformed JSON" in failure.error and "line 1" in failure.error
    assert {result.name for result in report.added} == REAL_TASKS
    assert not Task.objects.filter(name="broken_json").exists()


def test_missing_library_fails_only_that_task(g1_copy):
    g1_copy.add_task("no_library", robot="G1", write_library=False)

    report = import_path(g1_copy.root)

    failure = _only_failure(report)
    assert failure.name == "no_library"
    assert "no_library/skill_library.json" in failure.error and "missing skill library" in failure.error
    assert {result.name for result in report.added} == REAL_TASKS
    assert not Task.objects.filter(name="no_library").exists()


def test_missing_library_of_a_task_folder_given_directly_is_an_error(lab):
    task_dir = lab.add_task("lonely", write_library=False)

    with pytest.raises(GenHRLError, match="missing skill library"):
        parse_task(task_dir)
    assert import_path(task_dir).failed[0].name == "lonely"


def test_cycle_among_composites_fails_only_that_task(g1_copy):
    skills = {
        "loop": skill(False, ["A"]),
        "A": skill(False, ["B", "p"], used_by=["loop", "B"]),
        "B": skill(False, ["A"], used_by=["A"]),
        "p": skill(True, used_by=["A"]),
    }
    g1_copy.add_task("loop", robot="G1", skills=skills, structure=node("loop", node("A", node("B"), node("p"))))

    report = import_path(g1_copy.root)

    failure = _only_failure(report)
    assert "loop/skill_library.json" in failure.error
    assert "cycle among composite skills: A -> B -> A" in failure.error
    assert {result.name for result in report.added} == REAL_TASKS
    assert not Task.objects.filter(name="loop").exists()


def test_composite_listing_itself_is_a_cycle(lab):
    skills = {"t": skill(False, ["t", "a"]), "a": skill(True, used_by=["t"])}
    with pytest.raises(GenHRLError, match="cycle among composite skills: t -> t"):
        parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a"))))


@pytest.mark.parametrize("bad_name", ["..", "../escape", "a/b", "a\\b", "nul\x00byte", "", ".hidden", "sp ace"])
def test_skill_name_that_could_escape_its_folder_fails_only_that_task(lab, bad_name):
    lab.add_task("good")
    skills, structure = two_level("evil", prims=("ok", bad_name))
    lab.add_task("evil", skills=skills, structure=structure)

    report = import_path(lab.root)

    failure = _only_failure(report)
    assert "evil/skill_library.json" in failure.error
    assert "skill name" in failure.error
    assert [result.name for result in report.added] == ["good"]
    assert not Task.objects.filter(name="evil").exists()
    assert not Skill.objects.filter(name="ok").exists()


def test_bad_name_in_sub_skills_only_is_also_refused(lab):
    skills = {"t": skill(False, ["a", "../../etc"]), "a": skill(True, used_by=["t"])}
    with pytest.raises(GenHRLError, match=r"skill name '\.\./\.\./etc' could escape its folder"):
        parse_task(lab.add_task("t", skills=skills, structure=node("t", node("a"))))


@pytest.mark.parametrize("folder", [".hidden_task", "bad name", "back\\slash"])
def test_task_folder_name_that_could_escape_fails_only_that_task(lab, folder):
    lab.add_task("good")
    lab.add_task(folder)

    report = import_path(lab.root)

    failure = _only_failure(report)
    assert failure.name == folder
    assert "task name" in failure.error and "could escape its folder" in failure.error
    assert [result.name for result in report.added] == ["good"]
    assert Task.objects.count() == 1


def test_robot_folder_name_that_could_escape_fails_its_tasks(lab):
    lab.add_task("good", robot="R1")
    lab.add_task("other", robot="bad robot")

    report = import_path(lab.root)

    failure = _only_failure(report)
    assert failure.name == "other"
    assert "robot name 'bad robot'" in failure.error
    assert list(Task.objects.values_list("robot", "name")) == [("R1", "good")]


def test_empty_robot_name_is_refused(lab):
    task_dir = lab.add_task("t", robot="")
    with pytest.raises(GenHRLError, match="robot name is empty"):
        parse_task(task_dir)


def test_library_without_hierarchy_for_the_task_is_an_error(lab):
    library = (
        '{"skills": {"t": {"is_primitive": true}}, "hierarchies": {"x": {"structure": {"name": "t"}}, '
        '"y": {"structure": {"name": "t"}}}}'
    )
    task_dir = lab.add_task("t", library_text=library)
    with pytest.raises(GenHRLError, match="no hierarchy for task 't'"):
        parse_task(task_dir)


def test_malformed_embedded_spec_fails_the_task(lab):
    task_dir = lab.add_task("t")
    spec = task_dir / "skills" / "go_a" / "embedded.json"
    spec.parent.mkdir(parents=True)
    spec.write_text("{nope")

    failure = _only_failure(import_path(task_dir))
    assert "go_a/embedded.json" in failure.error and "malformed JSON" in failure.error


def test_failed_reimport_keeps_the_previous_rows(lab):
    task_dir = lab.add_task("t")
    import_path(task_dir)
    before = list(Skill.objects.values_list("pk", "name", "order"))
    (task_dir / "skill_library.json").write_text("not json")

    report = import_path(task_dir)

    assert report.failed[0].name == "t"
    assert list(Skill.objects.values_list("pk", "name", "order")) == before
