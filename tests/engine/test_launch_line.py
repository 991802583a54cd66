"""The embedded launch line: an argv list, the run folder as working folder, no portal secrets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from training.config import TrainingConfig
from training.engine.planning import default_command_builder

pytestmark = pytest.mark.django_db


def test_embedded_trainer_works_in_its_run_folder(fetch_block, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("GENHRL_API_TOKEN", "t")
    spec = tmp_path / "runs" / "7" / "spec.json"
    spec.parent.mkdir(parents=True)
    spec.write_text("{}")

    command = default_command_builder(spec, TrainingConfig(), fetch_block.skills.first())

    assert command.argv[0] == sys.executable
    assert command.argv[-2:] == ["--spec", str(spec.resolve())]
    assert command.cwd == spec.parent
    assert "SECRET_KEY" not in command.env and "GENHRL_API_TOKEN" not in command.env
    assert Path(command.env["PYTHONPATH"].split(":")[0]) == Path(__file__).resolve().parents[2]
    assert command.env["OMP_NUM_THREADS"] == "1"
