"""`manage.py bench_metrics`: the metric endpoint on a 1,000,000-point series, and the comparison
page (and the history it is picked from) among 10,000 sessions.

- The series: one TensorBoard event file of 1M scalars (`bench/value`, a noisy curve with a few
  spikes), written once with TensorBoard's own `EventFileWriter` and kept in
  `GENHRL_DATA_DIR/bench/tensorboard-1M/` (the data folder is not in git); each run copies it into
  a skill run's folder. Measured through the real view (`django.test.Client`, a logged-in user):
  the first request (reads the whole file), then repeated ones (the per-folder cache), and one
  after the file grew by 1,000 points (only those are read).
- 10,000 sessions of 20 tasks by 5 owners, each with one skill run, bulk-created; then the
  comparison of 4 of them (page and JSON), and the history page unfiltered, filtered and sorted, on
  its first and last page.

Everything runs in a child process on a throwaway SQLite database in a temporary folder (unless
`--database-url` names another), never on the portal's own. Results go to
`bench-results/metrics.json` and are printed. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

POINTS = 1_000_000
TAG = "bench/value"
SESSIONS = 10_000
TASKS = 20
OWNERS = 5
REPEAT = 10


class Command(BaseCommand):
    help = "Time the metric endpoint on a 1M-point series and the comparison among 10,000 sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default="", help="JSON file (default bench-results/metrics.json).")
        parser.add_argument("--database-url", default="", help="Database to fill (default: a temporary SQLite file).")
        parser.add_argument("--sessions", type=int, default=SESSIONS)
        parser.add_argument("--points", type=int, default=POINTS)
        parser.add_argument("--cache-dir", default="", help="Where the event file is kept (default GENHRL_DATA_DIR/bench).")
        parser.add_argument("--role", choices=["bench", "measure"], default="bench", help="(internal)")
        parser.add_argument("--events", default="", help="(internal) the cached event folder")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 100 <= options["sessions"] <= 1_000_000 or not 1_000 <= options["points"] <= 10_000_000:
            raise CommandError("--sessions must be 100..1,000,000 and --points 1,000..10,000,000")
        if options["role"] == "measure":
            self.stdout.write(json.dumps(measure(Path(options["events"]), options["sessions"])))
            return
        cache = Path(options["cache_dir"]) if options["cache_dir"] else Path(settings.DATA_DIR) / "bench"
        events = cached_event_file(cache / f"tensorboard-{options['points']}", options["points"])
        folder = Path(tempfile.mkdtemp(prefix="genhrl-bench-metrics-"))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
            "DATABASE_URL": options["database_url"] or f"sqlite:///{folder / 'bench.sqlite3'}",
            "GENHRL_DATA_DIR": str(folder),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "GENHRL_EMBEDDED_WORKER": "0",
            "LOG_LEVEL": "WARNING",
        }
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        try:
            subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True, timeout=600)
            child = subprocess.run(
                [*manage, "bench_metrics", "--role", "measure", "--events", str(events), "--sessions", str(options["sessions"]),
                 "--points", str(options["points"])],
                env=env, capture_output=True, text=True, timeout=3600,
            )
            if child.returncode != 0:
                raise CommandError(f"the measuring process failed:\n{child.stderr[-4000:]}")
            results = json.loads(child.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
        results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        output = Path(options["output"] or Path(settings.BASE_DIR) / "bench-results" / "metrics.json")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
        self.stdout.write(json.dumps(results, indent=2))


def cached_event_file(folder: Path, points: int) -> Path:
    """`folder` holding one event file of `points` scalars (written once; `done` marks it whole)."""
    if (folder / "done").exists():
        return folder
    import numpy as np
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(13)
    values = np.tanh(np.arange(points) / (points / 4)) * 100 + rng.normal(0, 5, points)
    values[rng.integers(0, points, 5)] = 1e4  # single-point spikes the chart must still show
    writer = EventFileWriter(str(folder), max_queue_size=10_000)
    start = 1.8e9
    for i, value in enumerate(values.tolist()):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=TAG, simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=start + i * 0.01, step=i * 64, summary=summary))
    writer.close()
    (folder / "done").write_text(str(points))
    return folder


def _timed(call: Callable[[], Any], repeat: int = REPEAT) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(times[-1], 2), "runs": repeat}


def _get(client: Any, url: str, **params: Any) -> Any:
    answer = client.get(url, params)
    if answer.status_code != 200:
        raise CommandError(f"GET {url} {params}: {answer.status_code} {answer.content[:300]!r}")
    return answer


def measure(events: Path, count: int) -> dict[str, Any]:
    """In the child (its own database and data folder): build the rows, time the requests."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from tasks.models import Skill, Task
    from training import metrics, paths
    from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession

    users = [get_user_model().objects.create_user(f"bench{i}", password=secrets.token_urlsafe(16)) for i in range(OWNERS)]
    tasks = []
    for i in range(TASKS):
        task = Task.objects.create(name=f"bench_task_{i}", robot="PointMass" if i % 2 else "G1", backend="embedded",
                                   root_skill="reach", source_path=f"/bench/{i}", skill_count=1, levels=1)
        Skill.objects.create(task=task, name="reach", level=0, order=0, is_primitive=True)
        tasks.append(task)
    skills = {s.task_id: s for s in Skill.objects.all()}
    statuses = [SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED, SessionStatus.INTERRUPTED]
    now = timezone.now()
    sessions = [
        TrainingSession(task=tasks[i % TASKS], owner=users[i % OWNERS], backend="embedded", status=statuses[i % 4],
                        config={"seed": i % 7, "num_envs": 256 << (i % 3), "min_success_states": 50},
                        created_at=now - timedelta(minutes=count - i), started_at=now - timedelta(minutes=count - i),
                        finished_at=now - timedelta(minutes=count - i - 1))
        for i in range(count)
    ]
    started = time.perf_counter()
    TrainingSession.objects.bulk_create(sessions, batch_size=2000)
    ids = list(TrainingSession.objects.order_by("pk").values_list("pk", "task_id"))
    SkillRun.objects.bulk_create(
        [SkillRun(session_id=pk, skill=skills[task_id], order=0, status=SkillStatus.COMPLETED, frames=1_000_000,
                  success_states=50, success_rate=0.9, best_reward=10.0, elapsed_seconds=60.0) for pk, task_id in ids],
        batch_size=2000,
    )
    fill_seconds = time.perf_counter() - started

    # The 1M-point run: the newest session's run, its folder holding a copy of the cached file.
    run = SkillRun.objects.select_related("skill").order_by("-pk").first()
    assert run is not None
    folder = paths.run_dir(run.skill, run.pk)
    shutil.copytree(events, folder / "summaries", ignore=shutil.ignore_patterns("done"))
    SkillRun.objects.filter(pk=run.pk).update(run_dir=str(folder))

    client = Client(SERVER_NAME="localhost")
    client.force_login(users[0])
    series_url = f"/api/runs/{run.pk}/metrics/series"
    metrics.clear_cache()
    started = time.perf_counter()
    first = _get(client, series_url, tag=TAG).json()
    cold_ms = (time.perf_counter() - started) * 1000
    warm = _timed(lambda: _get(client, series_url, tag=TAG))
    tags = _timed(lambda: _get(client, f"/api/runs/{run.pk}/metrics"))
    writer = EventFileWriter(str(folder / "summaries"))  # a trainer's next 1,000 points, in a new file
    for i in range(1000):
        value = summary_pb2.Summary.Value(tag=TAG, simple_value=float(i))
        writer.add_event(event_pb2.Event(wall_time=2e9 + i, step=10**9 + i, summary=summary_pb2.Summary(value=[value])))
    writer.close()
    started = time.perf_counter()
    grown = _get(client, series_url, tag=TAG).json()
    grown_ms = (time.perf_counter() - started) * 1000
    assert grown["total_points"] == first["total_points"] + 1000

    picked = ",".join(str(pk) for pk, _ in ids[-4:])
    compare_page = _timed(lambda: _get(client, "/training/compare/", sessions=picked))
    compare_api = _timed(lambda: _get(client, "/api/compare", sessions=picked))
    last_page = -(-count // 50)
    history = {
        "unfiltered": _timed(lambda: _get(client, "/training/")),
        "last_page": _timed(lambda: _get(client, "/training/", page=last_page)),
        "task_owner_status": _timed(lambda: _get(client, "/training/", task="bench_task_3", owner="bench3",
                                                 status="completed")),
        "robot_dates_sorted_by_task": _timed(lambda: _get(client, "/training/", robot="G1", since="2000-01-01",
                                                          sort="task")),
    }
    return {
        "series": {
            "points_in_file": first["total_points"], "points_returned": len(first["value"]),
            "first_request_ms": round(cold_ms, 1), "cached": warm, "after_1000_new_points_ms": round(grown_ms, 1),
            "tags_request": tags, "response_bytes": len(json.dumps(first)),
        },
        "sessions": count, "fill_seconds": round(fill_seconds, 1),
        "compare_page_4_sessions": compare_page, "compare_api_4_sessions": compare_api,
        "history_page": history,
    }
