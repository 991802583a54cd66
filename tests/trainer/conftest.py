"""Fixtures of the trainer tests alone: `fetch_block` trained once, for several tests to read.

The trainer subprocess is the real thing (`python -u -m training.trainer --spec ...`, own process
group, argv list) with tiny settings: 64 envs, small success targets. The helpers that write specs
and run the trainer (`make_spec`, `run_trainer`, ...) are in `tests/factories.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import FetchBlock, make_spec, run_trainer, sub_skill


@pytest.fixture(scope="session")
def fetch_block_runs(tmp_path_factory: pytest.TempPathFactory) -> FetchBlock:
    """fetch_block trained bottom-up with tiny settings: go_to_block (with video), go_to_goal
    (from go_to_block's success states), then the composite fetch_block over both."""
    root = tmp_path_factory.mktemp("fetch_block")
    primitive = {"min_success_rate": 0.8}
    block = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "go_to_block",
            spec_changes=primitive,
            video=True,
            video_interval=40,
            video_length=20,
        )
    )
    assert block.returncode == 0, block.stderr[-3000:]
    goal = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "go_to_goal",
            spec_changes=primitive,
            start_states_dir=root / "go_to_block" / "success_states",
        )
    )
    assert goal.returncode == 0, goal.stderr[-3000:]
    composite = run_trainer(
        make_spec(
            root,
            "fetch_block",
            "fetch_block",
            is_primitive=False,
            spec_changes={"min_success_rate": 0.5},
            min_frames=2048,
            sub_skills=[
                sub_skill("fetch_block", "go_to_block", Path(block.done["policy_dir"])),
                sub_skill("fetch_block", "go_to_goal", Path(goal.done["policy_dir"])),
            ],
        )
    )
    assert composite.returncode == 0, composite.stderr[-3000:]
    return FetchBlock(root, block, goal, composite)
