"""A trainer printing a flood of lines never blocks on a full pipe, and the database stays small."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.factories import orchestrate
from training.models import LogLine, SessionStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]

LINES = 200_000


def test_flood_of_output_finishes_and_is_kept_in_the_log_file(fetch_block, start):
    started = time.monotonic()
    session = orchestrate(start(fetch_block), "--flood", str(LINES)).run()
    took = time.monotonic() - started

    assert session.status == SessionStatus.COMPLETED
    assert took < 30
    run = session.skill_runs.get(order=0)
    log = Path(run.run_dir) / "trainer.log"
    with log.open("rb") as f:
        assert sum(1 for _ in f) >= LINES
    assert run.log_line_count >= LINES
    # Only a tail is in the database, marked where lines were left out.
    stored = LogLine.objects.filter(skill_run=run)
    assert stored.count() < 20_000
    assert stored.filter(stream="system", text__contains="lines not stored here").exists()
    assert stored.filter(text__startswith="epoch ").exists()
    assert stored.filter(text="binary \ufffd garbage \u00ff").exists()
