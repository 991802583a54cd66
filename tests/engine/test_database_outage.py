"""The database goes away mid-skill; training does not.

A terminated connection (`pg_terminate_backend`, a server restart, a failover) and a longer outage
(new connections refused) while a trainer runs: the supervisor keeps reading its output, keeps
what it could not write, and writes it once the database is back. Past GENHRL_DB_OUTAGE_SECONDS
it stops the trainer gracefully, so its success states and checkpoint are kept. PostgreSQL only:
SQLite has no server to lose.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection

from tests.factories import orchestrate
from training import paths
from training.models import SessionEvent, SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.training]


@pytest.fixture
def postgres() -> psycopg.Connection:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the CI's second pass runs it)")
    params = connection.get_connection_params()
    admin = psycopg.connect(
        host=params.get("host") or "127.0.0.1", port=params.get("port") or 5432,
        user=params.get("user") or "postgres", dbname="postgres", autocommit=True,
    )
    yield admin
    admin.execute(f'ALTER DATABASE "{connection.settings_dict["NAME"]}" ALLOW_CONNECTIONS true')
    admin.close()


class CutOnce:
    """An on_update hook that, once the first skill has some progress, kills the supervisor's
    database connection (and with `refuse_for`, refuses new ones for that long)."""

    def __init__(self, admin: psycopg.Connection, refuse_for: float = 0.0, needs_progress: bool = True) -> None:
        self.admin = admin
        self.needs_progress = needs_progress
        self.refuse_for = refuse_for
        self.done = False

    def __call__(self, orch) -> None:
        training = orch.training()
        if self.done or connection.connection is None:
            return
        if self.needs_progress and (not training or training[0].run.frames == 0):
            return
        self.done = True
        name = connection.settings_dict["NAME"]
        if self.refuse_for:
            self.admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            threading.Timer(self.refuse_for, self.admin.execute,
                            [f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true']).start()
        self.admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])


def test_a_terminated_connection_mid_skill_does_not_stop_the_skill(fetch_block, start, postgres):
    cut = CutOnce(postgres)
    session = orchestrate(start(fetch_block, min_success_states=30), on_update=cut).run()

    assert cut.done
    assert session.status == SessionStatus.COMPLETED, session.error
    assert set(session.skill_runs.values_list("status", flat=True)) == {SkillStatus.COMPLETED}
    outage = session.events.get(kind=SessionEvent.Kind.WARNING)
    assert "the database was unreachable" in outage.message and "training went on" in outage.message


def test_a_long_outage_stops_the_trainer_gracefully_and_keeps_its_states(fetch_block, start, postgres, settings):
    settings.GENHRL_DB_OUTAGE_SECONDS = 3
    cut = CutOnce(postgres, refuse_for=4.5)
    started = time.monotonic()
    session = orchestrate(start(fetch_block, min_success_states=100_000), on_update=cut).run()

    assert time.monotonic() - started < 60
    # Not the user's cancel and not a failure: resumable, saying why.
    assert session.status == SessionStatus.INTERRUPTED
    assert "database was unreachable" in session.error
    run = session.skill_runs.get(order=0)
    assert (run.status, run.exit_code) == (SkillStatus.CANCELLED, 0)  # SIGINT: a graceful stop
    on_disk = paths.count_success_states(paths.success_dir(run.skill))
    assert run.success_states == on_disk > 0


def test_a_connection_lost_as_a_skill_ends_does_not_lose_its_outcome(fetch_block, start, postgres):
    """The cut lands between the writes that record a finished skill and start the next one."""
    cut = CutOnce(postgres, needs_progress=False)

    def when_a_skill_completes(orch) -> None:
        if any(run.status == SkillStatus.COMPLETED for run in orch.runs):
            cut(orch)

    cut_hook = when_a_skill_completes
    session = orchestrate(start(fetch_block), on_update=cut_hook).run()

    assert cut.done
    assert session.status == SessionStatus.COMPLETED, session.error
    assert set(session.skill_runs.values_list("status", flat=True)) == {SkillStatus.COMPLETED}
