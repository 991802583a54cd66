"""A worker's heartbeat report: its host's figures and each of its trainers', stored through
`training.monitoring` for the Workers page and the sessions' resource curves.

Sampling costs a few milliseconds (psutil over /proc, one NVML call per GPU) and runs in the worker
loop at its heartbeat, never in a supervisor's: a failure is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from django.utils import timezone

from training import monitoring
from training.hoststats import Sampler

if TYPE_CHECKING:
    from training.engine.worker import Worker

logger = logging.getLogger(__name__)


class WorkerReporter:
    """Samples the host and the worker's trainers at each heartbeat and records them."""

    def __init__(self, worker: Worker, *, embedded: bool = False, sampler: Sampler | None = None) -> None:
        self.worker = worker
        self.embedded = embedded
        self._sampler = sampler
        self.started_at = timezone.now()
        self.failures = 0

    @property
    def sampler(self) -> Sampler:
        if self._sampler is None:
            self._sampler = Sampler()  # lazily: NVML is only initialised by a worker that reports
        return self._sampler

    def report(self) -> bool:
        """Record one heartbeat's figures; False (logged) if it could not."""
        try:
            self._report()
        except Exception:
            self.failures += 1
            logger.warning("worker %s: cannot record its figures", self.worker.worker_id, exc_info=True)
            return False
        return True

    def _report(self) -> None:
        worker = self.worker
        sampler = self.sampler
        host = sampler.host()
        sessions = []
        trainers = []
        with worker._lock:
            running = list(worker.running.values())
        for slot in running:
            session = slot.orchestrator.session
            sessions.append({
                "session": session.pk, "task": session.task.name,
                "owner": session.owner.get_username() if session.owner_id and session.owner else None,
            })
            for skill in slot.orchestrator.training():
                trainers.append(monitoring.TrainerReport(
                    run_id=skill.run.pk, session_id=session.pk, skill=skill.run.skill.name, elapsed=skill.elapsed,
                    figures=sampler.group(skill.pgid),
                ))
        sampler.forget([])
        monitoring.record_heartbeat(
            worker_id=worker.worker_id, host=host, queue=worker.queue, slots=worker.slots,
            busy_slots=worker.slots - worker.pool.free, embedded=self.embedded, pid=os.getpid(),
            started_at=self.started_at, sessions=sessions, trainers=trainers,
        )

    def stopped(self) -> None:
        try:
            monitoring.worker_stopped(self.worker.worker_id)
        except Exception:
            logger.warning("worker %s: cannot record that it stopped", self.worker.worker_id, exc_info=True)
