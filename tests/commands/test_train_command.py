"""`manage.py train`: validated options, the same session rows as the web, exit status, Ctrl-C."""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest
from django.core.management import CommandError, call_command

from tests.factories import fake_builder, give_states, group_gone
from training import paths, services
from training.engine import planning
from training.models import SessionEvent, SessionStatus, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.training]

SMALL = ["--num-envs", "16", "--min-success-states", "10", "--min-steps-primitive", "0",
         "--min-steps-composite", "0", "--max-time", "1"]


@pytest.fixture
def fake(monkeypatch):
    def use(*extra: str) -> None:
        monkeypatch.setattr(planning, "default_command_builder", fake_builder(*extra))

    use()
    return use


def train(*args: str) -> str:
    out = io.StringIO()
    call_command("train", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_train_records_the_session_like_the_web_and_exits_zero(fetch_block, fake):
    output = train("fetch_block", "--robot", "PointMass", *SMALL)

    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.COMPLETED
    assert session.config["num_envs"] == 16
    assert session.backend == "embedded"
    assert session.events.first().actor.startswith("cli:")
    assert set(session.skill_runs.values_list("status", flat=True)) == {SkillStatus.COMPLETED}
    assert "All 3 skills trained." in output
    # Not a terminal: plain lines, no cursor control codes.
    assert "\x1b[" not in output
    assert "[0/3] go_to_block: training" in output
    assert "[3/3] fetch_block: completed" in output


def test_skipped_skills_count_as_done(fetch_block, fake):
    for skill in fetch_block.skills.all():
        give_states(skill, 10)

    output = train("fetch_block", *SMALL)

    assert set(TrainingSession.objects.get().skill_runs.values_list("status", flat=True)) == {"skipped"}
    assert "All 3 skills trained." in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num-envs", "8"], "--num-envs: must be between 16 and 8192"),
        (["--num-envs", "512", "--backend", "isaaclab"], "--num-envs: must be between 1024 and 8192"),
        (["--max-time", "0"], "--max-time: must be more than 0"),
        (["--max-time", "soon"], "--max-time: must be a number"),
        (["--min-success-states", "0"], "--min-success-states: must be between 1"),
        (["--seed", "-1"], "--seed: must be between 0"),
        (["--seed", "4.5"], "--seed: must be a whole number"),
        (["--video-interval", "0"], "--video-interval: must be between 1"),
        (["--min-steps-primitive", "-5"], "--min-steps-primitive: must be between 0"),
    ],
)
def test_invalid_options_start_nothing(fetch_block, fake, args, message):
    with pytest.raises(CommandError, match="invalid options") as exc:
        train("fetch_block", *args)

    assert message in str(exc.value)
    assert not TrainingSession.objects.exists()
    assert not paths.task_dir(fetch_block).exists()


def test_isaaclab_without_a_root_starts_nothing(fetch_block, fake, settings):
    settings.GENHRL_ISAACLAB_ROOT = None

    with pytest.raises(CommandError, match="GENHRL_ISAACLAB_ROOT"):
        train("fetch_block", "--backend", "isaaclab")

    assert not TrainingSession.objects.exists()


def test_unknown_task_and_busy_task_are_refused(fetch_block, fake):
    with pytest.raises(CommandError, match="No task named 'nope'"):
        train("nope")
    services.start_session(fetch_block, {}, actor="user:web")

    with pytest.raises(CommandError, match="already training"):
        train("fetch_block", *SMALL)

    assert TrainingSession.objects.count() == 1


def test_failed_training_exits_non_zero_with_the_error(fetch_block, fake):
    fake("--crash-after", "1")

    with pytest.raises(CommandError, match="training failed: go_to_block: the trainer raised") as exc:
        train("fetch_block", *SMALL)

    assert exc.value.returncode == 1


def test_new_run_says_what_it_deleted(fetch_block, fake):
    skill = fetch_block.skills.get(name="go_to_block")
    give_states(skill, 3)

    output = train("fetch_block", "--new-run", *SMALL)

    assert "--new-run deleted from" in output
    assert f"skills/{skill.pk}-go_to_block" in output


def test_ctrl_c_cancels_gracefully_and_leaves_no_process(fetch_block, fake):
    fake("--spawn-child")
    skill = fetch_block.skills.get(name="go_to_block")

    def press_ctrl_c() -> None:
        # Wait for the trainer to be really training (success states on disk), then Ctrl-C.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(paths.success_dir(skill).glob("ss-*.pt")):
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(CommandError, match="cancelled") as exc:
            train("fetch_block", *SMALL[:2], "--min-success-states", "100000")
    finally:
        presser.join()

    assert exc.value.returncode == 130
    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.CANCELLED
    run = session.skill_runs.get(skill=skill)
    assert run.status == SkillStatus.CANCELLED
    assert run.success_states > 0
    assert group_gone(run.pid)
    assert session.events.filter(kind=SessionEvent.Kind.CANCEL_REQUESTED, actor__startswith="cli:").exists()
    # The signal handlers are restored.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_slots_train_independent_skills_at_once_from_the_terminal(patrol, fake):
    fake("--epoch-seconds", "0.05")
    output = train("patrol_beacons", *SMALL, "--slots", "2")

    session = TrainingSession.objects.get()
    assert session.status == SessionStatus.COMPLETED
    assert "up to 2 skills at once" in output and "All 7 skills trained." in output
    runs = list(session.skill_runs.all())
    assert any(a.pk < b.pk and a.started_at < b.finished_at and b.started_at < a.finished_at
               for a in runs for b in runs)
    with pytest.raises(CommandError, match="--slots must be between 1 and 64"):
        train("patrol_beacons", "--slots", "0")
