"""records.parse_line / parse_epoch_line against real captured trainer stdout (tests/data/trainer)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from training.trainer import records

DATA = Path(__file__).resolve().parents[1] / "data" / "trainer"


def _lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines(keepends=True)


def test_parse_line_finds_every_record_in_a_real_log() -> None:
    lines = _lines("embedded_primitive.log")
    parsed = [records.parse_line(line) for line in lines]
    found = [r for r in parsed if r is not None]
    # exactly the JSON lines are records; rl-games' prints are not
    assert len(found) == sum(1 for line in lines if line.startswith('{"kind"'))
    assert [r["kind"] for r in found][0] == "start" and found[-1]["kind"] == "done"
    for record in found:
        for name in ("time", *records.FIELDS[record["kind"]]):
            assert name in record, (record["kind"], name)
    assert found[-1]["reason"] in records.DONE_REASONS
    assert (
        records.parse_line("fps step: 1 fps step and policy inference: 2 fps total: 3 epoch: 1 frames: 0")
        is None
    )


@pytest.mark.parametrize(
    "line",
    [
        "",
        "{not json",
        '{"no_kind": 1}',
        '{"kind": 3}',
        "[1, 2]",
        "saving next best rewards:  [9.828691]",
        "=> saving checkpoint '/RUN/run/nn/go_to_block.pth'",
    ],
)
def test_parse_line_ignores_log_text(line: str) -> None:
    assert records.parse_line(line) is None


def test_parse_line_accepts_surrounding_whitespace() -> None:
    assert records.parse_line('  {"kind": "error", "time": 1.0, "message": "x"}\r\n') == {
        "kind": "error",
        "time": 1.0,
        "message": "x",
    }


@pytest.mark.parametrize(
    ("name", "max_epochs", "max_frames"),
    [
        ("embedded_primitive.log", None, None),  # epoch: N frames: F
        ("embedded_max_epochs.log", 6, None),  # epoch: N/M frames: F
        ("embedded_max_frames.log", None, 6000),  # epoch: N frames: F/MAXF
        ("embedded_max_epochs_and_frames.log", 6, 50000),  # epoch: N/M frames: F/MAXF
    ],
)
def test_epoch_line_parser_reads_all_four_rl_games_variants(
    name: str, max_epochs: int | None, max_frames: int | None
) -> None:
    lines = _lines(name)
    epochs = [p for p in map(records.parse_epoch_line, lines) if p is not None]
    assert len(epochs) == sum(1 for line in lines if line.startswith("fps step:"))
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    assert {e["max_epochs"] for e in epochs} == {max_epochs}
    assert {e["max_frames"] for e in epochs} == {max_frames}
    assert all(e["fps_step"] > 0 and e["fps_step_inference"] > 0 and e["fps_total"] > 0 for e in epochs)
    # the printed frames lag one epoch behind ours (§1.3): epoch 1 prints 0
    assert epochs[0]["frames"] == 0
    progress = [r for r in map(records.parse_line, lines) if r is not None and r["kind"] == "progress"]
    for epoch, record in zip(epochs, progress, strict=False):
        assert record["epoch"] == epoch["epoch"]
        assert record["frames"] == epoch["frames"] + 1024  # 64 envs x horizon 16


def test_epoch_line_parser_finds_the_line_inside_a_prefixed_line() -> None:
    parsed = records.parse_epoch_line(
        "[rank0] fps step: 1612008 fps step and policy inference: 171620 fps total: 45679 epoch: 1/100000 frames: 0"
    )
    assert parsed == {
        "fps_step": 1612008,
        "fps_step_inference": 171620,
        "fps_total": 45679,
        "epoch": 1,
        "max_epochs": 100000,
        "frames": 0,
        "max_frames": None,
    }


def test_emit_writes_one_flushed_json_line_and_nulls_non_finite_numbers() -> None:
    out = io.StringIO()
    record = records.emit(
        "progress",
        out,
        epoch=1,
        frames=10,
        fps=1.0,
        mean_reward=math.nan,
        mean_episode_length=math.inf,
        success_rate=None,
        success_states=0,
        checkpoint=Path("/x/y.pth"),
    )
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    decoded = json.loads(text)
    assert decoded == record
    assert decoded["mean_reward"] is None and decoded["mean_episode_length"] is None
    assert decoded["checkpoint"] == "/x/y.pth"
    assert records.parse_line(text) == decoded


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        records.make_record("finished")


def test_the_success_rate_gate_waits_for_a_whole_episode_per_environment():
    """With thousands of environments the first epochs end only the quick successes: a rate of 1.0
    then is survivor bias, not a trained policy (issue 10: a primitive "done" after 6 epochs at 8192
    environments, whose composite then never learned)."""
    from types import SimpleNamespace

    from training.trainer.runner import ProgressObserver

    class Progress:
        def epoch_outcomes(self):
            return (9000, 9000)  # every ended episode a success

        def success_states(self):
            return 10_000

        def flush(self, force):
            pass

    empty = SimpleNamespace(current_size=0)
    spec = SimpleNamespace(num_envs=8192, min_success_states=50, min_frames=0, max_frames=None)
    observer = ProgressObserver(
        spec, Progress(), SimpleNamespace(stop_requested=False), min_success_rate=0.95, episode_frames=100,
        emit=lambda *args, **kwargs: None,
    )
    observer.algo = SimpleNamespace(frame=0, game_rewards=empty, game_lengths=empty, max_epochs=-1)
    for epoch, steps in enumerate((16, 32, 48, 64, 80, 96), start=1):
        observer.algo.frame = steps * spec.num_envs
        observer.after_print_stats(observer.algo.frame, epoch, 1.0)
        assert observer.reason is None, epoch  # fewer than 100 steps per environment so far
    observer.algo.frame = 112 * spec.num_envs
    observer.after_print_stats(observer.algo.frame, 7, 1.0)
    assert observer.reason == "target_reached"
