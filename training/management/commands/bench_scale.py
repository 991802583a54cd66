"""`manage.py bench_scale`: the portal at a lab's scale, measured; figures to bench-results/scale.json.

Builds a lab's years of history in a PostgreSQL database of its own (default `genhrl_scale`,
created on the server of DATABASE_URL; never the configured database itself), with set-based SQL
(`generate_series`), sized by `--scale` (1.0: 1,002 tasks, 10,000 sessions of which 527 queued,
~64,000 skill runs, ~156,000 events, ~1M metric points, ~1M log lines; `--small` is 0.05). Then
measures, in this process through Django's test client (server time, no network):

- the pages a person opens and the partials they poll (dashboard, its card, the Training page,
  the navigation count, a session's dialog), and the admin's lists and a session's admin page:
  median and p90 ms over `--repeat` requests, SQL queries and bytes of one;
- `cleanup_sessions --older-than 0 --dry-run`: seconds and SQL statements;
- live progress at `--viewers` SSE viewers on a real daphne on 127.0.0.1 (`manage.py
  bench_progress` against the same database): p50/p99 latency and how many failed to connect.

`--reuse` measures an existing bench database again (after `migrate`), e.g. one built by an older
version of the code, so a change can be measured against the same rows; `--before FILE` copies an
earlier run's figures into the report beside this one's. `--drop` drops the database at the end.
Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections
from django.test import Client

from training import paths

NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
FULL = {"tasks": 1002, "sessions": 10_000, "queued": 527, "running": 3}
POINTS_PER_RUN = 16  # ~1M metric points at 64,000 runs
LINES_PER_RUN = 16  # ~1M log lines
TAGS = ("mean_reward", "mean_episode_length", "success_rate", "success_states", "fps")
# What the issue measured on the code before it (PostgreSQL, full scale, median ms in-process).
ISSUE_BEFORE = {
    "dashboard_ms": 34, "dashboard_card_ms": 29, "history_page_ms": 57,
    "dashboard_card_527_queued_ms": 131, "dashboard_card_527_queued_kb": 393,
    "admin_skillrun_list_queries": 207, "admin_session_change_queries": "79-82",
    "admin_metricpoint_and_logline_lists": "SELECT DISTINCT tag over 1M rows and two COUNT(*) of ~30-40 ms each",
    "admin_event_list_sort_ms": 104.7,
    "cleanup_dry_run_s": 153, "cleanup_dry_run_statements": 146_963,
    "sse_1000_viewers": {"p50_ms": 94, "p99_ms": 396, "failed": 1},
}
TARGETS = {"page_ms": 100, "cleanup_s": 10, "sse_1000_p99_ms": 250}


class Command(BaseCommand):
    help = "Build a lab-sized history in its own PostgreSQL database and measure pages, admin, clean-up and SSE."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="genhrl_scale", help="the bench database's name (created here)")
        parser.add_argument("--scale", type=float, default=1.0, help="size relative to the issue's lab (default 1.0)")
        parser.add_argument("--small", action="store_true", help="--scale 0.05: a quick run")
        parser.add_argument("--reuse", action="store_true", help="measure the existing bench database again")
        parser.add_argument("--drop", action="store_true", help="drop the bench database at the end")
        parser.add_argument("--repeat", type=int, default=15, help="requests per page (default 15)")
        parser.add_argument("--viewers", type=int, default=1000, help="SSE viewers (0: skip; default 1000)")
        parser.add_argument("--skip-cleanup", action="store_true", help="do not time cleanup_sessions")
        parser.add_argument("--label", default="", help="what this run measures (e.g. the branch)")
        parser.add_argument("--before", default="", help="an earlier run's JSON, copied into the report")
        parser.add_argument("--output", default="bench-results/scale.json")

    def handle(self, *args: Any, **options: Any) -> None:
        default = connections["default"]
        if default.vendor != "postgresql":
            raise CommandError("bench_scale needs PostgreSQL: set DATABASE_URL=postgresql://... (its server is used)")
        name = options["database"]
        if not NAME.match(name):
            raise CommandError("--database must be a lower-case name: letters, digits and _")
        original = default.settings_dict["NAME"]
        if name == original:
            raise CommandError(f"--database {name} is the configured database: the bench never writes there")
        scale = 0.05 if options["small"] else options["scale"]
        if not 0.001 <= scale <= 10:
            raise CommandError("--scale must be between 0.001 and 10")
        if options["repeat"] < 3 or not 0 <= options["viewers"] <= 5000:
            raise CommandError("--repeat must be 3 or more and --viewers 0 to 5000")
        before = _read_before(options["before"])

        exists = _database_exists(name)
        if options["reuse"] and not exists:
            raise CommandError(f"--reuse: there is no database {name}")
        if not options["reuse"]:
            if exists:
                _drop(name)  # only one this command made (CommandError otherwise)
            _create(name)
        _switch_to(name)
        try:
            call_command("migrate", verbosity=0, interactive=False)
            if not options["reuse"]:
                started = time.monotonic()
                self.stderr.write(f"building the history at scale {scale:g} in {name}...")
                build(scale)
                self.stderr.write(f"  built in {time.monotonic() - started:.1f} s")
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            report: dict[str, Any] = {
                "what": "server time in-process (Django test client), median of --repeat requests; PostgreSQL",
                "label": options["label"],
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "scale": scale if not options["reuse"] else "reused",
                "rows": row_counts(),
                "targets": TARGETS,
                "issue_before": ISSUE_BEFORE,
            }
            self.stderr.write(f"rows: {report['rows']}")
            report["pages"] = self.measure_pages(options["repeat"])
            if not options["skip_cleanup"]:
                report["cleanup_dry_run"] = measure_cleanup()
                self.stderr.write(f"cleanup: {report['cleanup_dry_run']}")
            if options["viewers"]:
                report["sse"] = measure_sse(name, options["viewers"])
            if before is not None:
                report["before"] = before
        finally:
            _switch_to(original)
            if options["drop"]:
                _drop(name)
        output = Path(options["output"])
        if not output.is_absolute():
            output = Path(settings.BASE_DIR) / output
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, default=str) + "\n")
        self.print_report(report)
        self.stdout.write(f"written to {output}")

    # -- pages -----------------------------------------------------------------------------------
    def measure_pages(self, repeat: int) -> dict[str, dict[str, Any]]:
        from django.contrib.auth import get_user_model

        from training.models import SkillRun, TrainingSession

        if "testserver" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        admin = get_user_model().objects.get(username="bench-admin")
        client = Client()
        client.force_login(admin)
        finished = TrainingSession.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
        widest = SkillRun.objects.order_by("-session_id").values_list("session_id", flat=True).first()
        running = TrainingSession.objects.filter(status="running").order_by("pk").first()
        pages = {
            "dashboard": "/",
            "dashboard_card": "/training/dashboard-card/?stat=1",
            "history_page": "/training/",
            "nav_indicator": "/training/indicator/",
            "task_list": "/tasks/",
            "session_dialog": f"/training/sessions/{finished.pk}/" if finished else None,
            "session_progress_running": f"/training/sessions/{running.pk}/progress/" if running else None,
            "admin_sessions": "/admin/training/trainingsession/",
            "admin_session_change": f"/admin/training/trainingsession/{widest}/change/" if widest else None,
            "admin_skillruns": "/admin/training/skillrun/",
            "admin_events": "/admin/training/sessionevent/",
            "admin_metricpoints": "/admin/training/metricpoint/",
            "admin_metricpoints_by_tag": "/admin/training/metricpoint/?tag=mean_reward",
            "admin_loglines": "/admin/training/logline/",
        }
        results = {}
        for label, url in pages.items():
            if url is None:
                continue
            results[label] = measure(client, url, repeat)
            self.stderr.write(f"  {label:<28} {_page_line(results[label])}")
        return results

    def print_report(self, report: dict[str, Any]) -> None:
        self.stdout.write(f"bench_scale {report['label']} rows {report['rows']}")
        for label, page in report["pages"].items():
            self.stdout.write(f"  {label:<28} {_page_line(page)}")
        if "cleanup_dry_run" in report:
            cleanup = report["cleanup_dry_run"]
            self.stdout.write(f"  cleanup_sessions --older-than 0 --dry-run: {cleanup['seconds']} s, "
                              f"{cleanup['queries']} SQL statements")
        if "sse" in report:
            self.stdout.write(f"  sse: {report['sse']}")


class Counted:
    """SQL statements run on this thread's connection, and their time (survives reconnects)."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started

    def __enter__(self) -> Counted:
        self._wrapping = connection.execute_wrapper(self)
        self._wrapping.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._wrapping.__exit__(*exc)


def measure(client: Client, url: str, repeat: int) -> dict[str, Any]:
    """Median and p90 server time of `url`, and the queries and bytes of one request."""
    for _ in range(2):  # warm: caches, the first connection
        client.get(url)
    with Counted() as queries:
        response = client.get(url)
    if response.status_code != 200:
        return {"url": url, "status": response.status_code}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000.0)
    return {
        "url": url,
        "median_ms": round(statistics.median(times), 1),
        "p90_ms": round(statistics.quantiles(times, n=10)[-1], 1),
        "queries": queries.count,
        "sql_ms_of_one": round(queries.seconds * 1000.0, 1),
        "bytes": len(response.content),
    }


def _page_line(page: dict[str, Any]) -> str:
    if "median_ms" not in page:
        return f"HTTP {page['status']}"
    return (f"median {page['median_ms']:7.1f} ms  p90 {page['p90_ms']:7.1f} ms  {page['queries']:4d} queries  "
            f"{page['bytes'] / 1024:7.1f} KB")


def measure_cleanup() -> dict[str, Any]:
    out = StringIO()
    with Counted() as queries:
        started = time.monotonic()
        call_command("cleanup_sessions", "--older-than", "0", "--dry-run", stdout=out, stderr=StringIO())
        seconds = time.monotonic() - started
    lines = out.getvalue().splitlines()
    return {"seconds": round(seconds, 2), "queries": queries.count, "sql_seconds": round(queries.seconds, 2),
            "summary": lines[-2:] if lines else []}


def measure_sse(name: str, viewers: int) -> dict[str, Any]:
    """`manage.py bench_progress` at `viewers` viewers on this database (URL passed in the environment)."""
    output = Path(settings.BASE_DIR) / "bench-results" / "scale-sse.json"
    env = {**os.environ, "GENHRL_BENCH_DATABASE_URL": _url_for(name)}
    argv = [sys.executable, "manage.py", "bench_progress", "--viewers", str(viewers), "--output", str(output)]
    done = subprocess.run(argv, cwd=settings.BASE_DIR, env=env, capture_output=True, timeout=900, check=False)
    if done.returncode != 0:
        return {"error": (done.stdout.decode() + done.stderr.decode())[-2000:]}
    level = json.loads(output.read_text())["levels"][-1]
    failed = level["viewers"] - level["connected"]
    return {"viewers": viewers, "p50_ms": level["p50_ms"], "p99_ms": level["p99_ms"], "max_ms": level["max_ms"],
            "connected": level["connected"], "failed": failed, "connect_s": level["connect_s"], "note": level["note"]}


# -- the database --------------------------------------------------------------------------------
# Creating, finding and dropping the bench database go through PostgreSQL's maintenance database,
# as Django's test runner does (the configured one need not exist).
def _database_exists(name: str) -> bool:
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


MARK = "genhrl bench_scale"  # the comment on a database this command made: the only kind it drops


def _is_bench(name: str) -> bool:
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        row = cursor.fetchone()
    return row is not None and row[0] == MARK


def _create(name: str) -> None:
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {connection.ops.quote_name(name)}")
        cursor.execute(f"COMMENT ON DATABASE {connection.ops.quote_name(name)} IS '{MARK}'")  # a constant


def _drop(name: str) -> None:
    if not _is_bench(name):
        raise CommandError(f"database {name} was not made by bench_scale: it is never dropped")
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")


def _switch_to(name: str) -> None:
    """Point the default connection at database `name` (as Django's test runner does)."""
    connections["default"].close()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


def _url_for(name: str) -> str:
    """DATABASE_URL of the bench database, for the SSE bench's subprocesses (never in argv)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    configured = os.environ.get("DATABASE_URL", "")
    return urlunsplit(urlsplit(configured)._replace(path="/" + quote(name)))


def _read_before(path: str) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"--before {path}: {exc}") from None
    return {key: data.get(key) for key in ("label", "generated_at", "rows", "pages", "cleanup_dry_run", "sse")}


def row_counts() -> dict[str, int]:
    tables = ("tasks_task", "tasks_skill", "training_trainingsession", "training_skillrun",
              "training_sessionevent", "training_metricpoint", "training_logline")
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")  # our own table names
            counts[table] = cursor.fetchone()[0]
    return counts


# -- building the history ----------------------------------------------------------------------------
def build(scale: float) -> None:
    """Fill the empty bench database: set-based SQL, a few statements per table."""
    from django.contrib.auth import get_user_model

    tasks = max(4, round(FULL["tasks"] * scale))
    sessions = max(10, round(FULL["sessions"] * scale))
    queued = min(tasks - FULL["running"], max(1, round(FULL["queued"] * scale)))
    running = FULL["running"]
    users = get_user_model()
    users.objects.create_superuser("bench-admin", "bench@example.org", None)
    users.objects.bulk_create(users(username=f"researcher{i}") for i in range(20))
    # A scene and a skill tree of realistic size: the JSON columns every session list used to carry.
    hierarchy = json.dumps({"name": "root", "children": [{"name": f"skill_{i}", "children": []} for i in range(40)]})
    scene = json.dumps({"objects": [{"name": f"object_{i}", "size": [0.1, 0.2, 0.3], "position": [i, 0, 0]}
                                    for i in range(30)]})
    statements = [
        ("""INSERT INTO tasks_task (name, robot, backend, description, root_skill, source_path, robot_path,
                object_config, hierarchy, warnings, skill_count, levels, imported_at, updated_at)
            SELECT 'task_' || i, 'Robot' || (i %% 7), 'embedded', 'A task of the bench.', 'root_' || i,
                   '/bench/Robot' || (i %% 7) || '/' || i, '', %s::jsonb, %s::jsonb, '[]'::jsonb,
                   5 + i %% 4, 3, now() - interval '3 years', now() - (i || ' minutes')::interval
            FROM generate_series(1, %s) AS i""", [scene, hierarchy, tasks]),
        ("""INSERT INTO tasks_skill (task_id, name, description, is_primitive, level, "order", sub_skills, used_by,
                defined, embedded_spec)
            SELECT t.id, 'skill_' || k, '', k < 3, CASE WHEN k < 3 THEN 0 ELSE 1 END, k, '[]'::jsonb, '[]'::jsonb,
                   true, '{"type": "reach"}'::jsonb
            FROM tasks_task t CROSS JOIN LATERAL generate_series(0, t.skill_count - 1) AS k""", []),
        # Sessions: the newest `running` run, the next `queued` wait (one active session per task),
        # the rest ended over three years. Task of session i: the i-th task, round robin.
        ("""INSERT INTO training_trainingsession (task_id, owner_id, config, queue, queue_rank, workspace, backend,
                status, stage, created_at, started_at, finished_at, updated_at, heartbeat_at, worker_id,
                cancel_requested_by, error)
            SELECT t.id, (SELECT min(id) FROM auth_user) + (s.i %% 21),
                   '{"num_envs": 512, "min_success_states": 50, "seed": 42}'::jsonb, 'default',
                   extract(epoch FROM s.created), '', 'embedded', s.status,
                   CASE WHEN s.status = 'queued' THEN 'initializing' WHEN s.status = 'running' THEN 'training'
                        ELSE 'complete' END,
                   s.created, CASE WHEN s.status = 'queued' THEN NULL ELSE s.created + interval '1 minute' END,
                   CASE WHEN s.status IN ('queued', 'running') THEN NULL
                        ELSE s.created + ((30 + s.i %% 300) || ' minutes')::interval END,
                   s.created, CASE WHEN s.status = 'running' THEN now() ELSE NULL END,
                   CASE WHEN s.status = 'running' THEN 'bench-worker' ELSE '' END, '',
                   CASE WHEN s.status = 'failed' THEN 'skill_2: the trainer exited with code 1' ELSE '' END
            FROM (
                SELECT i, now() - (i * (3 * 365 * 24 * 60 / %s) || ' minutes')::interval AS created,
                       CASE WHEN i < %s THEN 'running' WHEN i < %s THEN 'queued'
                            WHEN i %% 10 = 0 THEN 'failed' WHEN i %% 17 = 0 THEN 'cancelled'
                            WHEN i %% 29 = 0 THEN 'interrupted' ELSE 'completed' END AS status
                FROM generate_series(0, %s - 1) AS i
            ) AS s
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM tasks_task) AS t ON t.n = s.i %% %s""",
         [sessions, running, running + queued, sessions, tasks]),
        # A run per skill of the task for every session that started (queued ones have none yet).
        ("""INSERT INTO training_skillrun (session_id, skill_id, "order", status, attempt, started_at, finished_at,
                updated_at, elapsed_seconds, executor, job_id, exit_code, success_states, min_success_states,
                start_states, min_frames, frames, epochs, fps, best_reward, last_reward, success_rate, run_dir,
                stop_reason, error, log_excerpt, log_line_count)
            SELECT s.id, k.id, k."order",
                   CASE WHEN s.status = 'running' THEN (CASE WHEN k."order" = 0 THEN 'training' ELSE 'pending' END)
                        WHEN s.status = 'completed' THEN 'completed'
                        WHEN s.status = 'failed' AND k."order" = 2 THEN 'failed'
                        WHEN k."order" < 2 THEN 'completed' ELSE 'cancelled' END,
                   1, s.started_at, s.finished_at, s.updated_at, 600, 'process', '', 0, 60, 50, 0, 100000,
                   200000, 40, 50000, 9.5, 9.1, 0.8, '',
                   CASE WHEN s.status = 'failed' AND k."order" = 2 THEN 'crashed' ELSE '' END, '',
                   'epoch 40 frames 200000 reward 9.1', %s
            FROM training_trainingsession s JOIN tasks_skill k ON k.task_id = s.task_id
            WHERE s.status <> 'queued'""", [LINES_PER_RUN]),
        # Where the orchestrator would have put each run's folder (none exists on this disk).
        ("""UPDATE training_skillrun r
            SET run_dir = %s || '/' || t.robot || '/' || t.name || '/skills/' || k.id || '-' || k.name || '/runs/' || r.id
            FROM tasks_skill k JOIN tasks_task t ON t.id = k.task_id
            WHERE k.id = r.skill_id""", [str(paths.runs_root())]),
        # Events: created and ended per session, and two per run.
        ("""INSERT INTO training_sessionevent (session_id, skill_run_id, kind, from_state, to_state, message, actor, time)
            SELECT s.id, NULL::bigint, 'status', '', 'queued', '', 'user:researcher', s.created_at
            FROM training_trainingsession s
            UNION ALL
            SELECT s.id, NULL::bigint, 'status', 'running', s.status, '', 'worker:bench', s.finished_at
            FROM training_trainingsession s WHERE s.finished_at IS NOT NULL
            UNION ALL
            SELECT r.session_id, r.id, 'skill_status', 'pending', 'training', '', 'worker:bench', r.started_at
            FROM training_skillrun r
            UNION ALL
            SELECT r.session_id, r.id, 'skill_status', 'training', r.status, '', 'worker:bench',
                   coalesce(r.finished_at, r.started_at)
            FROM training_skillrun r""", []),
        ("""INSERT INTO training_metricpoint (skill_run_id, tag, step, value, time)
            SELECT r.id, (%s::text[])[1 + p %% 5], (p / 5 + 1) * 4096, p * 0.5, r.started_at
            FROM training_skillrun r CROSS JOIN generate_series(0, %s - 1) AS p""",
         ["{" + ",".join(TAGS) + "}", POINTS_PER_RUN]),
        ("""INSERT INTO training_logline (skill_run_id, seq, stream, text, time)
            SELECT r.id, n, 'stdout', 'epoch ' || n || ' frames ' || n * 4096 || ' mean reward ' || n * 0.5,
                   r.started_at
            FROM training_skillrun r CROSS JOIN generate_series(0, %s - 1) AS n""", [LINES_PER_RUN]),
    ]
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
