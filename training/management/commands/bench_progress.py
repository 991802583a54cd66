"""`manage.py bench_progress`: how late live progress reaches viewers, at 1, 100 and 1,000 of them.

Latency is measured end to end as a viewer sees it: from `source_time` (the wall-clock time a
progress record was made, as the trainer stamps it) to the moment an SSE client on 127.0.0.1
receives the first snapshot that includes it. The setup is the product's own, cross-process:

- a real daphne (`genhrl_site.asgi`) on a free loopback port, its embedded worker off;
- a separate producer process that writes progress rows the way the supervisor's flush does
  (skill run numbers, then the session's `source_time`/`updated_at`/heartbeat, in one
  transaction), at `--rate` per second; it never talks to daphne, so every update reaches the
  viewers through the database and daphne's relay;
- N raw-socket SSE clients in this process (asyncio, token auth), all on one session.

Everything runs against a throwaway SQLite database in a temporary folder unless
`--database-url` names another (it is migrated and filled with a bench user, task and session).
Each level is bounded: at most `--level-timeout` seconds, then it is cut and reported as such.
Results go to `bench-results/progress.json` and are printed. Not a test: the numbers depend on
the machine (viewers, daphne and producer share its cores).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

BENCH_TASK = "bench_progress_task"
BENCH_ROBOT = "Bench"
BENCH_SKILLS = ["reach_a", "reach_b", "reach_c", "reach_d", "carry_ab", "deliver"]
CONNECT_CONCURRENCY = 100  # connection attempts in flight; daphne accepts a few dozen per second
TARGET = {"viewers": 100, "p50_ms": 50.0, "p99_ms": 250.0}


@dataclass
class Viewer:
    """One SSE client: when it got which snapshot (raw JSON, parsed after the level)."""

    received: list[tuple[float, str]] = field(default_factory=list)
    connected_at: float | None = None
    error: str = ""


class Command(BaseCommand):
    help = "Measure live progress latency (source_time -> SSE client) at 1, 100 and 1,000 viewers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--viewers", default="1,100,1000", help="comma-separated levels (default 1,100,1000)")
        parser.add_argument("--updates", type=int, default=25, help="progress updates per level (default 25)")
        parser.add_argument("--rate", type=float, default=4.0, help="updates per second (default 4)")
        parser.add_argument("--level-timeout", type=float, default=90.0, help="hard limit per level, s (default 90)")
        parser.add_argument("--poll-ms", type=int, default=None,
                            help="daphne's GENHRL_RELAY_POLL_MS (default: this process's setting)")
        parser.add_argument("--database-url", default=os.environ.get("GENHRL_BENCH_DATABASE_URL", ""),
                            help="a database the bench may migrate and fill (default: $GENHRL_BENCH_DATABASE_URL, "
                                 "else a temporary SQLite file)")
        parser.add_argument("--output", default="bench-results/progress.json")
        # Internal: the bench runs itself in subprocesses for these.
        parser.add_argument("--role", choices=("bench", "setup", "produce"), default="bench",
                            help="internal")
        parser.add_argument("--session", type=int, default=0, help="internal")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["role"] == "setup":
            self.stdout.write(json.dumps(setup_bench_rows()))
        elif options["role"] == "produce":
            times = produce(options["session"], options["updates"], options["rate"])
            self.stdout.write(json.dumps(times))
        else:
            self.bench(options)

    # -- the benchmark ----------------------------------------------------------------------------
    def bench(self, options: dict[str, Any]) -> None:
        levels = [int(v) for v in options["viewers"].split(",") if v.strip()]
        if not levels or min(levels) < 1 or max(levels) > 5000:
            raise CommandError("--viewers must list 1 to 5000 viewers per level")
        if options["updates"] < 1 or not 0.1 <= options["rate"] <= 50:
            raise CommandError("--updates must be >= 1 and --rate between 0.1 and 50")
        poll_ms = options["poll_ms"] or settings.GENHRL_RELAY_POLL_MS
        folder = Path(tempfile.mkdtemp(prefix="genhrl-bench-"))
        database_url = options["database_url"] or f"sqlite:///{folder / 'bench.sqlite3'}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
            "DATABASE_URL": database_url,
            "GENHRL_DATA_DIR": str(folder),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "GENHRL_EMBEDDED_WORKER": "0",
            "GENHRL_RELAY_POLL_MS": str(poll_ms),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        daphne: subprocess.Popen[bytes] | None = None
        try:
            self.stderr.write(f"bench folder {folder}; database {database_url.split('@')[-1]}")
            _manage(env, "migrate", "--noinput", timeout=300)
            bench = json.loads(_manage(env, "bench_progress", "--role", "setup", timeout=60).splitlines()[-1])
            port = _free_port()
            with (folder / "daphne.log").open("wb") as log:
                daphne = subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "genhrl_site.asgi:application"],
                    cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            _wait_for_server(port, daphne, folder / "daphne.log")
            results = []
            for viewers in levels:
                self.stderr.write(f"level {viewers} viewer(s)...")
                # The viewers' own garbage collector is off during a level: its full collections
                # (a thousand clients' received snapshots) would delay reads and be counted as the
                # server's latency. Browsers have their own; the server's is what is measured.
                gc.collect()
                gc.disable()
                try:
                    result = asyncio.run(
                        run_level(port, bench, viewers, options["updates"], options["rate"],
                                  options["level_timeout"], env)
                    )
                finally:
                    gc.enable()
                results.append(result)
                self.stderr.write(f"  {_line(result)}")
        finally:
            if daphne is not None and daphne.poll() is None:
                daphne.terminate()
                try:
                    daphne.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daphne.kill()
                    daphne.wait(timeout=5)
            shutil.rmtree(folder, ignore_errors=True)

        report = {
            "what": "progress latency: source_time (producer process) -> receipt by an SSE client on 127.0.0.1",
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "database": "sqlite (temporary file)" if not options["database_url"] else database_url.split("://")[0],
            "relay_poll_ms": poll_ms,
            "server_gc_young_threshold": settings.GENHRL_GC_YOUNG_THRESHOLD,
            "updates_per_level": options["updates"],
            "rate_hz": options["rate"],
            "target": TARGET,
            "levels": results,
        }
        target = next((r for r in results if r["viewers"] == TARGET["viewers"]), None)
        if target is not None and target["p50_ms"] is not None:
            report["target_met"] = (
                target["p50_ms"] < TARGET["p50_ms"] and target["p99_ms"] < TARGET["p99_ms"] and not target["missing"]
            )
        output = Path(options["output"])
        if not output.is_absolute():
            output = Path(settings.BASE_DIR) / output
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(f"progress latency, relay poll {poll_ms} ms, {options['updates']} updates at "
                          f"{options['rate']:g}/s per level ({report['database']}):")
        for result in results:
            self.stdout.write("  " + _line(result))
        if "target_met" in report:
            self.stdout.write(f"target p50 < {TARGET['p50_ms']:g} ms and p99 < {TARGET['p99_ms']:g} ms at "
                              f"{TARGET['viewers']} viewers: {'met' if report['target_met'] else 'NOT met'}")
        self.stdout.write(f"written to {output}")


def _line(result: dict[str, Any]) -> str:
    if result["p50_ms"] is None:
        return f"{result['viewers']:>5} viewers: no samples ({result['note']})"
    return (
        f"{result['viewers']:>5} viewers: p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
        f"max {result['max_ms']:7.1f} ms  read {result['snapshot_read_p50_ms']:6.1f} ms  "
        f"first viewer {result['first_viewer_p50_ms']:6.1f} ms  "
        f"fan-out {result['fanout_p50_ms']:6.1f} ms  ({result['samples']} samples, {result['missing']} missing, "
        f"{result['connected']} connected in {result['connect_s']:.1f} s){' ' + result['note'] if result['note'] else ''}"
    )


def _manage(env: dict[str, str], *argv: str, timeout: float) -> str:
    done = subprocess.run(  # our own manage.py, an argv list
        [sys.executable, "manage.py", *argv], cwd=settings.BASE_DIR, env=env, capture_output=True,
        timeout=timeout, check=False,
    )
    if done.returncode != 0:
        raise CommandError(f"manage.py {' '.join(argv)} failed:\n{done.stdout.decode()}{done.stderr.decode()}")
    return done.stdout.decode()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_server(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"daphne exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise CommandError(f"daphne did not serve within {timeout:.0f} s")


# -- one level ---------------------------------------------------------------------------------------
async def run_level(
    port: int, bench: dict[str, Any], count: int, updates: int, rate: float, limit: float, env: dict[str, str]
) -> dict[str, Any]:
    viewers = [Viewer() for _ in range(count)]
    started = time.monotonic()
    note = ""
    produced: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(limit):
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
            tasks = [asyncio.create_task(_watch(port, bench, viewer, gate)) for viewer in viewers]
            while sum(v.connected_at is not None for v in viewers) + sum(bool(v.error) for v in viewers) < count:
                await asyncio.sleep(0.05)
            connect_s = time.monotonic() - started
            produced = await _produce(bench["session_id"], updates, rate, env)
            # Drain: until every viewer saw the last update, or 3 s.
            last = produced[-1] if produced else 0.0
            drain_until = time.monotonic() + 3.0
            while time.monotonic() < drain_until and not all(_saw(v, last) for v in viewers if not v.error):
                await asyncio.sleep(0.05)
    except TimeoutError:
        note = f"cut at the {limit:g} s limit"
        connect_s = time.monotonic() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return _summary(count, viewers, produced, connect_s, note)


async def _watch(port: int, bench: dict[str, Any], viewer: Viewer, gate: asyncio.Semaphore) -> None:
    """A minimal SSE client: HTTP/1.0 (no chunked framing), token auth, timestamps on receipt."""
    async with gate:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = (
                f"GET {bench['path']} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {bench['token']}\r\nAccept: text/event-stream\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                viewer.error = head.split(b"\r\n", 1)[0].decode(errors="replace")
                return
        except (OSError, asyncio.IncompleteReadError) as exc:
            viewer.error = repr(exc)
            return
    buffer = b""
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            now = time.time()
            buffer += chunk
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                if message.startswith(b"event: progress\ndata: "):
                    viewer.received.append((now, message[len(b"event: progress\ndata: "):].decode()))
                    if viewer.connected_at is None:
                        viewer.connected_at = now
    finally:
        writer.close()


def _saw(viewer: Viewer, source_time: float) -> bool:
    return bool(viewer.received) and f"{source_time!r}" in viewer.received[-1][1]


async def _produce(session_id: int, updates: int, rate: float, env: dict[str, str]) -> list[float]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "bench_progress", "--role", "produce", "--session", str(session_id),
        "--updates", str(updates), "--rate", str(rate),
        cwd=str(settings.BASE_DIR), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise CommandError(f"the producer failed:\n{err.decode()}")
    return [float(t) for t in json.loads(out.decode().splitlines()[-1])]


def _summary(count: int, viewers: list[Viewer], produced: list[float], connect_s: float, note: str) -> dict[str, Any]:
    latencies: list[float] = []
    missing = 0
    # Per update: when the first and the last viewer got it (the relay's share vs the fan-out's).
    first_seen: dict[float, float] = {}
    last_seen: dict[float, float] = {}
    read_at: dict[float, float] = {}  # when the relay read the snapshot that carried the update
    for viewer in viewers:
        if viewer.connected_at is None:
            continue
        snapshots = [(json.loads(data), received) for received, data in viewer.received]
        seen = sorted((snap["source_time"] or 0.0, received) for snap, received in snapshots)
        for snap, _ in snapshots:
            if snap["source_time"] is not None:
                read_at.setdefault(snap["source_time"], snap["snapshot_time"])
        for source in produced:
            # The first snapshot that includes this update (a later one may have superseded it).
            first = min((received for stamp, received in seen if stamp >= source), default=None)
            if first is None:
                missing += 1
            else:
                latencies.append((first - source) * 1000.0)
                first_seen[source] = min(first_seen.get(source, first), first)
                last_seen[source] = max(last_seen.get(source, first), first)
    first_viewer = [(t - s) * 1000.0 for s, t in first_seen.items()]
    snapshot_read = [(read_at[s] - s) * 1000.0 for s in first_seen if s in read_at]
    fanout = [(last_seen[s] - first_seen[s]) * 1000.0 for s in first_seen]
    errors = sorted({v.error for v in viewers if v.error})
    if errors:
        note = (note + "; " if note else "") + f"{sum(bool(v.error) for v in viewers)} failed to connect: {errors[0]}"
    return {
        "viewers": count,
        "connected": sum(v.connected_at is not None for v in viewers),
        "connect_s": round(connect_s, 2),
        "updates": len(produced),
        "samples": len(latencies),
        "missing": missing,
        "p50_ms": _percentile(latencies, 50),
        "p90_ms": _percentile(latencies, 90),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        # Median over updates: to the first viewer (poll + snapshot), and first to last (fan-out).
        "first_viewer_p50_ms": _percentile(first_viewer, 50),
        "snapshot_read_p50_ms": _percentile(snapshot_read, 50),
        "fanout_p50_ms": _percentile(fanout, 50),
        # Where the slow tail comes from: the same three parts at their worst (over updates).
        "first_viewer_max_ms": round(max(first_viewer), 1) if first_viewer else None,
        "snapshot_read_max_ms": round(max(snapshot_read), 1) if snapshot_read else None,
        "fanout_max_ms": round(max(fanout), 1) if fanout else None,
        "note": note,
    }


def _percentile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)


# -- the subprocess roles ----------------------------------------------------------------------------
def setup_bench_rows() -> dict[str, Any]:
    """A user with a token, a task of six skills and a running session with its skill runs."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from tasks.models import Skill, Task
    from training import services
    from training.models import SessionStatus, SkillRun, SkillStatus, Stage
    from training.tokens import ApiToken

    user, _ = get_user_model().objects.get_or_create(username="bench-viewer")
    task, _ = Task.objects.update_or_create(
        name=BENCH_TASK, robot=BENCH_ROBOT,
        defaults={"backend": Task.Backend.EMBEDDED, "root_skill": BENCH_SKILLS[-1], "source_path": "/bench",
                  "skill_count": len(BENCH_SKILLS), "levels": 3},
    )
    for order, name in enumerate(BENCH_SKILLS):
        Skill.objects.update_or_create(
            task=task, name=name,
            defaults={"order": order, "level": 0 if order < 4 else order - 3, "is_primitive": order < 4},
        )
    for old in task.training_sessions.filter(status__in=SessionStatus.active()):
        services.request_cancel(old, actor="bench")
        old.refresh_from_db()
        if old.is_active:
            old.transition_to(SessionStatus.CANCELLED, actor="bench")
    session = services.start_session(task, {"num_envs": 64, "min_success_states": 1000}, owner=user, actor="bench")
    session.transition_to(SessionStatus.RUNNING, actor="bench", worker_id="bench-producer")
    session.set_stage(Stage.PLANNING, actor="bench")
    SkillRun.objects.bulk_create(
        SkillRun(session=session, skill=skill, order=index, min_success_states=1000, min_frames=100_000)
        for index, skill in enumerate(task.skills.order_by("order"))
    )
    session.set_stage(Stage.TRAINING, actor="bench")
    first = session.skill_runs.order_by("order").first()
    first.transition_to(SkillStatus.TRAINING, actor="bench")
    path = reverse("api:training_progress", kwargs={"task_name": task.name, "session_id": session.pk})
    return {
        "session_id": session.pk,
        "token": ApiToken.issue(user, name="bench_progress")[1],
        "path": f"{path}?robot={BENCH_ROBOT}",
    }


def produce(session_id: int, updates: int, rate: float) -> list[float]:
    """Write `updates` progress records like the supervisor's flush does; return their source times."""
    from django.db import transaction
    from django.utils import timezone

    from training.models import SkillRun, SkillStatus, TrainingSession

    run = SkillRun.objects.get(session_id=session_id, status=SkillStatus.TRAINING)
    times = []
    interval = 1.0 / rate
    next_at = time.monotonic()
    for index in range(updates):
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        source = time.time()  # the trainer stamps its record when it makes it
        now = timezone.now()
        with transaction.atomic():
            SkillRun.objects.filter(pk=run.pk).update(
                frames=(index + 1) * 4096, epochs=index + 1, success_states=index * 3, fps=50_000.0,
                last_reward=float(index), best_reward=float(index), source_time=source, updated_at=now,
                elapsed_seconds=index * interval,
            )
            TrainingSession.objects.filter(pk=session_id).update(source_time=source, updated_at=now, heartbeat_at=now)
        times.append(source)
    return times
