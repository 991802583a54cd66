"""--new-run deletes this task's training artifacts only, and says what it deleted."""

from __future__ import annotations

import pytest

from tasks.models import Skill, Task
from tests.factories import give_states, orchestrate
from training import paths
from training.models import SessionEvent, SessionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


@pytest.fixture
def twin(fetch_block) -> Task:
    """The same task name under another robot: its artifacts share every name but the robot."""
    task = Task.objects.create(name="fetch_block", robot="OtherBot", backend="embedded", root_skill="go_to_block")
    Skill.objects.create(task=task, name="go_to_block", is_primitive=True)
    return task


def test_new_run_deletes_only_this_tasks_artifacts(fetch_block, patrol, twin, start, settings):
    mine = fetch_block.skills.get(name="go_to_block")
    give_states(mine, 30)
    stray = paths.task_dir(fetch_block) / "notes.txt"
    stray.write_text("mine too")
    other_skill = patrol.skills.get(name="reach_red_beacon")
    give_states(other_skill, 30)
    twin_skill = twin.skills.get()
    give_states(twin_skill, 30)
    prefix_twin = paths.runs_root() / "PointMass" / "fetch_block_v2" / "keep.txt"
    prefix_twin.parent.mkdir(parents=True)
    prefix_twin.write_text("not mine")

    orch = orchestrate(start(fetch_block, new_run=True, min_success_states=20))
    session = orch.run()

    assert session.status == SessionStatus.COMPLETED
    # go_to_block had enough states and a policy, but they were deleted first: it trained again.
    assert session.skill_runs.get(skill=mine).started_at is not None
    assert not stray.exists()
    assert paths.count_success_states(paths.success_dir(other_skill)) == 30
    assert paths.has_policy(other_skill)
    assert paths.count_success_states(paths.success_dir(twin_skill)) == 30
    assert prefix_twin.read_text() == "not mine"

    root = paths.task_dir(fetch_block)
    assert {p.relative_to(root).as_posix() for p in orch.deleted} == {f"skills/{mine.pk}-go_to_block", "notes.txt"}
    event = session.events.get(kind=SessionEvent.Kind.ARTIFACTS_DELETED)
    assert f"skills/{mine.pk}-go_to_block" in event.message and "notes.txt" in event.message


def test_new_run_with_nothing_to_delete_says_so(fetch_block, start):
    session = orchestrate(start(fetch_block, new_run=True)).run()

    event = session.events.get(kind=SessionEvent.Kind.ARTIFACTS_DELETED)
    assert "nothing" in event.message


def test_unsafe_names_never_become_paths(fetch_block):
    fetch_block.name = "../escape"
    with pytest.raises(paths.UnsafePathError):
        paths.task_dir(fetch_block)
    fetch_block.name = "fetch_block"
    fetch_block.robot = "a/b"
    with pytest.raises(paths.UnsafePathError):
        paths.delete_task_artifacts(fetch_block)
