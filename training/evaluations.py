"""Evaluating a skill's published policy (issue 13): the verbs and reads pages, the API and
`manage.py evaluate` share. The work itself is `training/engine/evaluation.py`, run by
`manage.py evaluate` in the foreground or, from the web, in a background process started here
(`start_in_background`), so no request waits for it.

A killed evaluation never looks done: its result is written only with `completed`
(eval_models.Evaluation), and `reap` marks one whose process is gone as `interrupted`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tasks.models import Skill
from training import paths
from training.eval_models import Evaluation

MAX_EPISODES = 1000  # the trainer's own cap is higher; a page button needs no more
DEFAULT_EPISODES = 100
MAX_ACTIVE = 2  # evaluations at once on the host (each a process on one core)


class EvaluationError(ValueError):
    """An evaluation that cannot be made (bad episodes, no published policy)."""


class EvaluationBusy(EvaluationError):
    """The skill is being evaluated already, or the host runs as many evaluations as it may."""


def check_episodes(value: Any) -> int:
    if isinstance(value, bool):
        raise EvaluationError("episodes must be a whole number")
    try:
        episodes = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise EvaluationError("episodes must be a whole number") from None
    if isinstance(value, float) and not float(value).is_integer():
        raise EvaluationError("episodes must be a whole number")
    if not 1 <= episodes <= MAX_EPISODES:
        raise EvaluationError(f"episodes must be between 1 and {MAX_EPISODES}")
    return episodes


def request_evaluation(
    skill: Skill, *, episodes: Any = DEFAULT_EPISODES, video: bool = True, owner: Any = None, actor: str = "",
    seed: int = 0,
) -> Evaluation:
    """Validate and record a queued evaluation of `skill`'s published policy; nothing runs yet."""
    count = check_episodes(episodes)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**31 - 1:
        raise EvaluationError("seed must be a whole number between 0 and 2147483647")
    if not skill.defined:
        raise EvaluationError(f"{skill.name} is not defined")
    if not paths.has_policy(skill):
        raise EvaluationError(f"{skill.name} has no published policy yet: train it first")
    with transaction.atomic():
        # One evaluation of a skill at a time, and at most MAX_ACTIVE on the host: each is a
        # process with a CPU core of its own. The skill's row lock makes the check and the insert one.
        Skill.objects.select_for_update().filter(pk=skill.pk).first()
        for active in Evaluation.objects.filter(status__in=Evaluation.ACTIVE).order_by("pk")[: MAX_ACTIVE + 20]:
            reap(active)
        active = Evaluation.objects.filter(status__in=Evaluation.ACTIVE)
        if active.filter(skill=skill).exists():
            raise EvaluationBusy(f"{skill.name} is being evaluated already: wait for that result")
        if active.count() >= MAX_ACTIVE:
            raise EvaluationBusy(f"{MAX_ACTIVE} evaluations are running already: try again when one has finished")
        return Evaluation.objects.create(
            skill=skill, owner=owner if getattr(owner, "pk", None) else None, actor=actor, episodes=count,
            video=bool(video), seed=seed, backend=skill.task.backend,
        )


def start_in_background(evaluation: Evaluation) -> int:
    """Run `manage.py evaluate --run ID` as its own process (own session, argv list); return its pid."""
    folder = paths.evaluation_dir(evaluation.skill, evaluation.pk)
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "evaluate", "--run", str(int(evaluation.pk))]
    try:
        with open(folder / "evaluate.log", "ab") as log:
            process = subprocess.Popen(  # never a shell; the database settings travel in the environment
                argv, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=dict(os.environ),
            )
    except OSError as exc:
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.FAILED, finished_at=timezone.now(), error=f"could not start: {exc}"[:2000],
        )
        raise EvaluationError(f"could not start the evaluation: {exc}") from exc
    Evaluation.objects.filter(pk=evaluation.pk, status=Evaluation.Status.QUEUED).update(pid=process.pid)
    evaluation.pid = process.pid
    return process.pid


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process (the web server started it) has ended too.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child: it exists
    return done == 0


STALE_QUEUED_SECONDS = 120


def reap(evaluation: Evaluation) -> Evaluation:
    """Mark an active evaluation whose process is gone as interrupted (its result is never shown)."""
    if not evaluation.is_active:
        return evaluation
    age = (timezone.now() - evaluation.created_at).total_seconds()
    gone = (evaluation.pid and not _alive(evaluation.pid)) or (not evaluation.pid and age > STALE_QUEUED_SECONDS)
    if gone:
        with transaction.atomic():
            changed = Evaluation.objects.filter(pk=evaluation.pk, status__in=Evaluation.ACTIVE).update(
                status=Evaluation.Status.INTERRUPTED, finished_at=timezone.now(), pid=None,
                error="the evaluating process ended before the evaluation finished",
            )
        if changed:
            evaluation.refresh_from_db()
    return evaluation


def latest_by_skill(task: Any) -> dict[int, Evaluation]:
    """Each skill's newest evaluation (reaped), for the task page."""
    latest: dict[int, Evaluation] = {}
    for evaluation in Evaluation.objects.filter(skill__task=task).select_related("skill").order_by("-created_at", "-pk")[:500]:
        if evaluation.skill_id not in latest:
            latest[evaluation.skill_id] = reap(evaluation)
    return latest


def video_path(evaluation: Evaluation) -> Path | None:
    """The evaluation's clip, resolved inside its folder, or None."""
    if not evaluation.video_file:
        return None
    folder = paths.evaluation_dir(evaluation.skill, evaluation.pk).resolve()
    path = (folder / evaluation.video_file).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path
