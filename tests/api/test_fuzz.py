"""schemathesis against the live API, every check: no 500, answers as documented, bad input refused.

The operations run on a real task (fetch_block of PointMass, see `FUZZ_CONFIG`); nothing trains
(the live server's worker is off), so starts queue, cancels cancel and the stream of a finished
session ends. The suite runs a bounded sample; `make fuzz` runs every phase with many more examples
(`FUZZ_EXAMPLES`, `FUZZ_PHASES`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import LiveDaphne
from training import services, sweeps
from training.lab_models import Preset
from training.models import SkillRun
from training.tokens import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ_CONFIG = """
[parameters]
"path.task_name" = "fetch_block"
"query.robot" = "PointMass"

# A sweep's rules across its fields (a grid takes lists, a range needs low < high, at most 200
# trials, one setting at least) are not JSON Schema: a schema-valid sweep may be refused with 400
# naming the field. Every other check (no 500, documented codes and shapes) still runs on it.
[[operations]]
include-operation-id = "sweep_create"
checks.positive_data_acceptance.enabled = false
parameters = {{ "body.task" = "fetch_block", "body.method" = "grid", "body.seeds" = [1], "body.space" = {{ "mini_epochs" = [2] }} }}

# Rows the lab operations act on (made by the test before the run).
[[operations]]
include-operation-id = "training_start"
parameters = {{ "query.preset" = "fuzz" }}

[[operations]]
include-operation-id = "preset_delete"
parameters = {{ "path.preset_id" = {preset_id} }}
# The first request deletes it; every later one is rightly answered 404.
warnings = false

[[operations]]
include-operation-id = "training_progress"
parameters = {{ "path.session_id" = {finished_id} }}

[[operations]]
include-operation-id-regex = "^sweep_(get|cancel)$"
parameters = {{ "path.sweep_id" = {sweep_id} }}

[[operations]]
include-operation-id = "queue_move"
parameters = {{ "path.session_id" = {session_id} }}

# A run with a TensorBoard file (written by the test), so its metrics answer 200 as well as 404.
[[operations]]
include-operation-id-regex = "^run_(metrics|series)$"
parameters = {{ "path.run_id" = {run_id}, "query.tag" = "rewards/step" }}

# Two real sessions, so the comparison answers 200 as well as 404 (random ids) and 400.
[[operations]]
include-operation-id = "compare"
parameters = {{ "query.sessions" = "{finished_id},{session_id}" }}
"""


def _run_with_metrics(session, runs_root: Path) -> SkillRun:
    """A run of `session` whose folder (inside the server's training folder) holds a small
    TensorBoard file written by TensorBoard's own writer: tag `rewards/step`, 50 points."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    skill = session.task.skills.order_by("order").first()
    run = SkillRun.objects.create(session=session, skill=skill, order=0)
    folder = runs_root / "fuzz" / str(run.pk)
    writer = EventFileWriter(str(folder / "summaries"))
    for i in range(50):
        value = summary_pb2.Summary.Value(tag="rewards/step", simple_value=float(i))
        writer.add_event(event_pb2.Event(wall_time=1e9 + i, step=i * 64, summary=summary_pb2.Summary(value=[value])))
    writer.close()
    SkillRun.objects.filter(pk=run.pk).update(run_dir=str(folder))
    return run


def test_schemathesis_finds_nothing(api_daphne: LiveDaphne, fetch_block, patrol, researcher, tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("schemathesis is not installed (requirements-test.txt)")
    token = ApiToken.issue(researcher, name="fuzz")[1]
    Preset.objects.create(owner=researcher, name="fuzz", options={"num_envs": 64})
    doomed = Preset.objects.create(owner=researcher, name="to-delete", options={})
    sweep = sweeps.create(fetch_block, owner=researcher, method="grid", space={"mini_epochs": [2]}, seeds=[1], start=False)
    finished = services.request_cancel(services.start_session(fetch_block, {}, owner=researcher), actor="test")
    queued = services.start_session(patrol, {}, owner=researcher)
    run = _run_with_metrics(finished, api_daphne.log_path.parent / "training")
    config = tmp_path / "schemathesis.toml"
    config.write_text(FUZZ_CONFIG.format(
        preset_id=doomed.pk, sweep_id=sweep.pk, session_id=queued.pk, finished_id=finished.pk, run_id=run.pk))
    argv = [
        executable, "--config-file", str(config), "run", api_daphne.url("/api/openapi.json"),
        # Every check runs: schemathesis enables all of them by default. (Not `--checks all`: a
        # check named on the command line overrides the per-operation setting in FUZZ_CONFIG.)
        "--header", f"Authorization: Bearer {token}",
        "--phases", os.environ.get("FUZZ_PHASES", "coverage,fuzzing"),
        "--max-examples", os.environ.get("FUZZ_EXAMPLES", "15"),
        "--seed", os.environ.get("FUZZ_SEED", "20261130"), "--request-timeout", "10", "--workers", "1",
        "--no-color",
    ]
    # Run in tmp_path: schemathesis writes its crash cache (`.schemathesis/`) into its working folder.
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=tmp_path)  # argv, no shell
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-6000:]
