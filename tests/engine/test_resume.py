"""Resume: an interrupted, failed or cancelled session continues without retraining completed skills."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories import FAST, TINY, Workers, fake_builder, wait_for
from training import paths, services
from training.engine import planning
from training.engine.orchestrator import Orchestrator
from training.leases import worker_identity
from training.models import SessionEvent, SessionStatus, SkillRun, SkillStatus, TrainingSession

pytestmark = [pytest.mark.django_db(transaction=True)]

# The real trainer, tiny (tests/engine/test_real_trainer.py): seconds per skill.
SMALL = {"num_envs": 64, "min_success_states": 20, "min_steps_primitive": 4096, "min_steps_composite": 1024,
         "max_time": 2, "seed": 1}


def snapshot_files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}


def interrupt_after_first_skill(session: TrainingSession) -> TrainingSession:
    """Train with the fake trainer until the first skill completes, then stop as a worker shutdown does."""

    def stop_after_first(orch: Orchestrator) -> None:
        if orch.runs and orch.runs[0].status == SkillStatus.COMPLETED:
            orch.shutdown("worker test:1 received SIGTERM")

    return Orchestrator(
        session, command_builder=fake_builder("--epoch-seconds", "0.05"), timings=FAST, actor="test",
        worker_id=worker_identity(), on_update=stop_after_first,
    ).run()


@pytest.mark.training
def test_resume_trains_only_what_the_interrupted_session_did_not_finish(fetch_block) -> None:
    # skip_complete off: only the resume itself may skip the completed skill.
    first = interrupt_after_first_skill(services.start_session(fetch_block, {**TINY, "skip_complete": False},
                                                               actor="test"))
    assert first.status == SessionStatus.INTERRUPTED, first.error
    done = first.skill_runs.get(order=0)
    assert done.status == SkillStatus.COMPLETED
    states_before = snapshot_files(paths.success_dir(done.skill))

    resumed = services.resume_session(first, actor="user:someone")
    resumed = Orchestrator(resumed, command_builder=fake_builder(), timings=FAST, actor="test").run()

    assert resumed.status == SessionStatus.COMPLETED, resumed.error
    assert resumed.resumed_from_id == first.pk and resumed.config["new_run"] is False
    kept = resumed.skill_runs.get(skill=done.skill)
    assert (kept.status, kept.stop_reason, kept.started_at) == (SkillStatus.SKIPPED, "resumed", None)
    assert SkillRun.objects.filter(skill=done.skill, started_at__isnull=False).count() == 1
    assert snapshot_files(paths.success_dir(done.skill)) == states_before
    assert [r.status for r in resumed.skill_runs.order_by("order")][1:] == [SkillStatus.COMPLETED] * 2
    assert first.events.filter(kind=SessionEvent.Kind.NOTE, message=f"resumed as session {resumed.pk}").exists()
    assert resumed.events.filter(message=f"resumes session {first.pk}", actor="user:someone").exists()


def test_resume_refuses_completed_active_and_already_resumed_sessions(fetch_block, demo) -> None:
    session = services.start_session(fetch_block, TINY, actor="test")
    with pytest.raises(services.NotResumable):
        services.resume_session(session, actor="test")  # still queued
    services.request_cancel(session, actor="test")

    again = services.resume_session(session, actor="test")
    with pytest.raises(services.NotResumable, match=f"already resumed as session {again.pk}"):
        services.resume_session(session, actor="test")
    services.request_cancel(again, actor="test")

    # Another session of the task is active: the one-active-session rule refuses the resume.
    busy = services.start_session(fetch_block, TINY, actor="test")
    with pytest.raises(services.SessionAlreadyActive):
        services.resume_session(again, actor="test")
    busy.transition_to(SessionStatus.RUNNING, actor="test")
    busy.transition_to(SessionStatus.COMPLETED, actor="test")
    with pytest.raises(services.NotResumable):
        services.resume_session(busy, actor="test")


def test_train_resume_refuses_settings_and_sessions_that_cannot_resume(fetch_block, monkeypatch) -> None:
    with pytest.raises(CommandError, match="no training session to resume"):
        call_command("train", "fetch_block", "--resume", stdout=io.StringIO())
    with pytest.raises(CommandError, match="drop --num-envs"):
        call_command("train", "fetch_block", "--resume", "--num-envs", "32", stdout=io.StringIO())
    monkeypatch.setattr(planning, "default_command_builder", fake_builder())
    call_command("train", "fetch_block", *[f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()],
                 stdout=io.StringIO())
    with pytest.raises(CommandError, match="is completed; nothing to resume"):
        call_command("train", "fetch_block", "--resume", stdout=io.StringIO())


@pytest.mark.training
def test_train_resume_after_a_worker_stopped_mid_session_with_the_real_trainer(fetch_block, workers: Workers) -> None:
    session = services.start_session(fetch_block, SMALL, actor="test")
    worker = workers.start("--slots", "1", "--poll-interval", "0.1", fake=None)  # the real trainer

    def first_skill_done() -> bool:
        return session.skill_runs.filter(order=0, status=SkillStatus.COMPLETED).exists()

    assert wait_for(first_skill_done, 60, 0.1), workers.log()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=40) == 0, workers.log()
    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED, (session.status, session.error)
    first = session.skill_runs.get(order=0)
    states_before = snapshot_files(paths.success_dir(first.skill))
    policy_before = snapshot_files(paths.policy_dir(first.skill))

    out = io.StringIO()
    call_command("train", "fetch_block", "--robot", "PointMass", "--resume", "--plain", stdout=out,
                 stderr=io.StringIO())

    resumed = TrainingSession.objects.get(resumed_from=session)
    assert resumed.status == SessionStatus.COMPLETED, resumed.error
    assert f"Resuming session {session.pk}" in out.getvalue() and "All 3 skills trained." in out.getvalue()
    assert resumed.worker_id.startswith(worker_identity().rsplit(":", 2)[0])  # claimed by the CLI
    assert resumed.skill_runs.get(skill=first.skill).status == SkillStatus.SKIPPED
    assert SkillRun.objects.filter(skill=first.skill, started_at__isnull=False).count() == 1
    assert snapshot_files(paths.success_dir(first.skill)) == states_before
    assert snapshot_files(paths.policy_dir(first.skill)) == policy_before
    assert {r.status for r in resumed.skill_runs.exclude(skill=first.skill)} == {SkillStatus.COMPLETED}
