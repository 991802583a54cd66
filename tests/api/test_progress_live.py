"""Live progress on a real daphne while ANOTHER process trains, with no Redis.

The session is supervised by a separate Python process (`tests/fakes/train_elsewhere.py`, the
orchestrator with the fake trainer; or `manage.py train` with the real one). That process's
in-memory events reach no one in daphne: everything a viewer sees came through the database and
daphne's relay.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings

from tests.factories import REPO_ROOT, api_url, events, train_elsewhere, wait_for
from tests.live import LiveDaphne, live_database_url

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def watch(http: httpx.Client, daphne: LiveDaphne, path: str, deadline: float) -> Iterator[tuple[str, Any]]:
    with http.stream("GET", daphne.url(path)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in events(response.iter_raw()):
            yield message
            assert time.monotonic() < deadline, "the stream did not finish in time"


def test_no_redis_is_configured():
    assert not hasattr(settings, "EVENTSTREAM_REDIS")


def test_anonymous_stream_is_401_on_daphne(api_daphne, fetch_block, queue):
    session = queue(fetch_block)

    response = httpx.get(api_daphne.url(api_url(fetch_block, f"progress/{session.pk}")))

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")


def test_stream_is_live_while_another_process_trains(api_daphne, fetch_block, queue, token, tmp_path):
    session = queue(fetch_block)
    path = api_url(fetch_block, f"progress/{session.pk}")
    seen: list[tuple[str, dict[str, Any], float]] = []
    trainer = None
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT) as http:
        connected = time.monotonic()
        for event, data in watch(http, api_daphne, path, deadline=connected + 90):
            seen.append((event, data, time.time()))
            if trainer is None:
                # The current state arrives at once, before anything changes.
                assert time.monotonic() - connected < 2
                assert (event, data["status"]) == ("progress", "queued")
                trainer = train_elsewhere(session.pk, tmp_path, "--epoch-seconds", "0.15", "--states-per-epoch", "2")
        # The generator ended: daphne closed the stream after `done`.
    assert trainer is not None
    output = trainer.communicate(timeout=30)[0].decode()
    assert trainer.returncode == 0, output

    assert seen[-1][0] == "done" and seen[-1][1]["status"] == "completed"
    snapshots = [data for event, data, _ in seen if event == "progress"]
    assert snapshots[-1]["status"] == "completed" and snapshots[-1]["progress"] == 1.0
    # Live, not just the end: running states with the trainer's own records, skill by skill.
    running = [s for s in snapshots if s["status"] == "running"]
    assert {s["current_skill"] for s in running} >= {"go_to_block", "go_to_goal", "fetch_block"}
    progress = [s["progress"] for s in snapshots]
    assert progress == sorted(progress)
    stamped = [(data["source_time"], received) for event, data, received in seen
               if event == "progress" and data["source_time"] is not None]
    assert len({source for source, _ in stamped}) >= 5
    # Written by another process, polled every 25 ms: well under a second end to end.
    assert max(received - source for source, received in stamped) < 1.0


def test_reconnecting_to_a_finished_session_gets_its_final_state_and_done(api_daphne, fetch_block, queue, token,
                                                                         tmp_path):
    session = queue(fetch_block)
    train_elsewhere(session.pk, tmp_path).communicate(timeout=60)
    path = api_url(fetch_block, f"progress/{session.pk}")

    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT) as http:
        seen = [(event, data["status"]) for event, data in watch(http, api_daphne, path, time.monotonic() + 10)]

    assert seen == [("progress", "completed"), ("done", "completed")]


def test_browser_session_watches_and_cancels(api_daphne, fetch_block, queue, researcher, tmp_path):
    session = queue(fetch_block, min_success_states=10_000)
    trainer = train_elsewhere(session.pk, tmp_path, "--epoch-seconds", "0.1")
    cookie = api_daphne.session_cookie(researcher)
    try:
        with httpx.Client(cookies={cookie["name"]: cookie["value"]}, timeout=TIMEOUT) as http:
            http.get(api_daphne.url("/accounts/login/"))
            csrf = http.cookies["csrftoken"]
            statuses = []
            path = api_url(fetch_block, f"progress/{session.pk}")
            for event, data in watch(http, api_daphne, path, time.monotonic() + 60):
                statuses.append((event, data["status"]))
                if data["status"] == "running" and data["current_skill"] and len(statuses) < 50:
                    response = http.post(api_daphne.url(api_url(fetch_block, "cancel")),
                                         headers={"X-CSRFToken": csrf, "Referer": api_daphne.url("/")})
                    assert response.status_code == 200, response.text
                    statuses.append(("cancel", response.json()["status"]))
                    break
            for event, data in watch(http, api_daphne, path, time.monotonic() + 60):
                statuses.append((event, data["status"]))
    finally:
        trainer.communicate(timeout=60)
    assert ("cancel", "cancelling") in statuses
    assert statuses[-2:] == [("progress", "cancelled"), ("done", "cancelled")]


@pytest.mark.training
def test_stream_follows_manage_py_train_in_a_terminal(api_daphne, fetch_block, token, tmp_path):
    """The real CLI and the real trainer, in their own process; the viewer only knows the task."""
    argv = [sys.executable, "manage.py", "train", "fetch_block", "--robot", "PointMass", "--plain",
            "--num-envs", "64", "--min-success-states", "20", "--min-steps-primitive", "4096",
            "--min-steps-composite", "1024", "--max-time", "2", "--seed", "1"]
    env = {**_env(), "GENHRL_DATA_DIR": str(tmp_path)}
    cli = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: list[tuple[str, dict[str, Any]]] = []
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT) as http:
            status_url = api_daphne.url(api_url(fetch_block, "status"))
            assert wait_for(lambda: http.get(status_url).json()["session"] is not None, 60, 0.1), cli.stdout
            progress = http.get(status_url).json()["session"]["urls"]["progress"]
            seen.extend(watch(http, api_daphne, progress, time.monotonic() + 240))
    finally:
        output = cli.communicate(timeout=60)[0].decode()
    assert cli.returncode == 0, output
    assert seen[-1] == ("done", {"session_id": seen[0][1]["session_id"], "status": "completed", "error": ""})
    training = [d for e, d in seen if e == "progress" and d["status"] == "running" and d["current_skill"]]
    assert len(training) >= 3
    assert any(s["frames"] > 0 for d in training for s in d["skills"])


def _env() -> dict[str, str]:
    import os

    env = {**os.environ, "DATABASE_URL": live_database_url(), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env
