"""import_path accepts an Isaac Lab tree, a robot folder or a task folder (either side)."""

from __future__ import annotations

import pytest

from tasks.genhrl import GenHRLError
from tasks.importer import import_path
from tasks.models import Task
from tests.factories import Lab

pytestmark = pytest.mark.django_db


def _names(report) -> list[str]:
    return sorted(result.label for result in report.results)


def test_import_from_isaaclab_tree_finds_every_robot(lab):
    lab.add_task("a", robot="R1")
    lab.add_task("b", robot="R1")
    lab.add_task("c", robot="R2")

    report = import_path(lab.root)

    assert _names(report) == ["R1/a", "R1/b", "R2/c"]
    assert Task.objects.count() == 3


def test_import_from_a_folder_above_the_isaaclab_tree(lab):
    lab.add_task("a")

    assert _names(import_path(lab.root.parent)) == ["R1/a"]


def test_import_from_robot_folder_imports_only_that_robot(lab):
    lab.add_task("a", robot="R1")
    lab.add_task("c", robot="R2")

    assert _names(import_path(lab.robot_dir("R1"))) == ["R1/a"]


def test_import_from_robots_skills_folder_means_the_robot(lab):
    lab.add_task("a")

    assert _names(import_path(lab.robot_dir() / "skills")) == ["R1/a"]


def test_import_from_task_folder_on_the_skills_side(lab):
    task_dir = lab.add_task("a")
    lab.add_task("b")

    assert _names(import_path(task_dir)) == ["R1/a"]


def test_import_from_task_folder_on_the_tasks_side(lab):
    lab.add_task("a")
    lab.add_task("b")

    report = import_path(lab.robot_dir() / "tasks" / "b")

    assert _names(report) == ["R1/b"]
    assert Task.objects.get().source_path == str(lab.robot_dir() / "skills" / "b")


def test_import_from_real_fixture_robot_and_task_folders(isaaclab_fixture_tree):
    from tests.factories import G1_GENERATED

    assert len(import_path(G1_GENERATED).results) == 5
    assert _names(import_path(G1_GENERATED / "skills" / "build_stairs_seed42")) == ["G1/build_stairs_seed42"]


def test_folders_under_skills_without_a_library_are_not_tasks(lab):
    lab.add_task("a")
    (lab.robot_dir() / "skills" / "agents").mkdir()
    (lab.robot_dir() / "skills" / "agents" / "rsl_rl_ppo_cfg.yaml").write_text("{}")
    (lab.robot_dir() / "skills" / "skill_config_template.py").write_text("")

    assert _names(import_path(lab.root)) == ["R1/a"]


def test_missing_path_raises(tmp_path):
    with pytest.raises(GenHRLError, match="no such file or folder"):
        import_path(tmp_path / "nowhere")


def test_path_without_genhrl_tasks_raises(tmp_path):
    (tmp_path / "empty" / "source").mkdir(parents=True)

    with pytest.raises(GenHRLError, match="no GenHRL task found"):
        import_path(tmp_path / "empty")


def test_search_does_not_follow_symlink_loops(lab):
    lab.add_task("a")
    (lab.root / "loop").symlink_to(lab.root, target_is_directory=True)

    assert _names(import_path(lab.root)) == ["R1/a"]


def test_symlinked_robot_folder_is_found(lab, tmp_path):
    elsewhere = Lab(tmp_path / "elsewhere")
    elsewhere.add_task("linked", robot="R9")
    lab.add_task("a")
    (lab.manager_based / "R9_generated").symlink_to(elsewhere.robot_dir("R9"), target_is_directory=True)

    assert _names(import_path(lab.root)) == ["R1/a", "R9/linked"]
