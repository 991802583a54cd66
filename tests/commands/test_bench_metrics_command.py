"""`manage.py bench_metrics` runs (small here) in its own throwaway database and writes its numbers."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from training.models import TrainingSession

pytestmark = pytest.mark.django_db


def test_bench_writes_series_comparison_and_history_numbers(tmp_path):
    output = tmp_path / "metrics.json"
    call_command("bench_metrics", "--sessions", "100", "--points", "5000", "--cache-dir", str(tmp_path / "cache"),
                 "--output", str(output), stdout=io.StringIO())
    report = json.loads(output.read_text())
    series = report["series"]
    assert series["points_in_file"] == 5000 and series["points_returned"] <= 2000
    assert series["first_request_ms"] > 0 and series["cached"]["median_ms"] > 0
    assert report["sessions"] == 100 and report["compare_page_4_sessions"]["median_ms"] > 0
    assert set(report["history_page"]) == {"unfiltered", "last_page", "task_owner_status", "robot_dates_sorted_by_task"}
    assert not TrainingSession.objects.exists()  # the portal's (here: the test's) database is untouched
