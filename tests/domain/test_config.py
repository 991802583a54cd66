"""TrainingConfig.from_data: the validation shared by `manage.py train` and the web."""

from __future__ import annotations

import pytest

from training.config import ConfigError, TrainingConfig

pytestmark = pytest.mark.django_db


def test_defaults_follow_the_backend(fetch_block, settings):
    embedded = TrainingConfig.from_data({}, task=fetch_block)
    assert (embedded.backend, embedded.num_envs, embedded.max_time, embedded.min_success_states) == (
        "embedded", 512, 180.0, 50,
    )
    assert (embedded.seed, embedded.new_run, embedded.skip_complete, embedded.headless) == (42, False, True, True)
    assert (embedded.video, embedded.video_interval, embedded.video_length) == (False, 2000, 200)

    isaaclab = TrainingConfig.from_data({"backend": "isaaclab"}, task=fetch_block)
    assert isaaclab.num_envs == 4096
    assert isaaclab.min_steps_primitive > embedded.min_steps_primitive

    settings.GENHRL_DEFAULT_BACKEND = "isaaclab"
    assert TrainingConfig.from_data({}).backend == "isaaclab"  # no task: the site default


def test_form_and_json_values_are_accepted():
    config = TrainingConfig.from_data(
        {"max_time": "0.5", "num_envs": 1024.0, "seed": "7", "video": "on", "skip_complete": "false",
         "new_run": None, "backend": "embedded"}
    )
    assert (config.max_time, config.num_envs, config.seed, config.video, config.skip_complete) == (
        0.5, 1024, 7, True, False,
    )
    assert config.max_time_seconds == 30.0


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_data(
            {"backend": "embedded", "num_envs": 99999, "seed": True, "max_time": float("nan"),
             "video": "maybe", "colour": "red"}
        )
    assert set(exc.value.errors) == {"num_envs", "seed", "max_time", "video", "colour"}
    assert exc.value.errors["colour"] == ["unknown option"]


def test_unknown_backend():
    with pytest.raises(ConfigError) as exc:
        TrainingConfig.from_data({"backend": "mujoco"})
    assert "backend" in exc.value.errors


def test_round_trip_through_json():
    config = TrainingConfig.from_data({"backend": "embedded", "max_frames": 1000})
    assert TrainingConfig.from_json(config.to_json()) == config
