"""`manage.py import_tasks`: what was added, updated, skipped and failed, and a failing exit on errors."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.models import Task

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_tasks", *args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def test_import_tasks_prints_added_then_skipped_on_second_run(isaaclab_fixture_tree):
    out, err = run(str(isaaclab_fixture_tree))

    assert f"Importing from {isaaclab_fixture_tree.resolve()}" in out
    assert "  added    G1/doorway_and_goal_seed42 (6 skills, 3 levels, isaaclab)" in out
    assert "Summary: 5 added, 0 updated, 0 skipped (unchanged), 0 failed" in out
    doorway = out.index("G1/doorway_and_goal_seed42")
    assert out.index("warning: Skills 'walk_to_Small_Block' and 'Walk_to_Small_Block' differ only by case") > doorway
    assert err == ""

    out, _ = run(str(isaaclab_fixture_tree))

    assert "  skipped  G1/doorway_and_goal_seed42 (6 skills, 3 levels, isaaclab, unchanged)" in out
    assert "Summary: 0 added, 0 updated, 5 skipped (unchanged), 0 failed" in out


def test_import_tasks_prints_updated(lab):
    task_dir = lab.add_task("t", description="one")
    run(str(task_dir))
    lab.add_task("t", description="two")

    out, _ = run(str(task_dir))

    assert "  updated  R1/t (3 skills, 2 levels, isaaclab)" in out


def test_import_tasks_demo():
    out, _ = run("--demo")

    assert "  added    PointMass/patrol_beacons (7 skills, 3 levels, embedded)" in out
    assert "  added    PointMass/fetch_block (3 skills, 2 levels, embedded)" in out
    assert "warning:" not in out


def test_import_tasks_failure_names_file_and_problem_and_exits_non_zero(lab):
    lab.add_task("good")
    bad = lab.add_task("bad", library_text="{")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 task failed to import"):
        call_command("import_tasks", str(lab.root), stdout=out, stderr=err, no_color=True)

    assert f"  FAILED   R1/bad: {bad / 'skill_library.json'}: malformed JSON" in out.getvalue()
    assert "  added    R1/good" in out.getvalue()
    assert "1 added, 0 updated, 0 skipped (unchanged), 1 failed" in out.getvalue()
    assert list(Task.objects.values_list("name", flat=True)) == ["good"]


def test_import_tasks_missing_path_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        run(str(tmp_path / "missing"))


def test_import_tasks_path_without_tasks_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="no GenHRL task found"):
        run(str(tmp_path))


@pytest.mark.parametrize("args", [(), ("somewhere", "--demo")])
def test_import_tasks_needs_exactly_one_of_path_or_demo(args):
    with pytest.raises(CommandError, match="either a PATH or --demo"):
        run(*args)
