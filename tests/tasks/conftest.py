"""Builders for small GenHRL task trees in tmp_path, for quirks and errors the real fixtures lack."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MANAGER_BASED = Path("source") / "isaaclab_tasks" / "isaaclab_tasks" / "manager_based"


def skill(
    is_primitive: bool = True,
    sub_skills: list[str] | None = None,
    used_by: list[str] | None = None,
    description: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A `skills` map entry as GenHRL writes it."""
    return {
        "task_path": "skills/x",
        "policy_path": "trained_policies/x.pt",
        "description": description,
        "object_config_paths": ["../object_config.json"],
        "is_primitive": is_primitive,
        "sub_skills": sub_skills or [],
        "used_by": used_by or [],
        **extra,
    }


def node(name: str, *children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A `structure` tree node."""
    data: dict[str, Any] = {"name": name, "description": f"{name} description", **extra}
    if children:
        data["children"] = list(children)
    return data


def two_level(task: str = "fetch", prims: tuple[str, ...] = ("go_a", "go_b")) -> tuple[dict, Any]:
    """A valid 2-level library: root composite `task` over primitives `prims`."""
    skills = {task: skill(False, list(prims), description=f"{task} root")}
    skills.update({p: skill(True, used_by=[task], description=f"{p} skill") for p in prims})
    return skills, node(task, *(node(p) for p in prims))


@dataclass
class Lab:
    """An Isaac Lab tree in tmp_path: `root/source/isaaclab_tasks/isaaclab_tasks/manager_based/`."""

    root: Path

    @property
    def manager_based(self) -> Path:
        return self.root / MANAGER_BASED

    def robot_dir(self, robot: str = "R1") -> Path:
        return self.manager_based / f"{robot}_generated"

    def add_task(
        self,
        task: str = "fetch",
        *,
        robot: str = "R1",
        skills: dict[str, Any] | None = None,
        structure: Any = None,
        hierarchy_key: str | None = None,
        library_text: str | None = None,
        object_config: dict[str, Any] | None = None,
        description: str | None = None,
        write_library: bool = True,
    ) -> Path:
        """Write one task (library, object config, tasks/ side); returns `skills/<task>`."""
        if skills is None and structure is None:
            skills, structure = two_level(task)
        robot_dir = self.robot_dir(robot)
        task_dir = robot_dir / "skills" / task
        task_dir.mkdir(parents=True, exist_ok=True)
        tasks_side = robot_dir / "tasks" / task
        tasks_side.mkdir(parents=True, exist_ok=True)
        if write_library:
            if library_text is None:
                library = {
                    "skills": skills,
                    "hierarchies": {
                        hierarchy_key or task: {
                            "created_at": "2025-08-05T19:14:06",
                            "description": f"{task} hierarchy description",
                            "structure": structure,
                        }
                    },
                }
                library_text = json.dumps(library, indent=2)
            (task_dir / "skill_library.json").write_text(library_text)
        config = object_config if object_config is not None else {"num_cubes": 1, "_cube_comments": ["Box"]}
        (task_dir / "object_config.json").write_text(json.dumps(config))
        (tasks_side / "object_config.json").write_text(json.dumps(config))
        if description is not None:
            (tasks_side / "description.txt").write_text(description)
        return task_dir


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    root = tmp_path / "IsaacLab"
    root.mkdir()
    return Lab(root)


@pytest.fixture
def g1_copy(isaaclab_fixture_tree: Path, tmp_path: Path) -> Lab:
    """A writable copy of the real fixture tree, to put broken tasks beside the real ones."""
    root = tmp_path / "IsaacLabCopy"
    shutil.copytree(isaaclab_fixture_tree, root)
    return Lab(root)
