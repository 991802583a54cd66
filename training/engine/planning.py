"""Planning a session: check it can train, clear a `--new-run`, create its runs, skip what is done,
and write each run's `spec.json` (the trainer's whole input, docs/ARCHITECTURE.md).

Each step is a function a test can call on its own; the orchestrator calls them in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from tasks.models import Skill, Task
from training import paths, queries
from training.config import TrainingConfig, backend_problem
from training.executor import LaunchCommand
from training.models import SessionEvent, SkillRun, SkillStatus, TrainingSession
from training.outcomes import Code

CommandBuilder = Callable[[Path, TrainingConfig, Skill], LaunchCommand]


class PlanError(Exception):
    """The session cannot start training; `code` is an `outcomes.Code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SkillSetupError(Exception):
    """One skill cannot be launched (a sub-skill has no policy yet, the spec cannot be written)."""


# -- the steps ---------------------------------------------------------------------------------------
def check(task: Task, config: TrainingConfig) -> list[Skill]:
    """The skills to train, in training order; PlanError if the session cannot train at all."""
    problem = backend_problem(config.backend)
    if problem:
        raise PlanError(Code.BACKEND_UNAVAILABLE, problem)
    skills = list(task.skills.order_by("order", "pk"))
    trainable = [s for s in skills if s.defined]
    if not trainable:
        raise PlanError(Code.NOTHING_TO_TRAIN, f"task {task.name} has no trainable skills")
    for skill in trainable:
        paths.check_name(skill.name, "skill")
    missing = queries.undefined_sub_skills(task)
    if missing:
        composite, sub = missing[0]
        raise PlanError(
            Code.UNDEFINED_SUB_SKILL, f"cannot train {composite}: its sub-skill {sub!r} is named but not defined"
        )
    paths.task_dir(task)  # validates robot and task names before anything is written
    if config.flat:
        # A flat baseline trains the root alone, as one policy over primitive actions.
        root = next((s for s in trainable if s.name == task.root_skill), None)
        root = root or max(trainable, key=lambda s: (s.level, s.order))
        return [root]
    return trainable


def delete_previous(session: TrainingSession, *, actor: str) -> list[Path]:
    """`--new-run`: delete this task's training folder (only this task's) and record what went."""
    task = session.task
    deleted = paths.delete_task_artifacts(task, session.workspace)
    root = paths.task_dir(task, session.workspace)
    listing = ", ".join(str(p.relative_to(root)) for p in deleted) or "nothing (no earlier data)"
    SessionEvent.objects.create(
        session=session, kind=SessionEvent.Kind.ARTIFACTS_DELETED, actor=actor,
        message=f"--new-run deleted in {root}: {listing}",
    )
    return deleted


def create_runs(session: TrainingSession, skills: list[Skill], config: TrainingConfig) -> list[SkillRun]:
    """One pending run per skill, in order, with the success states each skill already has."""
    SkillRun.objects.bulk_create(
        SkillRun(
            session=session, skill=skill, order=index,
            min_success_states=config.min_success_states,
            min_frames=config.min_steps(skill.is_primitive),
            success_states=paths.count_success_states(paths.success_dir(skill, session.workspace)),
        )
        for index, skill in enumerate(skills)
    )
    # Re-read with the related skill, which the engine uses for every run.
    return list(session.skill_runs.select_related("skill").order_by("order"))


def skip_done(session: TrainingSession, runs: list[SkillRun], config: TrainingConfig, *, actor: str) -> None:
    """Skip what needs no training: skills a resumed session completed, and (skip-complete) skills
    that already have their success states and a policy."""
    # A resume never retrains what the sessions it continues completed (whatever skip_complete
    # says): those skills keep their success states, checkpoints and policy, and no new attempt.
    done_before = queries.done_in_resumed_chain(session)
    for run in runs:
        source = done_before.get(run.skill_id)
        if source is not None and paths.has_policy(run.skill, session.workspace):
            run.transition_to(
                SkillStatus.SKIPPED, actor=actor, stop_reason="resumed",
                message=f"completed in session {source}; kept ({run.success_states} success states)",
            )
    if not config.skip_complete:
        return
    for run in runs:
        if run.status != SkillStatus.PENDING:
            continue
        if run.success_states >= config.min_success_states and paths.has_policy(run.skill, session.workspace):
            run.transition_to(
                SkillStatus.SKIPPED, actor=actor, stop_reason="skipped",
                message=f"already has {run.success_states} success states (>= {config.min_success_states})"
                " and a policy",
            )


# -- the tree ----------------------------------------------------------------------------------------
# `hierarchy_parents` lives in training.queries: the time estimate (domain) needs the same order.
hierarchy_parents = queries.hierarchy_parents


def dependencies(task: Task, runs: list[SkillRun]) -> dict[int, set[int]]:
    """For each run, the runs it waits for; nothing else orders a session's skills.

    A composite waits for its sub-skills (it drives their frozen policies), and any skill waits
    for its previous sibling in execution order (it starts from that one's success states) when
    that sibling trains earlier. Skills in different subtrees do not wait for each other, so with
    several slots they train side by side; with one, training order is kept.
    """
    by_name = {run.skill.name: run for run in runs}
    siblings = hierarchy_parents(task)
    waits: dict[int, set[int]] = {}
    for run in runs:
        skill = run.skill
        wanted = set() if skill.is_primitive else {by_name[n].pk for n in skill.sub_skills if n in by_name}
        names = siblings.get(skill.name) or []
        index = names.index(skill.name) if skill.name in names else 0
        previous = by_name.get(names[index - 1]) if index > 0 else None
        if previous is not None and previous.order < run.order:
            wanted.add(previous.pk)
        wanted.discard(run.pk)
        waits[run.pk] = wanted
    return waits


def start_states_source(task: Task, skill: Skill, workspace: str = "") -> Skill | None:
    """The previous sibling in execution order, if it has success states to start from."""
    siblings = hierarchy_parents(task).get(skill.name)
    if not siblings:
        return None
    index = siblings.index(skill.name)
    if index == 0:
        return None
    previous = task.skills.filter(name=siblings[index - 1]).first()
    if previous is None or paths.count_success_states(paths.success_dir(previous, workspace)) == 0:
        return None
    return previous


def sub_skills_spec(
    task: Task, skill: Skill, _seen: frozenset[str] = frozenset(), workspace: str = "", *,
    policies: bool = True, _by_name: dict[str, Skill] | None = None,
) -> list[dict[str, Any]]:
    """A composite's frozen sub-skills, in order, each with its published policy (recursive).

    With `policies=False` (a flat baseline's tree: what each skill means, no policy is used) no
    policy is required and `policy_dir` is None. The task's skills are read once for the tree.
    """
    by_name = _by_name if _by_name is not None else {s.name: s for s in task.skills.all()}
    entries = []
    for name in skill.sub_skills:
        sub = by_name.get(name)
        if sub is None or not sub.defined:
            raise SkillSetupError(f"sub-skill {name!r} of {skill.name} is not defined")
        if name in _seen:
            raise SkillSetupError(f"sub-skill {name!r} of {skill.name} contains itself")
        if policies and not paths.has_policy(sub, workspace):
            raise SkillSetupError(f"sub-skill {name} of {skill.name} has no trained policy yet")
        entries.append({
            "name": sub.name,
            "is_primitive": sub.is_primitive,
            "skill_spec": sub.embedded_spec,
            "policy_dir": str(paths.policy_dir(sub, workspace).resolve()) if policies else None,
            "sub_skills": [] if sub.is_primitive else sub_skills_spec(
                task, sub, _seen | {skill.name}, workspace, policies=policies, _by_name=by_name),
        })
    return entries


# -- one run's input --------------------------------------------------------------------------------
def build_spec(run: SkillRun, config: TrainingConfig) -> tuple[dict[str, Any], Skill | None]:
    """Write the run folder's spec.json (docs/ARCHITECTURE.md); return it and the start-state source."""
    skill = run.skill
    task = skill.task
    workspace = run.session.workspace  # a sweep trial trains in its own folders
    if config.flat:
        sub_skills = [] if skill.is_primitive else sub_skills_spec(task, skill, policies=False)
    else:
        sub_skills = [] if skill.is_primitive else sub_skills_spec(task, skill, workspace=workspace)
    run_folder = paths.run_dir(skill, run.pk, workspace)
    success = paths.success_dir(skill, workspace)
    run_folder.mkdir(parents=True, exist_ok=True)
    success.mkdir(parents=True, exist_ok=True)
    start_from = None if config.flat else start_states_source(task, skill, workspace)
    spec: dict[str, Any] = {
        "backend": config.backend,
        "task": paths.check_name(task.name, "task"),
        "robot": paths.check_name(task.robot, "robot"),
        "skill": paths.check_name(skill.name, "skill"),
        "is_primitive": skill.is_primitive,
        "level": skill.level,
        "run_dir": str(run_folder.resolve()),
        "success_dir": str(success.resolve()),
        "start_states_dir": str(paths.success_dir(start_from, workspace).resolve()) if start_from else None,
        "num_envs": config.num_envs,
        "seed": config.seed,
        "min_success_states": config.min_success_states,
        "min_frames": config.min_steps(skill.is_primitive),
        "max_frames": config.max_frames,
        "headless": config.headless,
        "video": config.video,
        "video_interval": config.video_interval,
        "video_length": config.video_length,
        "object_config": task.object_config,
        "skill_spec": skill.embedded_spec,
        "sub_skills": sub_skills,
        "ppo": config.ppo_overrides(),
    }
    if config.flat:
        spec["flat"] = True
    if config.backend == "isaaclab":
        spec["isaaclab"] = {
            "root": str(settings.GENHRL_ISAACLAB_ROOT),
            "version": settings.GENHRL_ISAACLAB_VERSION,
        }
    tmp = run_folder / "spec.json.tmp"
    tmp.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    tmp.replace(run_folder / "spec.json")
    return spec, start_from


def default_command_builder(spec_path: Path, config: TrainingConfig, skill: Skill) -> LaunchCommand:
    """The trainer's own launch line (training/trainer/launch.py), for this backend and settings."""
    from training.trainer import launch

    argv, env, cwd = launch.build_command(
        spec_path,
        config.backend,
        isaaclab_root=settings.GENHRL_ISAACLAB_ROOT,
        isaaclab_version=settings.GENHRL_ISAACLAB_VERSION,
    )
    if config.backend == "embedded":
        # Each run works in its own folder, so anything written relative to the working folder
        # stays with the run; the package is found through PYTHONPATH. (Isaac Lab keeps its root:
        # GenHRL's generated code resolves paths from the working folder.)
        cwd = str(spec_path.parent)
    return LaunchCommand(argv=list(argv), env=dict(env), cwd=Path(cwd))
