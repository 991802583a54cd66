"""Files in run folders are data, never code: nothing the portal reads from them is unpickled.

A `.pt` file is a pickle, and a pickle can run any code it names. These files come from the
trainer, GenHRL's generated code, Isaac Lab, or anyone who can write the data folder; the web
server counts them on a plain user's request. Before issue 9 a file the safe loader refused was
loaded again with `weights_only=False`, running its code inside the web server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.factories import Payload, evil_file
from training.trainer.frozen import FrozenPolicyError, load_policy_weights
from training.trainer.safeload import UnsafeFileError, safe_load
from training.trainer.success import StateCounter, count_states, load_start_states


def test_a_state_file_that_runs_code_is_counted_unreadable_and_never_run(tmp_path: Path) -> None:
    folder = tmp_path / "success_states"
    folder.mkdir()
    marker = tmp_path / "pwned"
    evil_file(folder / "success_states_reach_20260101_120000.pt", marker)

    assert count_states(folder) == 0
    assert StateCounter().count_folder(folder) == (0, 1)
    assert load_start_states(folder) is None
    with pytest.raises(UnsafeFileError):
        safe_load(folder / "success_states_reach_20260101_120000.pt")
    assert not marker.exists()


def test_genhrl_state_lists_with_numpy_numbers_load_safely(tmp_path: Path) -> None:
    states = [{"robot": {"pos": torch.zeros(3)}, "t": np.float32(0.5), "step": np.int64(3)} for _ in range(4)]
    torch.save(states, tmp_path / "success_states_reach_20260101_120000.pt")
    assert StateCounter().count_folder(tmp_path) == (4, 0)


def test_files_that_name_their_count_are_not_opened(tmp_path: Path) -> None:
    # Neither is a loadable pickle: counting them reads only their names.
    (tmp_path / "ss-20260101T120000Z-abcdef12-n5.pt").write_bytes(b"not a pickle")
    (tmp_path / "success_states_reach_20260101_120000_abcdef12_n7.pt").write_bytes(b"not a pickle")
    assert StateCounter().count_folder(tmp_path) == (12, 0)


def test_a_policy_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": Payload(marker)}, tmp_path / "policy.pth")
    with pytest.raises(FrozenPolicyError, match="cannot be loaded safely"):
        load_policy_weights(tmp_path / "policy.pth")
    assert not marker.exists()


def test_a_published_policy_loads_weights_only(tmp_path: Path) -> None:
    checkpoint = {"model": {"_orig_mod.w": torch.ones(2)}, "epoch": 3, "last_mean_rewards": np.float32(1.5)}
    torch.save(checkpoint, tmp_path / "policy.pth")
    weights = load_policy_weights(tmp_path / "policy.pth")
    assert list(weights) == ["w"] and torch.equal(weights["w"], torch.ones(2))
