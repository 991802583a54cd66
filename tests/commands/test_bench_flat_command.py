"""`manage.py bench_flat` refuses what it cannot measure before running anything (its measurement
itself is the README's table: minutes of training, not a test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


def test_bench_flat_checks_its_options_first(tmp_path: Path) -> None:
    output = tmp_path / "flat.json"
    with pytest.raises(CommandError, match="not a demo task: nope"):
        call_command("bench_flat", "--tasks", "nope", "--output", str(output))
    with pytest.raises(CommandError, match="whole numbers"):
        call_command("bench_flat", "--seeds", "1,x", "--output", str(output))
    assert not output.exists()
