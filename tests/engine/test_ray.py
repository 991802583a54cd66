"""The `ray` executor against a real Ray head on 127.0.0.1 (tests/live.py `ray_head`: 2 CPUs, 2 fake GPUs).

Each skill run is a Ray job running the same trainer, spec and records as a local subprocess.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import FAST, TINY, fake_builder, wait_for
from training import leases, paths, services
from training.engine.orchestrator import Orchestrator
from training.engine.slots import SlotPool
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession
from training.ray_executor import RayExecutor, Resources
from training.trainer.records import parse_line

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


@pytest.fixture
def on_ray(settings, ray_head):
    settings.GENHRL_EXECUTOR = "ray"
    settings.GENHRL_RAY_ADDRESS = ray_head.address
    return ray_head


def job_status(executor: RayExecutor, job_id: str) -> str:
    return str(executor.client.get_job_status(job_id))


def trainer_window(run: SkillRun) -> tuple[float, float]:
    """The first and last record times the trainer itself wrote (its clock, not the orchestrator's)."""
    lines = (Path(run.run_dir) / "trainer.log").read_text().splitlines()
    times = [record["time"] for record in map(parse_line, lines) if record is not None]
    assert times, f"no records in {run.run_dir}/trainer.log"
    return min(times), max(times)


def test_a_demo_skill_trains_on_ray_and_a_cancel_is_graceful(fetch_block, on_ray):
    """The real embedded trainer as a Ray job: it trains, reports, and a cancel ends it the
    graceful way (SIGINT): final checkpoint written, success states kept, job STOPPED."""
    options = {"num_envs": 64, "min_success_states": 1_000_000, "min_steps_primitive": 0, "max_time": 3, "seed": 1}
    session = services.start_session(fetch_block, options, actor="test")
    seen: dict[str, int] = {}

    def cancel_once_it_learns(orch) -> None:
        training = orch.training()
        if training and "frames" not in seen and training[0].run.frames > 20_000:
            seen["frames"] = training[0].run.frames
            services.request_cancel(orch.session, actor="user:someone")

    session = Orchestrator(session, actor="test", timings=FAST, on_update=cancel_once_it_learns).run()

    assert session.status == SessionStatus.CANCELLED, session.error
    run = session.skill_runs.get(order=0)
    assert (run.status, run.executor, run.stop_reason) == (SkillStatus.CANCELLED, "ray", "cancelled")
    assert run.job_id == f"genhrl-{leases.ray_executor().instance}-s{session.pk}-r{run.pk}"
    assert run.pid is None and run.frames >= seen["frames"]
    assert list((Path(run.run_dir) / "nn").glob("last_*.pth")), "no final checkpoint"
    assert paths.count_success_states(paths.success_dir(run.skill)) == run.success_states > 0
    assert job_status(leases.ray_executor(), run.job_id) == "STOPPED"
    log = (Path(run.run_dir) / "trainer.log").read_text()
    assert '"kind":"done"' in log and '"reason":"stopped"' in log  # the trainer's own graceful end
    assert "job_manager.py" not in "\n".join(run.log_lines.values_list("text", flat=True))  # Ray's lines


def test_a_whole_task_trains_two_skills_at_a_time_on_fake_gpus(patrol, on_ray):
    """patrol_beacons' two chains of primitives train side by side; each job gets its own GPU."""
    executor = RayExecutor(
        on_ray.address, instance="test", resources={"embedded": Resources(cpus=0, gpus=1)}, stop_wait_seconds=5,
    )
    session = services.start_session(patrol, TINY, actor="test")
    session = Orchestrator(
        session, actor="test", timings=FAST, executor=executor, slots=SlotPool(2),
        command_builder=fake_builder("--epoch-seconds", "0.1"),
    ).run()

    assert session.status == SessionStatus.COMPLETED, session.error
    runs = {r.skill.name: r for r in session.skill_runs.select_related("skill")}
    assert {r.executor for r in runs.values()} == {"ray"}
    # When each trainer really ran, from its own records: the database's started/finished times are
    # the orchestrator's (a job submitted while Ray still holds both GPUs waits in Ray's queue, and a
    # finish is noticed a poll later), so they overlap where the trainers did not.
    ran = {name: trainer_window(run) for name, run in runs.items()}
    overlap = [(a, b) for a in runs.values() for b in runs.values()
               if a.pk < b.pk and ran[a.skill.name][0] < ran[b.skill.name][1]
               and ran[b.skill.name][0] < ran[a.skill.name][1]]
    assert overlap, "no two skills trained at the same time"
    # Skills whose trainers ran at the same time were given different (fake) GPUs.
    for a, b in overlap:
        devices = [json.loads((Path(r.run_dir) / "launch.json").read_text())["env"]["CUDA_VISIBLE_DEVICES"]
                   for r in (a, b)]
        assert sorted(devices) == ["0", "1"], (a.skill.name, b.skill.name, devices)
    # The dependency rules held: a composite after its sub-skills, a skill after its previous sibling.
    assert runs["patrol_north"].started_at >= runs["reach_blue_beacon"].finished_at
    assert runs["reach_blue_beacon"].started_at >= runs["reach_red_beacon"].finished_at
    assert runs["patrol_beacons"].started_at >= max(runs[n].finished_at for n in ("patrol_north", "patrol_south"))


def test_a_killed_worker_leaves_no_ray_job_running_after_reaping(fetch_block, on_ray, workers, settings):
    """A Ray job outlives its supervisor; the reaper stops it by the id stored before submitting."""
    env = {"GENHRL_EXECUTOR": "ray", "GENHRL_RAY_ADDRESS": on_ray.address, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "disabled", "GENHRL_INSTANCE": leases.ray_executor().instance}
    session = services.start_session(fetch_block, {**TINY, "min_success_states": 1_000_000}, actor="test")
    worker = workers.start("--slots", "1", "--poll-interval", "0.1", fake="--epoch-seconds 0.2", env=env)
    assert wait_for(lambda: SkillRun.objects.filter(session=session, frames__gt=0).exists(), timeout=60), workers.log()
    run = SkillRun.objects.get(session=session, status=SkillStatus.TRAINING)
    executor = leases.ray_executor()
    assert job_status(executor, run.job_id) == "RUNNING"

    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    time.sleep(1.5)
    assert job_status(executor, run.job_id) == "RUNNING"  # the job did not die with its worker
    TrainingSession.objects.filter(pk=session.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    reaped = leases.reap_stale_sessions()

    assert [s.pk for s in reaped] == [session.pk]
    session.refresh_from_db()
    assert session.status == SessionStatus.INTERRUPTED and f"Ray job {run.job_id}" in session.error
    assert wait_for(lambda: job_status(executor, run.job_id) == "STOPPED", timeout=30)


def test_the_sweep_stops_jobs_whose_runs_are_over(fetch_block, on_ray):
    """A job whose run already ended in the database (say it was cancelled while it waited for
    resources, which Ray ignores) is stopped by the next sweep."""
    session = services.start_session(fetch_block, TINY, actor="test")
    runs = Orchestrator(session, actor="test", timings=FAST).plan()
    executor = leases.ray_executor()
    job_id = f"genhrl-{executor.instance}-sweep-{session.pk}"
    executor.client.submit_job(
        entrypoint="sleep 600", submission_id=job_id, entrypoint_num_cpus=0,
        metadata={"genhrl_instance": executor.instance, "genhrl_run": str(runs[0].pk)},
    )
    assert wait_for(lambda: job_status(executor, job_id) == "RUNNING", timeout=30)
    assert leases.sweep_ray_jobs() == []  # its run is still pending: left alone
    runs[0].transition_to(SkillStatus.CANCELLED, actor="test")
    assert leases.sweep_ray_jobs() == [job_id]
    assert wait_for(lambda: job_status(executor, job_id) == "STOPPED", timeout=30)


def test_ray_check_proves_each_node_sees_the_portals_folders(on_ray, tmp_path, settings):
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("ray_check", stdout=out)
    text = out.getvalue()
    assert "node 127.0.0.1" in text and "torch 2." in text and "All 1 node(s) can run" in text
    assert "ok   data folder (run folders)" in text and "(writable)" in text
    settings.GENHRL_ISAACLAB_ROOT = tmp_path / "not-mounted"  # a path the node does not have
    with pytest.raises(CommandError, match="1 node"):
        call_command("ray_check", stdout=io.StringIO())
