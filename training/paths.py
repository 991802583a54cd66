"""Where a task's training artifacts live on disk (layout: docs/ARCHITECTURE.md).

```
GENHRL_RUNS_DIR/<robot>/<task>/skills/<skill_pk>-<skill>/
    success_states/   policy/   runs/<skillrun_pk>/
```

The importer already validates robot, task and skill names, but every path here is built from
names that came from LLM-written files and user input, so each name is checked again and every
result is checked to stay inside GENHRL_RUNS_DIR (defence in depth: one missed check elsewhere must
not let `--new-run` delete someone else's files).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from training.trainer.success import FolderCount, StateCounter

if TYPE_CHECKING:
    from tasks.models import Skill, Task

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class UnsafePathError(ValueError):
    """A name or path that must not be used to build a training path."""


def check_name(name: str, what: str = "name") -> str:
    """Return `name` if it is safe as one path component, else raise UnsafePathError."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in {".", ".."} or ".." in name:
        raise UnsafePathError(f"unsafe {what} for a training path: {name!r}")
    return name


def runs_root() -> Path:
    return Path(settings.GENHRL_RUNS_DIR).resolve()


def _inside_runs_root(path: Path) -> Path:
    root = runs_root()
    resolved = path.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise UnsafePathError(f"{path} is not inside the training folder {root}")
    return path


# A session's *workspace* ("" for the task's own folders) keeps what it trains apart from the
# task's own success states and policies: a sweep trial ("sweep-12-trial-3") trains every skill from
# scratch there and never reads or replaces the task's results. Workspaces live under a folder whose
# name no robot can have ("@" is not allowed in names), so they never meet a task's folder.
WORKSPACES = "@workspaces"


def task_dir(task: Task, workspace: str = "") -> Path:
    """`<runs>/<robot>/<task>/`: everything this task's training ever wrote, and nothing else (or the
    same under `<runs>/@workspaces/<workspace>/` for a session with a workspace)."""
    root = runs_root() / WORKSPACES / check_name(workspace, "workspace") if workspace else runs_root()
    return _inside_runs_root(root / check_name(task.robot, "robot") / check_name(task.name, "task"))


def skill_dir(skill: Skill, workspace: str = "") -> Path:
    # The pk keeps case twins (Walk_to_X / walk_to_X) apart on case-insensitive filesystems.
    folder = f"{int(skill.pk)}-{check_name(skill.name, 'skill')}"
    return _inside_runs_root(task_dir(skill.task, workspace) / "skills" / folder)


def success_dir(skill: Skill, workspace: str = "") -> Path:
    return skill_dir(skill, workspace) / "success_states"


def policy_dir(skill: Skill, workspace: str = "") -> Path:
    return skill_dir(skill, workspace) / "policy"


def run_dir(skill: Skill, skill_run_pk: int, workspace: str = "") -> Path:
    return skill_dir(skill, workspace) / "runs" / str(int(skill_run_pk))


def summaries_dir(run_dir: str) -> Path | None:
    """The TensorBoard folder of a run whose folder is `run_dir` (as stored on its SkillRun), or
    None when the run has no folder or it lies outside the training folder."""
    if not run_dir:
        return None
    try:
        return _inside_runs_root(Path(run_dir)) / "summaries"
    except (UnsafePathError, OSError, ValueError):
        return None


def evaluation_dir(skill: Skill, evaluation_pk: int) -> Path:
    """`skills/<pk>-<skill>/evaluations/<evaluation_pk>/`: its spec, log and video (issue 13)."""
    return skill_dir(skill) / "evaluations" / str(int(evaluation_pk))


# One per process: a file that does not name its count is loaded once per (size, mtime), not on
# every page view.
_counter = StateCounter()


def count_success_states(folder: Path) -> int:
    """Success states stored in `folder` (0 if it does not exist).

    States, not files: the trainer's files carry their count in the name (no torch needed); other
    GenHRL files are loaded with torch's restricted unpickler only, never a full unpickle (this
    runs in the web process); files still being written are not counted.
    """
    return _counter.count_folder(folder).states


def success_states_detail(folder: Path) -> FolderCount:
    """`count_success_states`, and how many files in `folder` could not be read safely."""
    return _counter.count_folder(folder)


def has_policy(skill: Skill, workspace: str = "") -> bool:
    return (policy_dir(skill, workspace) / "policy.pth").is_file()


def publish_policy(source: Path, skill: Skill, workspace: str = "") -> Path:
    """Copy a run's `policy/` folder to the skill's `policy/`, replacing the old one.

    The copy goes to a sibling folder first and is swapped in by renames, so a composite that
    starts while this runs (another session cannot, but a reader such as `status` can look) never
    sees half a policy.
    """
    target = policy_dir(skill, workspace)
    staging = target.with_name("policy.new")
    old = target.with_name("policy.old")
    for leftover in (staging, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(source, staging)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


def delete_task_artifacts(task: Task, workspace: str = "") -> list[Path]:
    """Delete this task's training folder and return the top-level entries that were removed.

    Only `<runs>/<robot>/<task>/` is touched: another task (even one whose name is a prefix of
    this one, or the same task name under another robot) keeps every file.
    """
    folder = task_dir(task, workspace)
    if folder.is_symlink():
        # A symlink here would point the delete somewhere we never validated.
        raise UnsafePathError(f"{folder} is a symbolic link; refusing to delete through it")
    if not folder.exists():
        return []
    deleted: list[Path] = []
    skills = folder / "skills"
    if skills.is_dir() and not skills.is_symlink():
        deleted.extend(sorted(skills.iterdir()))
    deleted.extend(sorted(p for p in folder.iterdir() if p != skills))
    shutil.rmtree(folder)
    return deleted
