"""`manage.py evaluate TASK SKILL [--episodes N] [--robot R] [--video]`: run a skill's published
policy for N episodes and report its success rate and mean return (issue 13).

Embedded tasks run the trainer's evaluate mode in a subprocess (frozen sub-skills for composites)
and store the result with the skill (training.Evaluation), shown on the task page. Isaac Lab tasks
run Isaac Lab's own `play` script on the published checkpoint (training/trainer/launch.py
`play_command`); it reports no success rate. `--run ID` runs an evaluation the web queued (the
page's Evaluate button starts this in the background).
"""

from __future__ import annotations

import getpass
import subprocess
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import evaluations, paths, services
from training.engine import evaluation as engine
from training.eval_models import Evaluation


class Command(BaseCommand):
    help = "Evaluate a skill's published policy for N episodes: success rate and mean return (and a video with --video)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task", nargs="?", help="task name (as in manage.py list_tasks)")
        parser.add_argument("skill", nargs="?", help="skill of that task with a published policy")
        parser.add_argument("--robot", help="robot, when several robots have a task of this name")
        parser.add_argument("--episodes", default=str(evaluations.DEFAULT_EPISODES),
                            help=f"episodes to run (1-{evaluations.MAX_EPISODES}, default {evaluations.DEFAULT_EPISODES})")
        parser.add_argument("--video", action="store_true", help="record a clip of the first episode")
        parser.add_argument("--seed", type=int, default=0, help="random seed of the start positions (default 0)")
        parser.add_argument("--run", type=int, metavar="ID", help="run the queued evaluation ID (the web's button)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run"] is not None:
            evaluation = Evaluation.objects.select_related("skill__task").filter(pk=options["run"]).first()
            if evaluation is None:
                raise CommandError(f"there is no evaluation {options['run']}")
            self._finish(engine.run(evaluation))
            return
        if not options["task"] or not options["skill"]:
            raise CommandError("give TASK and SKILL (or --run ID)")
        try:
            task = services.find_task(options["task"], options.get("robot"))
        except services.TaskNotFound as exc:
            raise CommandError(exc.for_terminal()) from None
        skill = task.skills.filter(name=options["skill"]).first()
        if skill is None:
            names = ", ".join(task.skills.order_by("order").values_list("name", flat=True))
            raise CommandError(f"{task.name} has no skill {options['skill']!r} (skills: {names})")
        if task.backend == "isaaclab":
            self._play(task, skill, options)
            return
        try:
            evaluation = evaluations.request_evaluation(
                skill, episodes=options["episodes"], video=options["video"], actor=f"cli:{_login()}",
                seed=options["seed"],
            )
        except evaluations.EvaluationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Evaluating {task.name}/{skill.name} for {evaluation.episodes} episodes (evaluation {evaluation.pk}) ...")
        self._finish(engine.run(evaluation))

    def _finish(self, evaluation: Evaluation) -> None:
        if evaluation.status != Evaluation.Status.COMPLETED:
            raise CommandError(f"evaluation {evaluation.pk} {evaluation.status}: {evaluation.error}")
        self.stdout.write(
            f"success rate {evaluation.success_rate:.1%} ({evaluation.successes}/{evaluation.episodes} episodes), "
            f"mean return {evaluation.mean_return:.3f}"
        )
        video = evaluations.video_path(evaluation)
        if video is not None:
            self.stdout.write(f"video: {video}")

    def _play(self, task: Any, skill: Any, options: dict[str, Any]) -> None:
        from training.trainer import launch
        from training.trainer.isaaclab import gym_id

        if not settings.GENHRL_ISAACLAB_ROOT:
            raise CommandError("evaluating an Isaac Lab task needs GENHRL_ISAACLAB_ROOT")
        if not paths.has_policy(skill):
            raise CommandError(f"{skill.name} has no published policy yet: train it first")
        try:
            episodes = evaluations.check_episodes(options["episodes"])
        except evaluations.EvaluationError as exc:
            raise CommandError(str(exc)) from None
        argv = launch.play_command(
            settings.GENHRL_ISAACLAB_ROOT, gym_id(task.name, skill.name, skill.is_primitive),
            paths.policy_dir(skill) / "policy.pth", episodes_envs=episodes, video=options["video"],
            isaaclab_version=settings.GENHRL_ISAACLAB_VERSION,
        )
        self.stdout.write("Running Isaac Lab's play script: " + " ".join(argv))
        result = subprocess.run(argv, cwd=settings.GENHRL_ISAACLAB_ROOT)  # argv list, never a shell
        if result.returncode != 0:
            raise CommandError(f"play exited with {result.returncode}")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
