"""Success states on disk: unique names, atomic files, counting states (ours and GenHRL's lists)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

from training.trainer.signals import Shutdown, Terminated
from training.trainer.success import (
    STATE_FILE,
    StateCounter,
    SuccessStore,
    count_states,
    load_start_states,
    state_file_name,
)


def _genhrl_state() -> dict:
    """One entry of GenHRL's list: the per-env snapshot of `env.scene.get_state(is_relative=True)`."""
    return {
        "articulation": {
            "robot": {
                "joint_position": torch.zeros(37),
                "joint_velocity": torch.zeros(37),
                "root_pose": torch.zeros(7),
                "root_velocity": torch.zeros(6),
            }
        },
        "rigid_object": {"Object1": {"root_pose": torch.zeros(7), "root_velocity": torch.zeros(6)}},
    }


def test_file_names_are_unique_even_within_one_second() -> None:
    now = datetime(2026, 11, 24, 3, 0, 0, tzinfo=timezone.utc)  # noqa: UP017
    names = {state_file_name(5, now) for _ in range(200)}
    assert len(names) == 200
    match = STATE_FILE.match(next(iter(names)))
    assert match and match["utc"] == "20261124T030000Z" and match["count"] == "5"


def test_store_flushes_buffer_to_uniquely_named_files(tmp_path: Path) -> None:
    store = SuccessStore(tmp_path / "ss")
    assert store.flush() is None  # nothing buffered, nothing written
    store.add(torch.ones(3, 4))
    store.add(torch.zeros(0, 4))
    store.add(torch.full((2, 4), 2.0))
    assert (store.buffered, store.total) == (5, 5)
    first = store.flush()
    store.add(torch.ones(1, 4))
    second = store.flush()
    assert first is not None and second is not None and first != second
    assert STATE_FILE.match(first.name)["count"] == "5"
    assert torch.equal(torch.load(first, weights_only=True)[3], torch.full((4,), 2.0))
    assert (store.saved, store.buffered, store.total) == (6, 0, 6)
    assert sorted(p.name for p in (tmp_path / "ss").iterdir()) == sorted([first.name, second.name])
    # a new run in the same folder counts the earlier states as existing
    assert SuccessStore(tmp_path / "ss").total == 6


def test_flush_is_not_interrupted_by_sigterm_midway(tmp_path: Path) -> None:
    """A terminate arriving during the write is raised after the file is in place, not before."""
    shutdown = Shutdown()
    store = SuccessStore(tmp_path, critical=shutdown.critical)
    store.add(torch.ones(4, 4))
    original = torch.save

    def save_then_signal(obj: object, path: object) -> None:
        original(obj, path)
        shutdown._on_sigterm(15, None)  # the handler, as if the signal arrived right now

    torch.save = save_then_signal  # type: ignore[assignment]
    try:
        with pytest.raises(Terminated) as caught:
            store.flush()
    finally:
        torch.save = original  # type: ignore[assignment]
    assert caught.value.exit_code == 143
    assert count_states(tmp_path) == 4 and store.buffered == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_counting_reads_our_names_and_genhrl_lists(tmp_path: Path) -> None:
    store = SuccessStore(tmp_path)
    store.add(torch.ones(7, 4))
    store.flush()
    torch.save(
        [_genhrl_state() for _ in range(12)],
        tmp_path / "success_states_walk_to_Small_Block_20250101_120000.pt",
    )
    torch.save(
        [_genhrl_state() for _ in range(3)],
        tmp_path / "success_states_walk_to_Small_Block_20250101_120001.pt",
    )
    torch.save(torch.zeros(9, 4), tmp_path / "legacy.pt")  # a bare tensor: rows are states
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".ss-in-flight.pt.tmp").write_bytes(b"")
    (tmp_path / "broken.pt").write_bytes(b"not a pickle")
    assert count_states(tmp_path) == 7 + 12 + 3 + 9
    assert count_states(tmp_path / "missing") == 0


def test_counter_loads_a_genhrl_file_once_per_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "success_states_a_1.pt"
    torch.save([_genhrl_state()] * 2, path)
    counter = StateCounter()
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    assert counter.count(tmp_path) == 2
    assert counter.count(tmp_path) == 2
    assert len(loads) == 1
    torch.save([_genhrl_state()] * 5, path)
    assert counter.count(tmp_path) == 5


def test_load_start_states_reads_our_files_and_caps_the_number(tmp_path: Path) -> None:
    assert load_start_states(tmp_path) is None
    store = SuccessStore(tmp_path)
    store.add(torch.arange(12.0).reshape(3, 4))
    store.flush()
    store.add(torch.ones(5, 4))
    store.flush()
    torch.save([_genhrl_state()], tmp_path / "success_states_x_1.pt")  # not usable in 2-D: skipped
    states = load_start_states(tmp_path)
    assert states is not None and states.shape == (8, 4)
    capped = load_start_states(tmp_path, max_states=4)
    assert capped is not None and capped.shape == (4, 4)
