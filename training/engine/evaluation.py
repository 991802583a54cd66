"""Running one evaluation (issue 13): write its spec, run the trainer's evaluate mode as a
subprocess (the trainer is Django-free), read its records and store the result.

The embedded backend only: Isaac Lab has its own `play` script (`training/trainer/launch.py`
`play_command`), which `manage.py evaluate` runs as it is. The result is written in the same update
that sets `completed`, so nothing half done ever looks like a result.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from django.utils import timezone

from training import paths
from training.engine.planning import sub_skills_spec
from training.eval_models import Evaluation
from training.trainer import launch, records

TIMEOUT_SECONDS = 1800


def build_spec(evaluation: Evaluation) -> Path:
    skill = evaluation.skill
    task = skill.task
    folder = paths.evaluation_dir(skill, evaluation.pk)
    folder.mkdir(parents=True, exist_ok=True)
    # The same start states the skill trained from: its previous sibling's success states.
    from training.engine.planning import start_states_source

    start_from = start_states_source(task, skill)
    spec: dict[str, Any] = {
        "backend": "embedded",
        "task": paths.check_name(task.name, "task"),
        "robot": paths.check_name(task.robot, "robot"),
        "skill": paths.check_name(skill.name, "skill"),
        "is_primitive": skill.is_primitive,
        "level": skill.level,
        "run_dir": str(folder.resolve()),
        "success_dir": str(paths.success_dir(skill).resolve()),
        "start_states_dir": str(paths.success_dir(start_from).resolve()) if start_from else None,
        "num_envs": evaluation.episodes,
        "seed": int(evaluation.seed),
        "video": evaluation.video,
        "video_length": 400,
        "object_config": task.object_config,
        "skill_spec": skill.embedded_spec,
        "sub_skills": [] if skill.is_primitive else sub_skills_spec(task, skill),
        "evaluate": {"episodes": evaluation.episodes, "policy_dir": str(paths.policy_dir(skill).resolve())},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


def run(evaluation: Evaluation, *, timeout: float = TIMEOUT_SECONDS) -> Evaluation:
    """Evaluate now, in this process's child; returns the evaluation as stored."""
    started = Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.QUEUED).update(
        status=Evaluation.Status.RUNNING, started_at=timezone.now(), pid=os.getpid(),
    )
    if not started:
        evaluation.refresh_from_db()
        raise RuntimeError(f"evaluation {evaluation.pk} is {evaluation.status}, not queued")
    try:
        spec_path = build_spec(evaluation)
        argv, env, _cwd = launch.build_command(spec_path, "embedded")
        argv = [*argv, "--evaluate"]
        folder = spec_path.parent
        with open(folder / "trainer.log", "w", encoding="utf-8") as log:
            result = subprocess.run(  # argv list, never a shell; no secrets in argv or env
                argv, env=env, cwd=str(folder), stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout,
            )
            log.write(result.stdout)
        found = [r for r in map(records.parse_line, result.stdout.splitlines()) if r]
        outcome = next((r for r in reversed(found) if r["kind"] == "evaluation"), None)
        if result.returncode != 0 or outcome is None:
            errors = [str(r.get("message")) for r in found if r["kind"] == "error"]
            raise RuntimeError(errors[-1] if errors else f"the trainer exited with {result.returncode}")
        video = outcome.get("video")
        relative = ""
        if video:
            resolved = Path(video).resolve()
            if resolved.is_relative_to(folder.resolve()):
                relative = str(resolved.relative_to(folder.resolve()))
        # Only a running evaluation ends here: one already marked interrupted stays so.
        Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.COMPLETED, finished_at=timezone.now(), pid=None,
            successes=int(outcome["successes"]), success_rate=float(outcome["success_rate"]),
            mean_return=outcome.get("mean_return"), video_file=relative,
        )
    except Exception as exc:
        message = f"evaluation timed out after {timeout:g} s" if isinstance(exc, subprocess.TimeoutExpired) else str(exc)
        Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.RUNNING).update(
            status=Evaluation.Status.FAILED, finished_at=timezone.now(), pid=None, error=message[:2000],
        )
    evaluation.refresh_from_db()
    return evaluation

