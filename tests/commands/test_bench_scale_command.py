"""`manage.py bench_scale`: refuses what it must not touch; on PostgreSQL, a tiny run end to end."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from training.models import TrainingSession


def bench(*args: str) -> str:
    out = StringIO()
    call_command("bench_scale", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_bad_input_is_refused_and_nothing_is_built(tmp_path):
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            bench("--small", "--output", str(tmp_path / "scale.json"))
    else:
        for args, problem in [
            (("--database", "Bad-Name"), "lower-case name"),
            (("--database", connection.settings_dict["NAME"]), "configured database"),
            (("--scale", "0"), "--scale"),
            (("--reuse", "--database", "no_such_bench_database"), "no database"),
            (("--database", "postgres"), "not made by bench_scale"),  # exists, someone else's: never dropped
        ]:
            with pytest.raises(CommandError, match=problem):
                bench(*args, "--output", str(tmp_path / "scale.json"))
    assert not (tmp_path / "scale.json").exists()
    assert not TrainingSession.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_tiny_history_is_built_measured_and_dropped(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("bench_scale needs PostgreSQL")
    name = f"{connection.settings_dict['NAME']}_scale"[:60]
    output = tmp_path / "scale.json"

    bench("--database", name, "--scale", "0.002", "--repeat", "3", "--viewers", "0", "--drop", "--output", str(output))

    report = json.loads(output.read_text())
    assert report["rows"]["training_trainingsession"] == 20
    assert report["rows"]["training_metricpoint"] > 0
    for page in ("dashboard", "dashboard_card", "history_page", "admin_skillruns", "admin_metricpoints"):
        assert report["pages"][page]["queries"] > 0 and report["pages"][page]["bytes"] > 0, page
    assert report["cleanup_dry_run"]["queries"] > 0
    # The bench database is gone, and the configured one is untouched.
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        assert cursor.fetchone() is None
    assert not TrainingSession.objects.exists()
