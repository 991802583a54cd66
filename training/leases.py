"""Who trains what: claiming queued sessions, heartbeat leases, and reaping what dead workers left.

Any number of workers on any number of hosts share one database. A worker claims a queued session
with a conditional UPDATE (only one writer can win it), holds it by renewing `heartbeat_at`, and
every worker reaps: a session whose heartbeat is older than `lease_duration()` is marked
`interrupted`, after any trainer its dead worker left on this host was ended (a verified process
group, never a name or pattern).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tasks.models import Task
from training import queueing
from training.executor import end_orphan_group
from training.models import IllegalTransition, SessionStatus, SkillStatus, Stage, TrainingSession
from training.ray_executor import RayExecutor, Resources
from training.signals import notify_changed

logger = logging.getLogger(__name__)

# A supervisor renews its sessions' heartbeat every HEARTBEAT_INTERVAL (the engine at least every
# `Timings.flush_interval` while a trainer runs, the worker loop in the gaps); one silent for
# `lease_duration()` is presumed dead. Workers reap every REAP_INTERVAL, so a killed worker's session
# is marked interrupted within lease_duration() + REAP_INTERVAL (40 s; the promise is 60 s).
HEARTBEAT_INTERVAL = 5.0
REAP_INTERVAL = 10.0
DEFAULT_LEASE_SECONDS = 30


def lease_duration() -> timedelta:
    """How long a heartbeat may be silent before its session is reaped (GENHRL_LEASE_SECONDS)."""
    return timedelta(seconds=getattr(settings, "GENHRL_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def worker_identity() -> str:
    """`<host>:<pid>:<random>`: unique per supervising process, and says which host it runs on."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_ray: RayExecutor | None = None


def ray_executor(stop_wait_seconds: int = 40) -> RayExecutor:
    """The Ray executor of this process (GENHRL_RAY_ADDRESS), built once: its client is reused."""
    global _ray
    if _ray is None or (_ray.address, _ray.stop_wait_seconds) != (settings.GENHRL_RAY_ADDRESS, stop_wait_seconds):
        _ray = RayExecutor(
            settings.GENHRL_RAY_ADDRESS, instance=settings.GENHRL_INSTANCE,
            resources={
                "embedded": Resources(cpus=settings.GENHRL_RAY_EMBEDDED_CPUS),
                "isaaclab": Resources(cpus=settings.GENHRL_RAY_ISAACLAB_CPUS, gpus=settings.GENHRL_RAY_ISAACLAB_GPUS),
            },
            stop_wait_seconds=stop_wait_seconds,
        )
    return _ray


def _same_host(worker_id: str) -> bool:
    # A process group is only meaningful on its host.
    return bool(worker_id) and worker_id.rsplit(":", 2)[0] == socket.gethostname()


# -- claiming ---------------------------------------------------------------------------------------
def claim_next_session(worker_id: str | None = None, *, queue: str = "default") -> TrainingSession | None:
    """Claim the next queued session of `queue` for this worker (queued -> running), or None.

    The next one is the first in queue order whose owner is below their limit of running sessions
    (training/queueing.py: staff may reorder; a user at their limit waits while those behind go
    first). Any number of workers, on any number of hosts, may poll at once; each session is
    claimed once. The claim itself is the conditional UPDATE of `transition_to` (WHERE status =
    'queued'), which only one writer can win. On PostgreSQL the candidate row is first locked with
    SELECT ... FOR UPDATE SKIP LOCKED, so concurrent workers take different rows instead of
    queueing behind one lock, and its owner is locked while their running sessions are counted, so
    two workers never both take the last place under a limit; SQLite serializes writers (IMMEDIATE
    transactions, settings.py).
    """
    worker = worker_id or worker_identity()
    queued = TrainingSession.objects.filter(status=SessionStatus.QUEUED, queue=queue)
    owners = set(queued.exclude(owner__isnull=True).values_list("owner_id", flat=True).distinct())
    held = queueing.owners_at_limit(owners)
    candidates = queued.exclude(owner_id__in=held).order_by(*queueing.ORDER)
    skip_locked = connection.features.has_select_for_update_skip_locked
    for _ in range(20):
        with transaction.atomic():
            rows = candidates.select_for_update(skip_locked=True) if skip_locked else candidates
            candidate = rows.first()
            if candidate is None:
                return None
            if not queueing.may_claim(candidate):
                # Another worker just took this owner's last place, or holds an earlier session of
                # theirs: leave this owner to it for now.
                held.add(candidate.owner_id)  # type: ignore[arg-type]
                candidates = candidates.exclude(owner_id=candidate.owner_id)
                continue
            try:
                claim(candidate, worker)
            except IllegalTransition:
                continue  # cancelled between our read and our lock (SQLite: claimed by another)
        queueing.touch_queue(queue)  # everyone behind it moved up
        return candidate
    return None


def claim(session: TrainingSession, worker: str, *, actor: str | None = None, message: str = "") -> None:
    """Take `session` for `worker`: queued -> running with a fresh lease (IllegalTransition if lost)."""
    session.transition_to(
        SessionStatus.RUNNING, actor=actor or f"worker:{worker}", message=message or f"claimed by worker {worker}",
        worker_id=worker, heartbeat_at=timezone.now(),
    )


def renew(session_ids: list[int], worker_id: str) -> int:
    """Renew the lease of these sessions if this worker still holds them; returns how many.

    `updated_at` is left alone: a lease is not progress, and the SSE relay keys on it.
    """
    if not session_ids:
        return 0
    return TrainingSession.objects.filter(
        pk__in=session_ids, worker_id=worker_id, status__in=[SessionStatus.RUNNING, SessionStatus.CANCELLING],
    ).update(heartbeat_at=timezone.now())


# -- reaping ----------------------------------------------------------------------------------------
def end_orphan_trainers(session: TrainingSession) -> list[str]:
    """End the trainers a dead supervisor left behind; returns what was ended ("process group N",
    "Ray job ID").

    Only groups recorded on the session's training runs, on this host, and verified in /proc to
    still be that run's trainer (a member's argv holds the run's own spec.json path), so a reused
    pid is never signalled. Trainers of the local executor normally die with their supervisor
    (PR_SET_PDEATHSIG); this covers what that misses (grandchildren, non-Linux, a race at launch).
    """
    training = session.skill_runs.filter(status=SkillStatus.TRAINING)
    ended = []
    jobs = list(training.filter(executor="ray").exclude(job_id="").values_list("job_id", flat=True))
    if jobs:
        # A Ray job outlives its supervisor: stop it by the id stored before it was submitted.
        for job_id in jobs:
            if ray_executor().stop(job_id):
                ended.append(f"Ray job {job_id}")
                logger.warning("session %s: stopped Ray job %s of its dead worker", session.pk, job_id)
    if not _same_host(session.worker_id):
        return ended
    for run in training.filter(pid__isnull=False).exclude(run_dir=""):
        marker = str(Path(run.run_dir) / "spec.json")
        if end_orphan_group(int(run.pid), marker):  # type: ignore[arg-type]
            ended.append(f"process group {run.pid}")
            logger.warning("session %s: ended orphaned trainer process group %s", session.pk, run.pid)
    return ended


def sweep_ray_jobs() -> list[str]:
    """Stop this portal's Ray jobs whose runs are over (their worker died, or they were cancelled
    while waiting for resources); every worker with the Ray executor runs it now and then."""
    from training.models import SkillRun

    def run_is_over(metadata: dict[str, str]) -> bool:
        run_id = metadata.get("genhrl_run")
        if not run_id or not run_id.isdigit():
            return False
        status = SkillRun.objects.filter(pk=int(run_id)).values_list("status", flat=True).first()
        return status is None or status not in SkillStatus.active()

    from training.ray_executor import sweep

    return sweep(ray_executor(), run_is_over)


def stale_sessions(stale_for: timedelta | None = None) -> list[int]:
    """Ids of running or cancelling sessions whose heartbeat is older than `stale_for` (read-only)."""
    cutoff = timezone.now() - (stale_for if stale_for is not None else lease_duration())
    return list(
        TrainingSession.objects.filter(
            status__in=[SessionStatus.RUNNING, SessionStatus.CANCELLING], heartbeat_at__lt=cutoff
        ).order_by("pk").values_list("pk", flat=True)
    )


def reap_stale_sessions(*, task: Task | None = None, stale_after: timedelta | None = None) -> list[TrainingSession]:
    """Mark running sessions whose supervisor stopped heartbeating as `interrupted`, with the reason.

    A trainer the dead supervisor left on this host is ended first (verified process group).
    Their training skill runs fail and their pending ones are cancelled; completed skills keep
    their results, so `services.resume_session` (or a new start with skip-complete) continues from
    them. Every worker calls this every REAP_INTERVAL; starts call it for their task.
    """
    cutoff = timezone.now() - (stale_after if stale_after is not None else lease_duration())
    stale = TrainingSession.objects.filter(
        status__in=[SessionStatus.RUNNING, SessionStatus.CANCELLING], heartbeat_at__lt=cutoff
    )
    if task is not None:
        stale = stale.filter(task=task)
    reaped = []
    for session in stale:
        if _interrupt(session):
            reaped.append(session)
            notify_changed(session.pk)
    return reaped


def _interrupt(session: TrainingSession) -> bool:
    message = (
        f"lease lost: no heartbeat from worker {session.worker_id or '?'} since "
        f"{session.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (worker killed or host lost)"
    )
    try:
        ended = end_orphan_trainers(session)
    except OSError:
        logger.exception("session %s: cannot check for orphaned trainers", session.pk)
        ended = []
    if ended:
        message += f"; ended what its trainers left: {', '.join(ended)}"
    try:
        with transaction.atomic():
            session.transition_to(
                SessionStatus.INTERRUPTED, actor="system", message=message, error=f"interrupted: {message}",
            )
            for run in session.skill_runs.filter(status__in=SkillStatus.active()):
                failed = run.status == SkillStatus.TRAINING
                run.transition_to(
                    SkillStatus.FAILED if failed else SkillStatus.CANCELLED, actor="system",
                    message="session interrupted", stop_reason="interrupted",
                    error="interrupted: the supervising worker stopped" if failed else "",
                )
            session.set_stage(Stage.COMPLETE, actor="system")
    except IllegalTransition:
        return False
    return True
