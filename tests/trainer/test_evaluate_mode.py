"""The trainer's evaluate mode on a composite: the published fetch_block policy drives its frozen
sub-skills for N episodes and the last record is the evaluation (`fetch_block_runs`, shared)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

import tests.factories as factories
from tests.factories import FetchBlock, run_trainer
from training.trainer.launch import build_command


def _eval_spec(runs: FetchBlock, folder: Path, episodes: int = 16) -> Path:
    spec = runs.fetch_block.spec
    folder.mkdir(parents=True, exist_ok=True)
    spec.update(run_dir=str(folder), video=True, video_length=30,
                evaluate={"episodes": episodes, "policy_dir": runs.fetch_block.done["policy_dir"]})
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def evaluate_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_trainer` launches `... --spec SPEC --evaluate` (the launch line engine/evaluation.py uses)."""

    def with_flag(*args: Any, **kwargs: Any) -> tuple[list[str], dict[str, str], str]:
        argv, env, cwd = build_command(*args, **kwargs)
        return [*argv, "--evaluate"], env, cwd

    monkeypatch.setattr(factories, "build_command", with_flag)


def test_evaluate_a_composite_over_its_frozen_sub_skills(
    fetch_block_runs: FetchBlock, tmp_path: Path, evaluate_flag: None
) -> None:
    run = run_trainer(_eval_spec(fetch_block_runs, tmp_path / "eval"))
    assert run.returncode == 0, run.stderr[-3000:]
    (result,) = run.of("evaluation")
    assert result["episodes"] == 16 and 0 <= result["successes"] <= 16
    assert result["success_rate"] == result["successes"] / 16 and isinstance(result["mean_return"], float)
    assert Path(result["video"]).is_file() and Path(result["video"]).is_relative_to(tmp_path / "eval")
    assert run.records[-1]["kind"] == "evaluation" and not run.of("done")

    # Stopped before its episodes end: an error record, never an evaluation.
    stopped = run_trainer(_eval_spec(fetch_block_runs, tmp_path / "stopped", episodes=2_000),
                          send=signal.SIGTERM, when=lambda r: r["kind"] == "start")
    assert stopped.returncode != 0 and not stopped.of("evaluation")
