"""The `ray` executor: each skill run is one Ray job on a Ray cluster (Ray Jobs, `ray[default]`).

The same trainer, spec and JSON records as the local executor; only where the process runs
changes. Measured facts behind every choice are in shared/reference/ray-jobs.md:

- Entrypoint `cd <cwd> && exec <argv>` (without `working_dir`, a job runs where the head was
  started; exec makes the trainer the job's process). The run folders, the trainer code and the
  Isaac Lab root must be mounted at the same paths on every node (`manage.py ray_check`).
- A deterministic submission id per skill run, stored in the database before submitting and never
  reused (Ray refuses an existing id, and reusing a deleted one leaks a supervisor); metadata
  names the portal instance, session and run, so a sweep can find this portal's jobs.
- `env_vars` carry only what the launch line added (PYTHONPATH, thread counts, Isaac Lab's
  variables): Ray stores them in the job info, readable by anyone who can read the job. The
  launch line never holds a secret anyway.
- Progress: `tail_job_logs` (a WebSocket), lines reassembled across chunks, Ray's own two lines
  skipped, and after a reconnect the bytes already read are skipped (Ray replays from byte 0).
  Latency is about a second by Ray's design (its tailer sleeps 1 s at end of file), against
  ~30 ms for a local trainer.
- Stop: every job is submitted with `RAY_JOB_STOP_SIGNAL=SIGINT` and `RAY_JOB_STOP_WAIT_TIME_S`,
  so `stop_job` is the trainer's graceful stop (final checkpoint, success states flushed); Ray
  sends SIGKILL itself after the wait. There is no SIGTERM step through the API and a second
  `stop_job` does nothing, so the supervisor's SIGTERM and SIGKILL steps are notes here.
- A job still pending for resources ignores `stop_job` until it starts (ray-project/ray#58353):
  its run is ended at once as far as the portal is concerned, and the sweep stops the job later.

No Django here (layer 1): the engine passes in everything it needs. `ray` is imported only when a
job is submitted, so installing it is optional (requirements-ray.txt).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from training.executor import (
    MAX_LINE_BYTES,
    LaunchCommand,
    LaunchContext,
    Output,
    RecordParser,
    _Collector,
    _split_long,
    parse_record,
)

# Seconds between status requests while a job runs (each is an HTTP call to the head).
STATUS_EVERY = 1.0
TAIL_RETRY_SECONDS = 1.0
REQUEST_TIMEOUT = 10.0  # no call to the head may block the supervisor longer than this
# After Ray says a job ended, how long its log may take to arrive (its tailer lags ~1-2 s).
TAIL_GRACE = 10.0
# After a stop, how long past Ray's own SIGKILL to wait for a final status before giving up on it.
STOP_MARGIN = 30.0
LOST = "LOST"  # the head does not know the job (restarted, or the job was deleted)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED", "LOST")
ACTIVE = ("PENDING", "RUNNING")
# Ray's own lines at the top of a job's log: "<date> INFO job_manager.py:NNN -- Runtime env ..." and
# "Running entrypoint for job <id>: <entrypoint>".
_RAY_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+\w+ job_manager\.py:\d+ -- |^Running entrypoint for job ")


def submission_id(instance: str, session_id: int, run_id: int) -> str:
    """The job id of a skill run: unique per portal instance, session and run, never reused."""
    return f"genhrl-{instance}-s{int(session_id)}-r{int(run_id)}"


def client(address: str) -> Any:
    """A JobSubmissionClient whose requests time out (Ray's own never do)."""
    from ray.job_submission import JobSubmissionClient

    class TimedClient(JobSubmissionClient):  # type: ignore[misc, valid-type]
        def _do_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", REQUEST_TIMEOUT)
            return super()._do_request(*args, **kwargs)

    return TimedClient(address)


@dataclass(frozen=True)
class Resources:
    """What one trainer asks of the cluster (`entrypoint_num_cpus`/`_gpus`)."""

    cpus: float = 1.0
    gpus: float = 0.0


class RayExecutor:
    """Runs each trainer as a Ray job on the cluster whose dashboard is at `address`."""

    name = "ray"

    def __init__(
        self, address: str, *, instance: str, resources: Mapping[str, Resources], stop_wait_seconds: int = 40,
        job_client: Any = None,
    ) -> None:
        self.address = address
        self.instance = instance
        self.resources = dict(resources)
        self.stop_wait_seconds = max(1, int(stop_wait_seconds))
        self._client = job_client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = client(self.address)  # ~0.6 s the first time, then reused
            return self._client

    def launch(
        self, command: LaunchCommand, log_path: Path | None, parse: RecordParser = parse_record,
        wake: threading.Event | None = None, context: LaunchContext | None = None,
    ) -> RayTrainerJob:
        if context is None or not context.job_id:
            raise ValueError("a Ray job needs its submission id (LaunchContext.job_id)")
        metadata = {"genhrl_instance": self.instance, **context.metadata}
        job = RayTrainerJob(
            self, command, log_path, parse, wake, job_id=context.job_id,
            resources=self.resources.get(context.backend, Resources()), metadata=metadata,
        )
        job.start()
        return job

    def stop(self, job_id: str) -> bool:
        """Ask the job to stop (graceful per its own stop signal); False if Ray does not know it."""
        try:
            return bool(self.client.stop_job(job_id))
        except Exception:
            return False

    def status(self, job_id: str) -> str | None:
        """The job's status, LOST if the head does not know it, None if the head did not answer."""
        try:
            return str(self.client.get_job_status(job_id))
        except Exception as exc:
            return LOST if "status code 404" in str(exc) else None

    def our_jobs(self) -> list[tuple[str, str, dict[str, str]]]:
        """(submission id, status, metadata) of this portal instance's jobs that are not over."""
        jobs = []
        for info in self.client.list_jobs():
            metadata = dict(info.metadata or {})
            if metadata.get("genhrl_instance") == self.instance and str(info.status) in ACTIVE:
                jobs.append((str(info.submission_id), str(info.status), metadata))
        return jobs


def job_env(command: LaunchCommand, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the launch line set or changed: what the job needs beyond the node's own."""
    base = os.environ if base is None else base
    return {name: value for name, value in command.env.items() if base.get(name) != value}


def entrypoint(command: LaunchCommand) -> str:
    """`cd <cwd> && exec <argv>`, each part quoted for the shell Ray runs it with."""
    return f"cd {shlex.quote(str(command.cwd))} && exec {shlex.join(str(part) for part in command.argv)}"


class _LineJoiner:
    """Reassembles the log's lines across chunks and drops Ray's own lines at its top."""

    def __init__(self, collector: _Collector) -> None:
        self.collector = collector
        self.pending = b""
        self.consumed = 0  # bytes taken in so far: a re-tail replays from 0 and skips these
        self.seen_output = False

    def feed(self, data: bytes) -> None:
        self.consumed += len(data)
        buffer = self.pending + data
        end = buffer.rfind(b"\n")
        complete, self.pending = (buffer[: end + 1], buffer[end + 1 :]) if end >= 0 else (b"", buffer)
        lines = complete.split(b"\n")[:-1] if complete else []
        if len(self.pending) >= MAX_LINE_BYTES:
            # A line that never ends (a `\r` progress bar: Ray merges stderr in) is passed on in pieces.
            cut = len(self.pending) - len(self.pending) % MAX_LINE_BYTES
            lines.append(self.pending[:cut])
            self.pending = self.pending[cut:]
        if lines:
            self._emit(lines)

    def flush(self) -> None:
        if self.pending:
            self._emit([self.pending])
            self.pending = b""

    def _emit(self, lines: list[bytes]) -> None:
        if not self.seen_output:
            while lines and _RAY_LINE.match(lines[0]):
                lines = lines[1:]
            if lines:
                self.seen_output = True
        lines = _split_long(lines)
        if lines:
            self.collector.feed_block("stdout", b"\n".join(lines) + b"\n", lines)


class RayTrainerJob:
    """One trainer running as a Ray job, with the interface of `executor.TrainerProcess`."""

    pid = None
    pgid = None

    def __init__(
        self, executor: RayExecutor, command: LaunchCommand, log_path: Path | None, parse: RecordParser,
        wake: threading.Event | None, *, job_id: str, resources: Resources, metadata: dict[str, str],
    ) -> None:
        self.executor = executor
        self.command = command
        self.log_path = log_path
        self.job_id = job_id
        self.resources = resources
        self.metadata = metadata
        self._log: IO[bytes] | None = None
        self._collector: _Collector | None = None
        self._parse = parse
        self._wake = wake
        self._tail: threading.Thread | None = None
        self._tail_done = threading.Event()
        self._closing = threading.Event()
        self._status = "PENDING"
        self._returncode: int | None = None
        self._last_status_at = 0.0
        self._stop_asked = False
        self._stop_asked_at = 0.0
        self._ended_while_pending = False
        self._terminal_seen_at: float | None = None
        self.started_monotonic = 0.0
        # When it began to run (None while it waits for resources): the stall and time-limit
        # clocks start here, not at submission.
        self.running_since: float | None = None

    @property
    def describe(self) -> str:
        return f"Ray job {self.job_id}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.log_path is not None:
            self._log = open(self.log_path, "ab", buffering=1024 * 1024)  # closed in close()
        self._collector = _Collector(self._log, self._parse, self._wake)
        env = job_env(self.command)
        # The graceful stop: SIGINT, then Ray's own SIGKILL after the wait (ray-jobs.md, Stopping).
        env["RAY_JOB_STOP_SIGNAL"] = "SIGINT"
        env["RAY_JOB_STOP_WAIT_TIME_S"] = str(self.executor.stop_wait_seconds)
        kwargs: dict[str, Any] = {"entrypoint_num_cpus": self.resources.cpus}
        if self.resources.gpus:
            kwargs["entrypoint_num_gpus"] = self.resources.gpus
        try:
            self.executor.client.submit_job(
                entrypoint=entrypoint(self.command), submission_id=self.job_id,
                runtime_env={"env_vars": env}, metadata=self.metadata, **kwargs,
            )
        except BaseException:
            self.close(reader_timeout=0)
            raise
        self.started_monotonic = time.monotonic()
        self._collector.note(f"submitted as Ray job {self.job_id} to {self.executor.address}")
        self._tail = threading.Thread(target=self._run_tail, name=f"ray-tail-{self.job_id}", daemon=True)
        self._tail.start()

    def _run_tail(self) -> None:
        collector = self._collector
        assert collector is not None
        joiner = _LineJoiner(collector)
        try:
            while not self._closing.is_set():
                try:
                    asyncio.run(self._tail_once(joiner))
                    dropped = False  # closed by Ray: the job ended and its log was all sent
                except Exception:
                    dropped = True  # the WebSocket dropped: re-tail, skipping what was read
                if self._terminal_status() is not None:
                    if dropped and self._status != LOST:
                        with contextlib.suppress(Exception):  # what came after the drop
                            asyncio.run(self._tail_once(joiner))
                    break
                self._closing.wait(TAIL_RETRY_SECONDS)
            joiner.flush()
        finally:
            self._tail_done.set()
            collector.signal_news()

    async def _tail_once(self, joiner: _LineJoiner) -> None:
        skip = joiner.consumed
        async for chunk in self.executor.client.tail_job_logs(self.job_id):
            data = chunk.encode("utf-8", "surrogateescape") if isinstance(chunk, str) else bytes(chunk)
            if skip:
                taken = min(skip, len(data))
                skip -= taken
                data = data[taken:]
            if data:
                if self.running_since is None:
                    self.running_since = time.monotonic()
                joiner.feed(data)
            if self._closing.is_set():
                return

    def _terminal_status(self) -> str | None:
        status = self.executor.status(self.job_id)
        if status is not None:
            self._status = status
            if status == "RUNNING" and self.running_since is None:
                self.running_since = time.monotonic()
        return self._status if self._status in TERMINAL else None

    def poll(self) -> int | None:
        """The job's exit code once it ended and its log is in, else None.

        Ray may say a job ended a second or two before its last lines (the `done` record, the end
        of a traceback) reach the tail: those decide the outcome, so they are waited for.
        """
        if self._returncode is not None:
            return self._returncode
        if self._ended_while_pending:
            self._returncode = 0
            return self._returncode
        now = time.monotonic()
        if self._terminal_seen_at is None:
            if not self._tail_done.is_set() and now - self._last_status_at < STATUS_EVERY:
                return self._give_up_after_stop(now)
            self._last_status_at = now
            if self._terminal_status() is None:
                return self._give_up_after_stop(now)
            self._terminal_seen_at = now
        if not self._tail_done.is_set() and now - self._terminal_seen_at < TAIL_GRACE:
            return None
        self._returncode = self._exit_code()
        return self._returncode

    def _exit_code(self) -> int:
        if self._status == LOST:
            self.note(f"the Ray head does not know job {self.job_id} any more (restarted?): its end is unknown")
            return 1  # not -1: a negative code is a death by that signal (outcomes names it: SIGHUP)
        details: Any = None
        with contextlib.suppress(Exception):
            details = self.executor.client.get_job_info(self.job_id)
        code = getattr(details, "driver_exit_code", None)
        if self._status == "FAILED" and getattr(details, "message", None):
            self.note(f"Ray: job {self.job_id} failed: {details.message}")
        if code is None:
            code = 0 if self._status in ("SUCCEEDED", "STOPPED") else 1
        return int(code)

    def _give_up_after_stop(self, now: float) -> None:
        """A stopped job Ray never reports as ended (its head hangs): stop waiting for it."""
        if self._stop_asked and now - self._stop_asked_at > self.executor.stop_wait_seconds + STOP_MARGIN:
            self.note(f"no final status for {self.job_id} from Ray after its stop; the sweep stops it if it runs")
            self._returncode = -9
            return None
        return None

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def drain(self) -> Output:
        assert self._collector is not None
        return self._collector.drain()

    def note(self, text: str) -> None:
        assert self._collector is not None
        self._collector.note(text)

    @property
    def traceback(self) -> list[str]:
        return [] if self._collector is None else list(self._collector.traceback)

    @property
    def oom(self) -> bool:
        return self._collector is not None and self._collector.oom

    @property
    def host_oom(self) -> bool:
        """It said it ran out of host memory (MemoryError, Ray's memory monitor killing it)."""
        return self._collector is not None and self._collector.host_oom

    @property
    def gpu_buffer_warning(self) -> bool:
        return self._collector is not None and self._collector.gpu_buffer_warning

    @property
    def line_total(self) -> int:
        return 0 if self._collector is None else self._collector.line_total

    # -- stopping ---------------------------------------------------------------------------------
    def signal_group(self, sig: int) -> bool:
        """The supervisor's stop steps, as far as Ray Jobs allows them."""
        if sig == signal.SIGCONT:
            return True  # a Ray job cannot be stopped with SIGSTOP from here: nothing to resume
        if not self._stop_asked:
            self._stop_asked = True
            self._stop_asked_at = time.monotonic()
            status = self.executor.status(self.job_id) or self._status  # Ray first, the cache if it is silent
            if status == "PENDING":
                # Ray would start it later and only then stop it: the run ends now for the portal,
                # and the sweep stops the job (ray-project/ray#58353).
                self._ended_while_pending = True
                self.note(f"{self.job_id} was still waiting for resources: ended here; the sweep stops it")
            self.executor.stop(self.job_id)
            return True
        if sig in (signal.SIGTERM, signal.SIGKILL):
            self.note(
                f"Ray sends SIGKILL itself {self.executor.stop_wait_seconds} s after the stop signal; "
                "no further signal can be sent through Ray Jobs"
            )
        return True

    def reap_group(self, grace: float = 2.0) -> None:
        """Ray ends the job's process tree itself."""

    def kill_now(self) -> None:
        self.executor.stop(self.job_id)

    def close(self, reader_timeout: float = 5.0) -> None:
        # Let the tail finish on its own first (the last lines decide the outcome), then cut it.
        self._tail_done.wait(reader_timeout)
        self._closing.set()
        if self._tail is not None:
            self._tail.join(timeout=1.0)
        if self._collector is not None:
            self._collector.finish_tracebacks()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def stop_jobs(executor: RayExecutor, job_ids: Iterable[str]) -> list[str]:
    """Stop these jobs (a dead worker's); returns the ones Ray knew and stopped."""
    return [job_id for job_id in job_ids if executor.stop(job_id)]


def sweep(executor: RayExecutor, run_is_over: Callable[[dict[str, str]], bool]) -> list[str]:
    """Stop this instance's jobs whose runs are already over (a crash, a cancel while pending)."""
    stopped = []
    for job_id, _status, metadata in executor.our_jobs():
        if run_is_over(metadata) and executor.stop(job_id):
            stopped.append(job_id)
    return stopped
