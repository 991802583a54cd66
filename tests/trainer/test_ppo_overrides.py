"""A session's PPO hyper-parameters (a sweep's learning rate, ...) reach rl-games' agent config for
every skill, over embedded.json's own `ppo`; the spec refuses anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import make_spec
from training.trainer.runner import agent_config, session_ppo
from training.trainer.spec import SpecError, TrainerSpec


def spec_with(tmp_path: Path, **ppo: object) -> TrainerSpec:
    path = make_spec(tmp_path, "fetch_block", "go_to_block", ppo=ppo)
    return TrainerSpec.load(path)


def test_the_session_beats_the_skill_and_the_defaults(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, learning_rate=3e-4, horizon_length=32, mini_epochs=2, entropy_coef=0.01)
    overrides = session_ppo({"learning_rate": 1e-2, "gamma": 0.95}, spec.ppo)

    config = agent_config(spec, discrete=False, env_name="x", overrides=overrides)["params"]["config"]

    assert (config["learning_rate"], config["horizon_length"], config["mini_epochs"], config["entropy_coef"]) == (
        3e-4, 32, 2, 0.01
    )
    assert config["gamma"] == 0.95  # the skill's own keys the session did not set stay
    assert config["minibatch_size"] * 2 == 32 * spec.num_envs


def test_without_session_options_the_skill_keeps_its_own(tmp_path: Path) -> None:
    spec = spec_with(tmp_path)
    config = agent_config(spec, discrete=True, env_name="x", overrides=session_ppo({"mini_epochs": 7}, spec.ppo))

    assert spec.ppo == {}
    assert config["params"]["config"]["mini_epochs"] == 7
    assert config["params"]["config"]["horizon_length"] == 8  # the composite default


@pytest.mark.parametrize("ppo", [{"gamma": 0.9}, {"horizon_length": 1.5}, {"learning_rate": "fast"}, {"mini_epochs": True}])
def test_the_spec_refuses_what_a_session_may_not_set(tmp_path: Path, ppo: dict) -> None:
    path = make_spec(tmp_path, "fetch_block", "go_to_block")
    data = json.loads(path.read_text())
    data["ppo"] = ppo
    with pytest.raises(SpecError):
        TrainerSpec.from_json(data)
