"""Fixtures of the engine tests alone: worker processes on the test database (`tests.factories.Workers`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import Workers


@pytest.fixture
def workers(settings: Any, tmp_path: Path) -> Iterator[Workers]:
    """Start worker processes sharing this test's data folder and database."""
    data_dir = tmp_path / "data"
    (data_dir / "training").mkdir(parents=True)
    settings.GENHRL_RUNS_DIR = data_dir / "training"  # the test reads what the workers write
    pool = Workers(data_dir)
    try:
        yield pool
    finally:
        pool.stop_all()
