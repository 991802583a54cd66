"""`manage.py bench_trainer` runs (tiny here) and writes its numbers; it leaves no session behind."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from training.models import TrainingSession

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_bench_writes_bare_and_supervised_numbers(fetch_block, tmp_path):
    output = tmp_path / "trainer.json"

    call_command(
        "bench_trainer", "--repeat", "1", "--frames", "4096", "--num-envs", "64", "--output", str(output),
        stdout=io.StringIO(),
    )

    report = json.loads(output.read_text())
    summary = report["summary"]
    assert summary["bare_wall_fps"] > 0 and summary["supervised_wall_fps"] > 0
    assert {"overhead_percent", "within_3_percent", "supervisor_cpu_percent_of_trainer"} <= set(summary)
    assert [r["frames"] >= 4096 for r in report["runs"]["bare"] + report["runs"]["supervised"]] == [True, True]
    assert not TrainingSession.objects.exists()
