"""The trainer's structured stdout: one JSON record per line, and the parsers the orchestrator uses.

Pure standard library: the orchestrator (a Django process) imports this module to read a trainer's
output, and the trainer imports it to write that output.

A record is a line that starts with `{` and parses as a JSON object with a string `kind`. Every
other line (rl-games' prints, Isaac Lab's banners) is log text. rl-games' own per-epoch line is
parsed by `parse_epoch_line`, so an Isaac Lab run that is not ours can still be followed.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from typing import IO, Any

KINDS = ("start", "progress", "done", "error", "evaluation")

# The fields each kind always carries (besides `kind` and `time`); values may be null where the
# doc says so (e.g. `checkpoint`). Extra fields may appear and must be ignored by readers.
FIELDS: dict[str, tuple[str, ...]] = {
    "start": ("skill", "backend", "num_envs", "pid", "start_states"),
    "progress": (
        "epoch",
        "frames",
        "fps",
        "mean_reward",
        "mean_episode_length",
        "success_rate",
        "success_states",
        "checkpoint",
    ),
    "done": ("reason", "frames", "success_states", "checkpoint", "policy_dir"),
    "error": ("message",),
    # evaluate mode only (training/trainer/evaluate.py): the last line of a complete evaluation
    "evaluation": ("episodes", "successes", "success_rate", "mean_return", "video"),
}

DONE_REASONS = ("target_reached", "stopped", "max_frames", "terminated")

# rl-games 1.6.x `print_statistics` (common/a2c_common.py). Four variants, depending on whether
# max_epochs and max_frames are -1: "epoch: N" or "epoch: N/M", "frames: F" or "frames: F/MAXF".
EPOCH_LINE = re.compile(
    r"fps step: (?P<fps_step>\d+) fps step and policy inference: (?P<fps_step_inference>\d+) "
    r"fps total: (?P<fps_total>\d+) epoch: (?P<epoch>\d+)(?:/(?P<max_epochs>\d+))? "
    r"frames: (?P<frames>\d+)(?:/(?P<max_frames>\d+))?"
)


def make_record(kind: str, **fields: Any) -> dict[str, Any]:
    """A record dict: `kind`, wall-clock `time` taken now, then the fields (NaN/inf become null)."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    record: dict[str, Any] = {"kind": kind, "time": time.time()}
    for key, value in fields.items():
        record[key] = _jsonable(value)
    return record


def format_record(record: dict[str, Any]) -> str:
    # allow_nan=False: a NaN would make the line invalid JSON for strict readers (browsers).
    return json.dumps(record, allow_nan=False, separators=(",", ":"))


def emit(kind: str, stream: IO[str] | None = None, **fields: Any) -> dict[str, Any]:
    """Print one record as one line and flush, so the orchestrator sees it at once."""
    record = make_record(kind, **fields)
    out = stream if stream is not None else sys.stdout
    # One write call per line: rl-games prints to the same stream and must not split our line.
    out.write(format_record(record) + "\n")
    out.flush()
    return record


def emit_done(
    reason: str,
    *,
    frames: int | None,
    success_states: int | None,
    checkpoint: Any = None,
    policy_dir: Any = None,
    signal: str | None = None,
) -> dict[str, Any]:
    """The last record of a run: `done` with its reason (DONE_REASONS); the one writer of it.

    A stop by SIGTERM (or a second SIGINT) is `terminated(...)`: no frames, checkpoint or policy.
    """
    extra = {"signal": signal} if signal is not None else {}
    return emit(
        "done", reason=reason, **extra, frames=frames, success_states=success_states,
        checkpoint=checkpoint, policy_dir=policy_dir,
    )


def terminated(signal_name: str, success_states: int | None = None) -> dict[str, Any]:
    """`done` for a run stopped by SIGTERM or a second SIGINT, after its success states were flushed."""
    return emit_done("terminated", signal=signal_name, frames=None, success_states=success_states)


def parse_line(line: str) -> dict[str, Any] | None:
    """The record on this stdout line, or None when the line is ordinary log text."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("kind"), str):
        return None
    return value


def parse_epoch_line(line: str) -> dict[str, int | None] | None:
    """rl-games' per-epoch statistics line as numbers, or None if the line is not one.

    `frames` is what rl-games printed: in the continuous agent it lags one epoch behind (epoch 1
    prints 0), see isaaclab-and-rlgames.md §1.3.
    """
    match = EPOCH_LINE.search(line)
    if match is None:
        return None
    return {key: (int(value) if value is not None else None) for key, value in match.groupdict().items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        # numpy / torch scalars: records are plain JSON
        return _jsonable(value.item())
    if hasattr(value, "__fspath__"):
        return str(value)
    return value
