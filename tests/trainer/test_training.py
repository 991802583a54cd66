"""Real trainer subprocesses on the embedded backend (tiny settings): records, outputs, signals."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
import yaml

from tests.factories import FetchBlock, make_spec, run_trainer
from training.trainer.records import FIELDS
from training.trainer.success import STATE_FILE, count_states

pytestmark = [
    pytest.mark.training,
    # rl-games imported in this process (frozen policies) trips these in torch and numpy
    pytest.mark.filterwarnings("ignore:`torch.jit.script:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
]


def _has_fields(record: dict, kind: str) -> None:
    missing = [name for name in ("time", *FIELDS[kind]) if name not in record]
    assert not missing, f"{kind} record lacks {missing}: {record}"


def test_primitive_trains_to_target_and_prints_records(fetch_block_runs: FetchBlock) -> None:
    run = fetch_block_runs.go_to_block
    assert run.returncode == 0
    kinds = [r["kind"] for r in run.records]
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds and "error" not in kinds
    start, *progress, done = run.records
    _has_fields(start, "start")
    assert (start["skill"], start["backend"], start["num_envs"]) == ("go_to_block", "embedded", 64)
    for record in progress:
        _has_fields(record, "progress")
    assert [r["epoch"] for r in progress] == list(range(1, len(progress) + 1))
    frames = [r["frames"] for r in progress]
    assert frames == sorted(frames) and frames[0] > 0
    assert all(r["fps"] > 0 for r in progress)
    assert any(r["mean_reward"] is not None for r in progress)
    times = [r["time"] for r in run.records]
    assert times == sorted(times)

    _has_fields(done, "done")
    assert done["reason"] == "target_reached"
    assert done["success_states"] >= 20
    assert progress[-1]["success_rate"] >= 0.8
    assert done["frames"] == progress[-1]["frames"]
    # the last progress record names the final checkpoint rl-games saved when we stopped it
    assert progress[-1]["checkpoint"] == done["checkpoint"]
    assert Path(done["checkpoint"]).is_file() and Path(done["checkpoint"]).name.startswith(
        "last_go_to_block_ep_"
    )
    # rl-games' own stdout stays in the log
    assert any(line.startswith("fps step:") for line in run.lines)


def test_run_folder_has_checkpoints_summaries_params_and_policy(fetch_block_runs: FetchBlock) -> None:
    run = fetch_block_runs.go_to_block
    run_dir = Path(run.spec["run_dir"])
    assert any((run_dir / "nn").glob("*.pth"))
    assert any((run_dir / "summaries").glob("events.out.tfevents.*"))
    agent = yaml.safe_load((run_dir / "params" / "agent.yaml").read_text())
    config = agent["params"]["config"]
    assert (config["device"], config["torch_compile"], agent["params"]["torch_threads"]) == ("cpu", False, 1)
    assert config["normalize_input"] is True
    policy = Path(run.done["policy_dir"])
    assert policy == run_dir / "policy"
    assert sorted(p.name for p in policy.iterdir()) == ["agent.yaml", "policy.pth", "skill.json"]
    info = json.loads((policy / "skill.json").read_text())
    assert info["action"] == {"type": "continuous", "dim": 2} and info["obs_dim"] == 4


def test_success_states_on_disk_match_the_done_record(fetch_block_runs: FetchBlock) -> None:
    for run in (fetch_block_runs.go_to_block, fetch_block_runs.go_to_goal, fetch_block_runs.fetch_block):
        success_dir = Path(run.spec["success_dir"])
        files = sorted(success_dir.iterdir())
        assert files and all(STATE_FILE.match(f.name) for f in files), [f.name for f in files]
        assert count_states(success_dir) == run.done["success_states"]
        # the count in the name is the truth inside the file: a float tensor [count, 4]
        for path in files:
            states = torch.load(path, weights_only=True)
            assert states.shape == (int(STATE_FILE.match(path.name)["count"]), 4)


def test_video_clips_are_written_when_video_is_on(fetch_block_runs: FetchBlock) -> None:
    videos = Path(fetch_block_runs.go_to_block.spec["run_dir"]) / "videos" / "train"
    clips = sorted(videos.glob("rl-video-step-*.mp4"))
    assert clips, "no clip written"
    assert clips[0].name == "rl-video-step-0.mp4"
    assert all(c.stat().st_size > 1000 for c in clips)
    assert not list(videos.glob(".*"))  # no half-written files left behind
    assert not (Path(fetch_block_runs.go_to_goal.spec["run_dir"]) / "videos").exists()


def test_next_sibling_starts_from_previous_success_states(fetch_block_runs: FetchBlock) -> None:
    first = fetch_block_runs.go_to_block
    second = fetch_block_runs.go_to_goal
    assert first.of("start")[0]["start_states"] == 0
    assert second.of("start")[0]["start_states"] == first.done["success_states"] > 0
    assert second.done["reason"] == "target_reached"


def test_composite_loads_frozen_sub_skills_and_trains(fetch_block_runs: FetchBlock) -> None:
    run = fetch_block_runs.fetch_block
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.done["reason"] == "target_reached"
    assert run.done["success_states"] >= 20
    # both frozen sub-skills were loaded from their published policy files (weights only)
    for name in ("go_to_block", "go_to_goal"):
        loaded = Path(getattr(fetch_block_runs, name).done["policy_dir"]) / "policy.pth"
        assert any(f"loading checkpoint '{loaded}'" in line for line in run.lines)
    agent = yaml.safe_load((Path(run.done["policy_dir"]) / "agent.yaml").read_text())
    assert agent["params"]["algo"]["name"] == "a2c_discrete"
    info = json.loads((Path(run.done["policy_dir"]) / "skill.json").read_text())
    assert info["action"] == {"type": "discrete", "n": 2}
    assert info["sub_skills"] == ["go_to_block", "go_to_goal"]


def test_composite_of_composites_runs_frozen_composite_in_process(fetch_block_runs: FetchBlock) -> None:
    """A level-2 skill over the trained fetch_block: its frozen composite runs its own frozen
    primitives (recursion), and a few decisions of the level-2 env complete the task."""
    from training.trainer.embedded import build_tree
    from training.trainer.envs import CompositeEnv
    from training.trainer.frozen import FrozenComposite, build_controller
    from training.trainer.spec import TrainerSpec
    from training.trainer.success import SuccessStore
    from training.trainer.world import ObjectSet, PointMassWorld

    composite = fetch_block_runs.fetch_block
    spec = TrainerSpec.from_json(
        {
            **composite.spec,
            "skill": "fetch_twice",
            "level": 2,
            "success_dir": str(fetch_block_runs.root / "fetch_twice" / "success_states"),
            "skill_spec": {"type": "sequence"},
            "sub_skills": [
                {
                    "name": "fetch_block",
                    "is_primitive": False,
                    "skill_spec": composite.spec["skill_spec"],
                    "policy_dir": composite.done["policy_dir"],
                    "sub_skills": composite.spec["sub_skills"],
                }
            ],
        }
    )
    objects = ObjectSet.from_config(spec.object_config)
    node, policy_dirs = build_tree(spec, objects)
    assert policy_dirs["fetch_block/go_to_goal"] == Path(composite.spec["sub_skills"][1]["policy_dir"])
    world = PointMassWorld(32, objects, seed=5)
    controllers = [build_controller(child, policy_dirs, 32) for child in node.children]
    assert isinstance(controllers[0], FrozenComposite)
    store = SuccessStore(spec.success_dir)
    env = CompositeEnv(world, node, controllers, store)
    env.reset()
    completed = 0
    for _ in range(3):
        _, reward, done, _ = env.step(torch.zeros(32, dtype=torch.long))
        completed += int(done.sum())
    assert completed >= 16, "the frozen fetch_block should finish most episodes"
    assert store.buffered >= 16


def test_sigint_stops_gracefully_with_final_checkpoint(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "fetch_block", "go_to_block", min_success_states=10**9, max_frames=None)
    run = run_trainer(
        spec, send=signal.SIGINT, when=lambda r: r["kind"] == "progress" and r["success_states"] > 0
    )
    assert run.returncode == 0, run.stderr[-2000:]
    done = run.done
    assert done["reason"] == "stopped"
    assert Path(done["checkpoint"]).is_file() and Path(done["checkpoint"]).name.startswith("last_")
    assert (Path(done["policy_dir"]) / "policy.pth").is_file()
    assert done["success_states"] > 0
    assert count_states(tmp_path / "go_to_block" / "success_states") == done["success_states"]
    assert "SIGINT" in run.stderr


def test_sigterm_flushes_success_states_and_exits_143(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "fetch_block", "go_to_block", min_success_states=10**9, max_frames=None)
    run = run_trainer(
        spec, send=signal.SIGTERM, when=lambda r: r["kind"] == "progress" and r["success_states"] > 0
    )
    assert run.returncode == 143, run.stderr[-2000:]
    done = run.done
    assert (done["reason"], done["signal"], done["checkpoint"], done["policy_dir"]) == (
        "terminated",
        "SIGTERM",
        None,
        None,
    )
    on_disk = count_states(tmp_path / "go_to_block" / "success_states")
    assert on_disk == done["success_states"] >= run.signalled_after["success_states"] > 0
    assert not (Path(run.spec["run_dir"]) / "policy").exists()


def test_bad_spec_prints_an_error_record(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "fetch_block", "go_to_block", num_envs="many")
    run = run_trainer(spec)
    assert run.returncode == 2
    (error,) = run.of("error")
    assert "num_envs" in error["message"]
