"""Resource monitoring: what each worker's heartbeat reports, kept with a bounded history, and the
reads of the Workers page and a session's resource curves.

The engine samples (`training/hoststats.py` through `engine/reporting.py`) and calls
`record_heartbeat` once per heartbeat; this module only stores and reads. History is bounded: a
worker keeps its last GENHRL_MONITOR_HISTORY host samples, a trainer at most MAX_RUN_SAMPLES
(older ones are thinned to every other one), and workers gone for a day are forgotten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from training import leases
from training.hoststats import HostFigures, ProcessFigures
from training.lab_models import ResourceSample, WorkerSample, WorkerStatus
from training.models import SkillRun, TrainingSession

logger = logging.getLogger(__name__)

MAX_RUN_SAMPLES = 2000  # ~2.8 h at one sample per 5 s before thinning starts
FORGET_AFTER = timedelta(days=1)
CURVE_POINTS = 240
SPARK_POINTS = 60


@dataclass(frozen=True)
class TrainerReport:
    """One running trainer at a heartbeat: its run, and its figures (None: not measurable here,
    e.g. a Ray job on another node)."""

    run_id: int
    session_id: int
    skill: str
    elapsed: float
    figures: ProcessFigures | None


def history_limit() -> int:
    return int(getattr(settings, "GENHRL_MONITOR_HISTORY", 720))


def record_heartbeat(
    *,
    worker_id: str,
    host: HostFigures,
    queue: str,
    slots: int,
    busy_slots: int,
    embedded: bool,
    pid: int,
    started_at: datetime,
    sessions: list[dict[str, Any]],
    trainers: list[TrainerReport],
) -> WorkerStatus:
    """Store one heartbeat of a worker: its current figures, a history sample, each trainer's sample."""
    now = timezone.now()
    by_session: dict[int, list[dict[str, Any]]] = {}
    for report in trainers:
        figures = report.figures
        by_session.setdefault(report.session_id, []).append({
            "run": report.run_id, "skill": report.skill, "elapsed": round(report.elapsed, 1),
            "cpu_percent": round(figures.cpu_percent, 1) if figures else None,
            "rss": figures.rss if figures else None,
            "gpu_memory": figures.gpu_memory if figures else None,
        })
    described = [{**entry, "skills": by_session.get(entry["session"], [])} for entry in sessions]
    gpus = [gpu.to_json() for gpu in host.gpus]
    with transaction.atomic():
        status, _ = WorkerStatus.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "hostname": host.hostname, "pid": pid, "queue": queue, "embedded": embedded, "slots": slots,
                "busy_slots": busy_slots, "started_at": started_at, "heartbeat_at": now, "stopped_at": None,
                "cpu_count": host.cpu_count, "cpu_percent": round(host.cpu_percent, 1), "load_1": host.load_1,
                "memory_total": host.memory_total, "memory_used": host.memory_used, "gpus": gpus,
                "gpu_note": host.gpu_note[:300], "sessions": described,
            },
        )
        sample = WorkerSample.objects.create(
            worker=status, time=now, cpu_percent=round(host.cpu_percent, 1), memory_used=host.memory_used,
            gpus=[{"index": g["index"], "utilization": g["utilization"], "memory_used": g["memory_used"],
                   "temperature": g["temperature"]} for g in gpus],
        )
        rows = [
            ResourceSample(
                skill_run_id=report.run_id, time=now, elapsed=round(report.elapsed, 1),
                cpu_percent=round(report.figures.cpu_percent, 1), rss=report.figures.rss,
                gpu_memory=report.figures.gpu_memory, processes=report.figures.processes,
            )
            for report in trainers if report.figures is not None
        ]
        if rows:
            ResourceSample.objects.bulk_create(rows)
    _bound(status, sample.pk, [r.run_id for r in trainers if r.figures is not None])
    return status


def _bound(status: WorkerStatus, sample_pk: int, runs: list[int]) -> None:
    """Keep the history bounded; checked now and then, not on every heartbeat."""
    if sample_pk % 20 == 0:
        keep = history_limit()
        cutoff = WorkerSample.objects.filter(worker=status).order_by("-time", "-pk").values_list("pk", flat=True)[keep:keep + 1]
        oldest_kept = list(cutoff)
        if oldest_kept:
            WorkerSample.objects.filter(worker=status, pk__lte=oldest_kept[0]).delete()
        WorkerStatus.objects.filter(heartbeat_at__lt=timezone.now() - FORGET_AFTER).delete()
    if sample_pk % 50 == 0:
        for run_id in runs:
            samples = ResourceSample.objects.filter(skill_run_id=run_id)
            if samples.count() > MAX_RUN_SAMPLES:
                # Thin the whole history to every other sample: the curve keeps its shape.
                odd = (
                    samples.annotate(row=Window(RowNumber(), order_by=[F("time").asc(), F("pk").asc()]))
                    .values_list("pk", "row")
                )
                ResourceSample.objects.filter(pk__in=[pk for pk, row in odd if row % 2 == 0]).delete()


def worker_stopped(worker_id: str) -> None:
    """A worker stopped cleanly: it says so instead of going stale."""
    WorkerStatus.objects.filter(worker_id=worker_id).update(stopped_at=timezone.now(), sessions=[], busy_slots=0)


# -- reads ------------------------------------------------------------------------------------------
def is_alive(status: WorkerStatus, now: datetime | None = None) -> bool:
    """Heartbeating within its lease, and not stopped."""
    now = now or timezone.now()
    return status.stopped_at is None and status.heartbeat_at >= now - leases.lease_duration()


def workers() -> list[dict[str, Any]]:
    """Every worker seen in the last day, alive first: figures, its GPUs, what it trains, a
    sparkline of its recent CPU and memory."""
    now = timezone.now()
    rows = list(WorkerStatus.objects.filter(heartbeat_at__gte=now - FORGET_AFTER).order_by("hostname", "worker_id"))
    session_ids = {entry["session"] for row in rows for entry in row.sessions if isinstance(entry, dict)}
    sessions = TrainingSession.objects.select_related("task", "owner").in_bulk(session_ids)
    found = []
    for row in rows:
        history = list(
            WorkerSample.objects.filter(worker=row).order_by("-time", "-pk").values_list("cpu_percent", "memory_used")[:SPARK_POINTS]
        )[::-1]
        found.append({
            "worker": row,
            "alive": is_alive(row, now),
            "memory_percent": 100.0 * row.memory_used / row.memory_total if row.memory_total else 0.0,
            "gpus": [{**gpu, "memory_percent": 100.0 * gpu["memory_used"] / gpu["memory_total"]
                      if gpu.get("memory_total") else 0.0} for gpu in row.gpus],
            "sessions": [
                {**entry, "object": sessions.get(entry["session"])} for entry in row.sessions if isinstance(entry, dict)
            ],
            "cpu_history": [(i, cpu) for i, (cpu, _) in enumerate(history)],
            "memory_history": [(i, used / 2**30) for i, (_, used) in enumerate(history)],
        })
    found.sort(key=lambda w: (not w["alive"], w["worker"].hostname, w["worker"].worker_id))
    return found


def run_resources(run: SkillRun, limit: int = CURVE_POINTS) -> dict[str, list[tuple[float, float]]]:
    """A trainer's resource curves by seconds since it started: CPU (%), memory (GiB), GPU memory
    (GiB, when measured); at most `limit` points each, evenly thinned, the last one kept."""
    rows = list(ResourceSample.objects.filter(skill_run=run).order_by("time", "pk").values_list(
        "elapsed", "cpu_percent", "rss", "gpu_memory"))
    if len(rows) > limit:
        stride = -(-len(rows) // limit)
        rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    curves: dict[str, list[tuple[float, float]]] = {
        "cpu": [(e, cpu) for e, cpu, _, _ in rows],
        "memory": [(e, rss / 2**30) for e, _, rss, _ in rows],
        "gpu_memory": [(e, gpu / 2**30) for e, _, _, gpu in rows if gpu is not None],
    }
    return curves


def session_resources(session: TrainingSession) -> list[dict[str, Any]]:
    """Each trainer of the session that was measured, in training order, with its curves and peaks."""
    runs = SkillRun.objects.filter(session=session, resource_samples__isnull=False).distinct()
    found = []
    for run in runs.select_related("skill").order_by("order"):
        curves = run_resources(run)
        found.append({
            "run": run,
            "curves": curves,
            "peak_cpu": max((v for _, v in curves["cpu"]), default=None),
            "peak_memory": max((v for _, v in curves["memory"]), default=None),
            "peak_gpu_memory": max((v for _, v in curves["gpu_memory"]), default=None),
        })
    return found
