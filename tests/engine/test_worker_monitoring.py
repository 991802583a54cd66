"""A worker's heartbeat carries its host's figures (CPU, memory, GPUs or why there are none) and
each running trainer's (CPU, memory, GPU memory), with a bounded history."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import FAST, fake_builder, wait_for
from training import monitoring
from training.engine.worker import Worker
from training.hoststats import Gpus, Sampler
from training.lab_models import ResourceSample, WorkerSample, WorkerStatus
from training.models import SessionStatus, TrainingSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


class NoDriver:
    """nvidia-ml-py installed on a host without an NVIDIA driver: nvmlInit fails."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self) -> None:
        raise self.NVMLError("NVML Shared Library Not Found")


def make_worker(**changes) -> Worker:
    worker = Worker(slots=1, worker_id="monitored", poll_interval=0.05, heartbeat_interval=0.2,
                    orchestrator_options={"command_builder": fake_builder("--states-per-epoch", "0"), "timings": FAST},
                    **changes)
    worker.reporter._sampler = Sampler(Gpus(NoDriver()))
    return worker


def test_a_heartbeat_carries_host_figures_and_each_trainers(fetch_block, queue, client, staff_user):
    session = queue(fetch_block)  # never reaches its target: it trains until stopped
    worker = make_worker()
    worker.start()
    try:
        assert wait_for(lambda: ResourceSample.objects.filter(skill_run__session=session).count() >= 3, 60, 0.1)
        status = WorkerStatus.objects.get(worker_id="monitored")
        assert status.hostname and status.cpu_count >= 1
        assert 0 < status.memory_used < status.memory_total
        assert 0 <= status.cpu_percent <= 100
        assert status.slots == 1 and status.busy_slots == 1
        assert status.gpus == [] and "no NVIDIA driver" in status.gpu_note  # degrades, never fails
        (entry,) = status.sessions
        assert entry["session"] == session.pk and entry["task"] == "fetch_block"
        (skill,) = entry["skills"]
        assert skill["skill"] == "go_to_block" and skill["rss"] > 1_000_000
        assert WorkerSample.objects.filter(worker=status).count() >= 3
        sample = ResourceSample.objects.filter(skill_run__session=session).last()
        assert sample.rss > 1_000_000 and sample.cpu_percent >= 0 and sample.gpu_memory is None

        # The Workers page and the session's resource curves show them.
        client.force_login(staff_user)
        page = client.get(reverse("training:workers")).content.decode()
        assert 'data-worker="monitored"' in page and "no NVIDIA driver" in page
        assert f'href="/training/sessions/{session.pk}/"' in page
        lab = client.get(reverse("training:session_lab", args=[session.pk])).content.decode()
        assert "Trainer resources" in lab and "go_to_block" in lab and "peak memory" in lab
        api = client.get("/api/workers").json()
        assert api[0]["worker_id"] == "monitored" and api[0]["alive"] is True
    finally:
        worker.stop(grace=5)
    status = WorkerStatus.objects.get(worker_id="monitored")
    assert status.stopped_at is not None and not monitoring.is_alive(status)
    assert TrainingSession.objects.get(pk=session.pk).status == SessionStatus.INTERRUPTED


def test_history_is_bounded(settings):
    settings.GENHRL_MONITOR_HISTORY = 10
    worker = make_worker()
    for _ in range(45):
        worker.reporter.report()
    assert WorkerSample.objects.filter(worker__worker_id="monitored").count() <= 10 + 20
