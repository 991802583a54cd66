"""`manage.py startup_import`: imports GENHRL_ISAACLAB_PATH when it is set, quietly nothing otherwise."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tasks.models import Task

pytestmark = pytest.mark.django_db


def run() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("startup_import", stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def test_startup_import_without_a_path_does_nothing_quietly(settings):
    settings.GENHRL_ISAACLAB_PATH = None

    assert run() == ("", "")
    assert not Task.objects.exists()


def test_startup_import_imports_the_configured_tree(settings, isaaclab_fixture_tree):
    settings.GENHRL_ISAACLAB_PATH = isaaclab_fixture_tree

    out, _ = run()

    assert "Summary: 5 added" in out
    assert Task.objects.filter(robot="G1").count() == 5


def test_startup_import_reports_a_broken_task_but_does_not_stop_startup(settings, lab):
    lab.add_task("good")
    lab.add_task("bad", library_text="[")
    settings.GENHRL_ISAACLAB_PATH = lab.root

    out, _ = run()

    assert "FAILED   R1/bad" in out
    assert "1 added" in out and "1 failed" in out
    assert list(Task.objects.values_list("name", flat=True)) == ["good"]


def test_startup_import_of_a_path_without_tasks_is_an_error(settings, tmp_path):
    settings.GENHRL_ISAACLAB_PATH = tmp_path

    with pytest.raises(CommandError, match="GENHRL_ISAACLAB_PATH: .*no GenHRL task found"):
        run()
