"""A separate worker keeps training while the web server restarts."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import TINY, Workers, wait_for
from tests.live import live_database_url, run_daphne
from training import services
from training.models import SessionEvent, SessionStatus, SkillStatus, TrainingSession
from training.tokens import ApiToken

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


def test_restarting_daphne_does_not_touch_a_separate_workers_training(fetch_block, user, workers: Workers) -> None:
    token = ApiToken.issue(user, name="tests")[1]
    status_url = "/api/tasks/fetch_block/training/status?robot=PointMass"
    session = services.start_session(fetch_block, {**TINY, "min_success_states": 20}, owner=user)
    web_env = {"GENHRL_EMBEDDED_WORKER": "0"}  # the web only serves; the worker process trains
    with run_daphne(live_database_url(), data_dir=workers.data_dir / "web1", env=web_env) as web:
        # Started once the server is up, so the first skill (4 s) is still training when it stops.
        worker = workers.start("--slots", "1", "--poll-interval", "0.1", fake="--states-per-epoch 1 --epoch-seconds 0.2")
        assert wait_for(lambda: session.skill_runs.filter(order=0, frames__gt=0).exists(), 30), workers.log()
        first = session.skill_runs.get(order=0)
        response = httpx.get(web.url(status_url), headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200, response.text
    # The first server is gone; the trainer it never owned is still mid-skill.
    first.refresh_from_db()
    assert first.status == SkillStatus.TRAINING
    with run_daphne(live_database_url(), data_dir=workers.data_dir / "web2", env=web_env) as web:
        response = httpx.get(web.url(status_url), headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.status_code == 200, response.text

        def ended() -> bool:
            session.refresh_from_db()
            return session.status in SessionStatus.terminal()

        assert wait_for(ended, 60), workers.log()
    assert worker.poll() is None  # the worker never noticed
    assert session.status == SessionStatus.COMPLETED, session.error
    first.refresh_from_db()
    assert (first.status, first.attempt) == (SkillStatus.COMPLETED, 1)
    assert TrainingSession.objects.get(pk=session.pk).worker_id == session.worker_id
    assert session.events.filter(kind=SessionEvent.Kind.STATUS, to_state=SessionStatus.RUNNING).count() == 1
