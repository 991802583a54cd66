"""The embedded worker inside a real daphne: it trains what the API queues, and stops cleanly with daphne."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.factories import api_url, events
from tests.live import live_database_url, run_daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]

# The real trainer, tiny: a skill takes seconds. A high target keeps the first skill training.
ENDLESS = {"num_envs": 64, "min_success_states": 1_000_000, "min_steps_primitive": 4096, "max_time": 5, "seed": 1}


def test_daphne_trains_a_web_started_session_and_ctrl_c_interrupts_it_cleanly(fetch_block, token, tmp_path):
    env = {"GENHRL_EMBEDDED_WORKER": "1", "GENHRL_WORKER_SLOTS": "1"}
    auth = {"Authorization": f"Bearer {token}"}
    with run_daphne(live_database_url(), data_dir=tmp_path / "daphne", env=env) as daphne:
        with httpx.Client(headers=auth, timeout=httpx.Timeout(60.0, connect=5.0)) as http:
            started = http.post(daphne.url(api_url(fetch_block, "start")), json=ENDLESS)
            assert started.status_code == 201, started.text
            progress = started.json()["urls"]["progress"]
            with http.stream("GET", daphne.url(progress)) as stream:
                for event, data in events(stream.iter_raw()):
                    if event == "progress" and any(s["frames"] > 0 for s in data["skills"]):
                        break
                assert data["worker"].split(":")[1] == str(daphne.process.pid)  # claimed inside daphne
                assert data["status"] == "running" and data["current_skill"] == "go_to_block"
                trainer_group = fetch_block.training_sessions.get().pid
                assert trainer_group

                # Ctrl-C of `make run` with a progress view open: the server ends cleanly (it once
                # segfaulted at exit, with threads still running while the interpreter finalised).
                # Twice, as an impatient person does: the second must not cut the clean stop short.
                daphne.process.send_signal(signal.SIGINT)
                time.sleep(0.3)
                daphne.process.send_signal(signal.SIGINT)
                code = daphne.process.wait(timeout=45)
            assert code == 0, (code, daphne.log()[-3000:])
            log = daphne.log()
            for crash in ("Segmentation fault", "Fatal Python error"):
                assert crash not in log, log[-3000:]
            # No traceback either, but one: daphne cancels the open stream's handler at shutdown, and
            # Django's disconnect listener then raises RequestAborted that nobody retrieves (logged
            # by asyncio). That is the stream being closed, not a crash.
            assert log.count("Traceback") == log.count("exception=RequestAborted()"), log[-3000:]

        session = fetch_block.training_sessions.get()
        # A server shutdown is nobody's cancel: the session is interrupted, and can be resumed.
        assert session.status == "interrupted", (session.status, session.error, daphne.log()[-3000:])
        assert "the web server stopped" in session.error
        run = session.skill_runs.get(skill__name="go_to_block")
        assert run.status == "cancelled", (run.status, run.stop_reason)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(trainer_group):
            time.sleep(0.1)
        assert not _alive(trainer_group)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
