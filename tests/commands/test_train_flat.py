"""`manage.py train TASK --flat --baseline-of SESSION`, for real: the root trains as one policy on
primitive actions for exactly the hierarchical session's frames, in its own folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command

from training import paths
from training.config import TrainingConfig
from training.models import SessionStatus, SkillRun, SkillStatus, TrainingSession


def test_train_flat_baseline_of_a_session(fetch_block: Any) -> None:
    hierarchical = TrainingSession.objects.create(
        task=fetch_block, config=TrainingConfig(seed=5).to_json(), backend="embedded", status=SessionStatus.COMPLETED,
    )
    for order, skill in enumerate(fetch_block.skills.order_by("order")):
        SkillRun.objects.create(session=hierarchical, skill=skill, order=order, status=SkillStatus.COMPLETED,
                                frames=1024 if skill.is_primitive else 512)
    try:
        call_command("train", "fetch_block", "--flat", "--baseline-of", str(hierarchical.pk), "--num-envs", "16",
                     "--plain")
    except CommandError as exc:
        assert "success states" in str(exc)  # a flat policy that did not learn in 2,560 frames is a result
    flat = TrainingSession.objects.exclude(pk=hierarchical.pk).get()
    (run,) = flat.skill_runs.select_related("skill")
    assert run.skill.name == fetch_block.root_skill and flat.config["seed"] == 5
    # The budget exactly: it trains until the epoch that reaches 2,560 frames (256 frames an epoch).
    assert run.frames == 2560
    info = json.loads((Path(run.run_dir) / "policy" / "skill.json").read_text())
    assert info["flat"] is True and info["action"] == {"type": "continuous", "dim": 2} and info["obs_dim"] == 4 + 2 + 1
    spec = json.loads((Path(run.run_dir) / "spec.json").read_text())
    assert spec["flat"] is True and spec["max_frames"] == 2560 and all(s["policy_dir"] is None for s in spec["sub_skills"])
    assert Path(run.run_dir).is_relative_to(paths.task_dir(fetch_block, flat.workspace))
    assert not paths.has_policy(run.skill)  # the task's own (hierarchical) root policy is not touched
