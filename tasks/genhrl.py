"""Reading GenHRL's on-disk task layout, with no Django: library, levels, training order, quirks.

A task lives in `<Robot>_generated/skills/<task>/` (`skill_library.json`, `object_config.json`,
one `skills/<skill>/` folder per node) with its raw description in
`<Robot>_generated/tasks/<task>/description.txt`. `parse_task` turns one such folder into a
`TaskInfo`; `find_task_dirs` finds the task folders under an Isaac Lab tree, a robot folder or a
task folder. Nothing here writes anything.

Anything that later becomes part of a filesystem path (robot, task and skill names) is checked
here, once, so the rest of the portal can build paths from these names without re-checking.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

ROBOT_SUFFIX = "_generated"
LIBRARY_FILE = "skill_library.json"
OBJECT_CONFIG_FILE = "object_config.json"
DESCRIPTION_FILE = "description.txt"
EMBEDDED_SPEC_FILE = "embedded.json"
# Matches the model columns (Task.name / Skill.name max_length=200, Task.robot max_length=100).
MAX_NAME_LENGTH = 200
MAX_ROBOT_LENGTH = 100

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
# Folders never worth descending into while looking for `<Robot>_generated/`.
_PRUNE_DIRS = {"__pycache__", "node_modules", "logs", "outputs", "wandb"}


class GenHRLError(Exception):
    """A GenHRL file or folder that cannot be imported; the message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class SkillInfo:
    """One node of a task's skill library, with its derived level and training-order position."""

    name: str
    description: str
    is_primitive: bool
    # Direct children as the library names them, in order (may name undefined skills).
    sub_skills: list[str]
    used_by: list[str]
    # False for a sub-skill that is named but never defined: it has no level of its own and
    # cannot be trained, so it sits after every trainable skill, outside the training order.
    defined: bool
    level: int
    # 0-based; defined skills first (the training order), then undefined ones.
    order: int
    embedded_spec: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "primitive" if self.is_primitive else "composite"


@dataclass
class TaskInfo:
    """Everything the portal keeps about one task, as read from its folder."""

    name: str
    robot: str
    description: str
    root_skill: str
    # The library's `structure` tree (`name`, `description`, `children`), root first.
    structure: dict[str, Any]
    # Defined skills in training order, then undefined ones; see `parse_task`.
    skills: list[SkillInfo]
    object_config: dict[str, Any]
    warnings: list[str]
    levels: int
    task_dir: Path
    robot_dir: Path

    @property
    def training_order(self) -> list[str]:
        return [skill.name for skill in self.skills if skill.defined]

    @property
    def all_embedded(self) -> bool:
        """True when every trainable skill has an embedded-simulator spec (the bundled demo)."""
        defined = [skill for skill in self.skills if skill.defined]
        return bool(defined) and all(skill.embedded_spec for skill in defined)


# --- names -------------------------------------------------------------------------------------


def check_name(name: object, what: str, path: Path | str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return `name` if it is safe as one path component, else raise GenHRLError naming `path`.

    Allowed: ASCII letters, digits, `_`, `-`, `.`; not empty, no `..`, no leading dot. That
    excludes `/`, `\\`, NUL and every other way out of the folder the name is joined to.
    """
    if not isinstance(name, str):
        raise GenHRLError(path, f"{what} name {name!r} is not a string")
    if not name:
        raise GenHRLError(path, f"{what} name is empty")
    if len(name) > max_length:
        raise GenHRLError(path, f"{what} name {name[:40]!r}... is longer than {max_length} characters")
    if not _NAME_RE.fullmatch(name) or ".." in name or name.startswith("."):
        raise GenHRLError(
            path,
            f"{what} name {name!r} could escape its folder "
            "(allowed: letters, digits, '_', '-', '.'; no '..', no leading '.')",
        )
    return name


def robot_name(robot_dir: Path) -> str:
    """The robot of a `<Robot>_generated` folder, checked like any other name."""
    folder = robot_dir.name
    if not folder.endswith(ROBOT_SUFFIX):
        raise GenHRLError(robot_dir, f"not a GenHRL robot folder (its name must end in {ROBOT_SUFFIX!r})")
    return check_name(folder[: -len(ROBOT_SUFFIX)], "robot", robot_dir, max_length=MAX_ROBOT_LENGTH)


# --- finding tasks -------------------------------------------------------------------------------


def _is_robot_dir(path: Path) -> bool:
    return path.name.endswith(ROBOT_SUFFIX) and ((path / "skills").is_dir() or (path / "tasks").is_dir())


def find_robot_dirs(root: Path, *, max_depth: int = 7, max_dirs: int = 50_000) -> list[Path]:
    """Every `<Robot>_generated/` folder under `root`, breadth first, sorted.

    Bounded in depth and in folders visited so that pointing at a home folder stays cheap;
    an Isaac Lab checkout keeps them at `source/isaaclab_tasks/isaaclab_tasks/manager_based/`
    (depth 4, or 5 from a GenHRL checkout holding `IsaacLab/`). A symlinked robot folder is found,
    but the walk never descends through a symlink, so a link loop cannot trap it.
    """
    found: list[Path] = []
    queue: deque[tuple[Path, int]] = deque([(root, 0)])
    visited = 0
    while queue and visited < max_dirs:
        folder, depth = queue.popleft()
        visited += 1
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_dir():
                    continue
                is_link = entry.is_symlink()
            except OSError:
                continue
            child = Path(entry.path)
            if _is_robot_dir(child):
                found.append(child)
            elif (
                depth + 1 < max_depth
                and not is_link
                and not entry.name.startswith(".")
                and entry.name not in _PRUNE_DIRS
            ):
                queue.append((child, depth + 1))
    return sorted(found)


def find_task_dirs_in_robot(robot_dir: Path) -> list[Path]:
    """The `skills/<task>/` folders of one robot folder, sorted by task name.

    A task is a `skills/<task>/` folder holding a skill library, or a `tasks/<task>/` folder (whose
    library may then be missing: `parse_task` reports that). Other folders under `skills/`, such
    as `agents/`, are not tasks.
    """
    names: set[str] = set()
    skills = robot_dir / "skills"
    tasks = robot_dir / "tasks"
    try:
        if skills.is_dir():
            names.update(
                entry.name
                for entry in os.scandir(skills)
                if entry.is_dir() and entry.name != "__pycache__" and (Path(entry.path) / LIBRARY_FILE).is_file()
            )
        if tasks.is_dir():
            names.update(entry.name for entry in os.scandir(tasks) if entry.is_dir() and entry.name != "__pycache__")
    except OSError as exc:
        raise GenHRLError(robot_dir, f"cannot be listed: {exc}") from None
    return [skills / name for name in sorted(names)]


def _as_task_dir(path: Path) -> Path | None:
    """`path` as `<Robot>_generated/skills/<task>` if it is a task folder (skills/ or tasks/ side)."""
    if path.parent.name in ("skills", "tasks") and path.parent.parent.name.endswith(ROBOT_SUFFIX):
        return path.parent.parent / "skills" / path.name
    return None


def find_task_dirs(path: Path) -> list[Path]:
    """The task folders (`<Robot>_generated/skills/<task>`) that `path` designates.

    `path` may be an Isaac Lab tree (or any folder above the robot folders), one robot folder, or
    one task folder on either side (`skills/<task>` or `tasks/<task>`). Raises GenHRLError if the
    path does not exist or holds no GenHRL task.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise GenHRLError(path, "no such file or folder")
    path = path.resolve()
    if path.is_file() and path.name == LIBRARY_FILE:
        path = path.parent
    if not path.is_dir():
        raise GenHRLError(path, "not a folder")
    task_dir = _as_task_dir(path)
    if task_dir is not None:
        return [task_dir]
    if path.name in ("skills", "tasks") and _is_robot_dir(path.parent):
        path = path.parent
    robot_dirs = [path] if _is_robot_dir(path) else find_robot_dirs(path)
    task_dirs = [task for robot_dir in robot_dirs for task in find_task_dirs_in_robot(robot_dir)]
    if not task_dirs:
        raise GenHRLError(
            path,
            "no GenHRL task found (expected <Robot>_generated/skills/<task>/skill_library.json "
            "under it, e.g. in source/isaaclab_tasks/isaaclab_tasks/manager_based/)",
        )
    return task_dirs


# --- reading files -------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenHRLError(path, "file is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GenHRLError(path, f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenHRLError(path, f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise GenHRLError(path, "malformed JSON: nested too deeply") from None


def _read_json_object(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise GenHRLError(path, f"expected a JSON object, found {type(data).__name__}")
    return data


def _str_list(value: Any, path: Path, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise GenHRLError(path, f"{what} must be a list of names")
    return list(value)


def _is_absolute(raw: str) -> bool:
    return PurePosixPath(raw).is_absolute() or PureWindowsPath(raw).is_absolute() or raw.startswith("~")


# --- the library ---------------------------------------------------------------------------------


@dataclass
class _Node:
    """A `structure` node, checked: name and child nodes."""

    name: str
    children: list[_Node]


def _check_structure(raw: Any, library: Path) -> _Node:
    """Check the whole `structure` tree iteratively (an LLM can nest deeper than Python recurses)."""
    if not isinstance(raw, dict):
        raise GenHRLError(library, "hierarchy structure node is not an object")
    root = _Node(name="", children=[])
    stack: list[tuple[Any, _Node]] = [(raw, root)]
    while stack:
        data, node = stack.pop()
        if not isinstance(data, dict):
            raise GenHRLError(library, f"hierarchy structure node {data!r:.60} is not an object")
        node.name = check_name(data.get("name"), "skill", library)
        children = data.get("children") or []
        if not isinstance(children, list):
            raise GenHRLError(library, f"'children' of structure node {node.name!r} is not a list")
        for child in children:
            child_node = _Node(name="", children=[])
            node.children.append(child_node)
            stack.append((child, child_node))
    return root


def _preorder(root: _Node) -> list[_Node]:
    nodes: list[_Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(reversed(node.children))
    return nodes


def _collect_absolute_paths(value: Any, found: list[str]) -> None:
    """Absolute `object_config_paths` anywhere in a skill entry or structure tree."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if key == "object_config_paths" and isinstance(sub, list):
                    found.extend(p for p in sub if isinstance(p, str) and _is_absolute(p))
                elif isinstance(sub, dict | list):
                    stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)


def _levels(skills: Mapping[str, dict[str, Any]], library: Path) -> dict[str, int]:
    """Level of every defined skill: primitive 0, composite 1 + deepest defined sub-skill.

    Iterative depth-first search that tracks the current path, so a cycle among composites is reported with its
    path instead of overflowing the stack. Primitives' sub-skills are ignored (is_primitive is
    authoritative), so a primitive can never be part of a cycle.
    """
    levels: dict[str, int] = {}
    on_path: set[str] = set()
    for start in skills:
        if start in levels:
            continue
        path: list[str] = [start]
        on_path.add(start)
        iterators = [iter(skills[start]["sub_skills"] if not skills[start]["is_primitive"] else [])]
        while path:
            current = path[-1]
            child = next((c for c in iterators[-1] if c in skills and c not in levels), None)
            if child is None:
                info = skills[current]
                subs = [levels[c] for c in info["sub_skills"] if c in skills] if not info["is_primitive"] else []
                levels[current] = 0 if info["is_primitive"] else 1 + max(subs, default=0)
                on_path.discard(current)
                path.pop()
                iterators.pop()
                continue
            if child in on_path:
                cycle = path[path.index(child) :] + [child]
                raise GenHRLError(library, "cycle among composite skills: " + " -> ".join(cycle))
            path.append(child)
            on_path.add(child)
            iterators.append(iter(skills[child]["sub_skills"] if not skills[child]["is_primitive"] else []))
    return levels


def _read_skills(raw: Any, library: Path, warnings: list[str]) -> dict[str, dict[str, Any]]:
    """The `skills` map, checked and normalised to name -> {description, is_primitive, sub_skills, used_by}."""
    if not isinstance(raw, dict):
        raise GenHRLError(library, "'skills' must be an object mapping skill names to skills")
    skills: dict[str, dict[str, Any]] = {}
    for name, entry in raw.items():
        check_name(name, "skill", library)
        if not isinstance(entry, dict):
            raise GenHRLError(library, f"skill {name!r} is not an object")
        sub_skills = _str_list(entry.get("sub_skills"), library, f"'sub_skills' of skill {name!r}")
        used_by = _str_list(entry.get("used_by"), library, f"'used_by' of skill {name!r}")
        for other in (*sub_skills, *used_by):
            check_name(other, "skill", library)
        is_primitive = entry.get("is_primitive")
        if not isinstance(is_primitive, bool):
            # GenHRL always writes it; when a hand-edited library lacks it, fall back on the
            # library's own definition (a primitive is a node without children).
            is_primitive = not sub_skills
            warnings.append(
                f"Skill {name!r} has no boolean 'is_primitive'; treated as "
                f"{'primitive' if is_primitive else 'composite'} from its sub-skills."
            )
        if is_primitive and name in sub_skills:
            warnings.append(f"Primitive skill {name!r} lists itself as its own sub-skill; that entry is ignored.")
            sub_skills = [sub for sub in sub_skills if sub != name]
        if is_primitive and sub_skills:
            warnings.append(
                f"Primitive skill {name!r} lists sub-skills {sub_skills}; 'is_primitive' wins, "
                "so it trains as a primitive and they are ignored for its level."
            )
        description = entry.get("description")
        skills[name] = {
            "description": description if isinstance(description, str) else "",
            "is_primitive": is_primitive,
            "sub_skills": sub_skills,
            "used_by": used_by,
        }
    return skills


def _find_hierarchy(raw: Any, task: str, library: Path, warnings: list[str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise GenHRLError(library, "'hierarchies' must be an object mapping task names to hierarchies")
    if task in raw:
        entry = raw[task]
    elif len(raw) == 1:
        key, entry = next(iter(raw.items()))
        warnings.append(f"The library's only hierarchy is named {key!r}, not {task!r} like its folder; used it.")
    else:
        listed = ", ".join(repr(key) for key in raw) or "none"
        raise GenHRLError(library, f"no hierarchy for task {task!r} under 'hierarchies' (found: {listed})")
    if not isinstance(entry, dict) or "structure" not in entry:
        raise GenHRLError(library, f"hierarchy {task!r} has no 'structure'")
    return entry


def parse_task(task_dir: Path) -> TaskInfo:
    """Read one task folder, `<Robot>_generated/skills/<task>/`, into a TaskInfo.

    Rules (those of GenHRL's reference orchestrator unless said otherwise):

    - Levels come from the `skills` map: `is_primitive` is authoritative (level 0); a composite
      is 1 + the deepest of its *defined* sub-skills (1 if it has none).
    - Training order: names met in a depth-first pre-order walk of the hierarchy's `structure`
      (children in order, each name once), sorted stably by level.
    - Skills defined in the `skills` map but absent from the structure are trained too (GenHRL
      merges regenerated tasks into the same library, so they can be stale, but a composite may
      still need them): they follow the structure's skills of their level, in map order, and
      each is reported in a warning.
    - A name that is referenced (a sub-skill or a structure node) but never defined becomes an
      undefined skill (`defined=False`, level 0): it is kept out of the training order and
      placed after every defined skill.
    - A 2-level library whose structure is a list, or whose root is a virtual root named after
      the task that the `skills` map does not define, gets that virtual root as a composite of
      the listed skills.
    - Names are case-sensitive everywhere: `Walk_to_Small_Block` and `walk_to_Small_Block` are
      two skills.
    - The object config is `skills/<task>/object_config.json` (what training exports), else
      `tasks/<task>/object_config.json`. Absolute `object_config_paths` written on the machine
      that generated the task are ignored.

    Every quirk is reported as a warning in `TaskInfo.warnings`. Problems that make the task
    unusable (missing library, malformed JSON, a cycle among composites, a name that could
    escape its folder) raise GenHRLError naming the file and the problem.
    """
    task_dir = Path(task_dir)
    if task_dir.parent.name != "skills":
        raise GenHRLError(task_dir, "not a GenHRL task folder (expected <Robot>_generated/skills/<task>)")
    robot_dir = task_dir.parent.parent
    robot = robot_name(robot_dir)
    task = check_name(task_dir.name, "task", task_dir)
    library = task_dir / LIBRARY_FILE
    tasks_side = robot_dir / "tasks" / task
    if not library.is_file():
        if tasks_side.is_dir():
            raise GenHRLError(library, f"missing skill library (the task folder {tasks_side} exists)")
        raise GenHRLError(library, "missing skill library")

    warnings: list[str] = []
    data = _read_json_object(library)
    if "skills" not in data or "hierarchies" not in data:
        raise GenHRLError(library, "not a GenHRL skill library (needs 'skills' and 'hierarchies')")
    skills = _read_skills(data["skills"], library, warnings)
    hierarchy = _find_hierarchy(data["hierarchies"], task, library, warnings)
    raw_structure = hierarchy["structure"]
    hierarchy_description = hierarchy.get("description") if isinstance(hierarchy.get("description"), str) else ""

    if isinstance(raw_structure, list):
        warnings.append(
            f"The hierarchy structure is a list (a 2-level library); used a virtual root named "
            f"after the task, {task!r}, as its parent."
        )
        raw_structure = {"name": task, "description": hierarchy_description, "children": raw_structure}
    root = _check_structure(raw_structure, library)
    if root.name not in skills and root.children:
        if root.name != task:
            warnings.append(f"The structure's root {root.name!r} is not defined in the skills map; created it.")
        elif not isinstance(hierarchy["structure"], list):
            warnings.append(
                f"The structure's root is a virtual root named after the task ({task!r}) that the skills "
                "map does not define; created it as a composite of its children."
            )
        skills[root.name] = {
            "description": raw_structure.get("description") or hierarchy_description,
            "is_primitive": False,
            "sub_skills": [child.name for child in root.children],
            "used_by": [],
        }

    nodes = _preorder(root)
    for node in nodes:
        info = skills.get(node.name)
        if info is None or not node.children:
            continue
        children = [child.name for child in node.children]
        if children != info["sub_skills"] and not info["is_primitive"]:
            warnings.append(
                f"The structure gives {node.name!r} the children {children}, the skills map "
                f"{info['sub_skills']}; the skills map is used for levels and sub-skills."
            )

    levels = _levels(skills, library)

    walk: list[str] = []
    for name in (node.name for node in nodes):
        if name not in walk:
            walk.append(name)
    in_structure = set(walk)
    extras = [name for name in skills if name not in in_structure]
    for name in extras:
        warnings.append(
            f"Skill {name!r} is defined in the skills map but absent from the hierarchy structure; "
            f"it is trained after the structure's level-{levels[name]} skills."
        )
    defined_walk = [name for name in walk + extras if name in skills]
    ordered = sorted(defined_walk, key=lambda name: levels[name])  # stable: keeps walk order per level
    if not ordered:
        raise GenHRLError(library, "defines no skills")

    undefined: list[str] = []
    referrers: dict[str, list[str]] = {}
    for parent, info in skills.items():
        for sub in info["sub_skills"]:
            if sub not in skills:
                referrers.setdefault(sub, []).append(parent)
    for name in [*walk, *referrers]:
        if name not in skills and name not in undefined:
            undefined.append(name)
    for name in undefined:
        users = referrers.get(name)
        where = f"a sub-skill of {', '.join(repr(u) for u in users)}" if users else "in the hierarchy structure"
        warnings.append(
            f"Skill {name!r} is named ({where}) but never defined in the skills map; imported as "
            "undefined, left out of the training order, and it cannot be trained."
        )
    for name, info in skills.items():
        if not info["is_primitive"] and not any(sub in skills for sub in info["sub_skills"]):
            warnings.append(f"Composite skill {name!r} has no defined sub-skills; it cannot be trained.")

    by_fold: dict[str, list[str]] = {}
    for name in [*ordered, *undefined]:
        by_fold.setdefault(name.casefold(), []).append(name)
    for twins in by_fold.values():
        if len(twins) > 1:
            warnings.append(
                "Skills " + " and ".join(repr(t) for t in twins) + " differ only by case; they are "
                "different skills (names are case-sensitive) and their GenHRL folders clash on "
                "case-insensitive filesystems."
            )

    absolute: list[str] = []
    _collect_absolute_paths(data["skills"], absolute)
    _collect_absolute_paths(hierarchy["structure"], absolute)
    if absolute:
        warnings.append(
            f"{len(absolute)} object_config_paths are absolute paths from the machine that generated "
            f"the task (e.g. {absolute[0]!r}); ignored: this task's {OBJECT_CONFIG_FILE} is used."
        )

    object_config = _read_object_config(task_dir, tasks_side, warnings)
    description = _read_description(tasks_side) or hierarchy_description or skills[root.name]["description"]

    skill_infos: list[SkillInfo] = []
    for order, name in enumerate(ordered):
        info = skills[name]
        skill_infos.append(
            SkillInfo(
                name=name,
                description=info["description"],
                is_primitive=info["is_primitive"],
                sub_skills=info["sub_skills"],
                used_by=info["used_by"],
                defined=True,
                level=levels[name],
                order=order,
                embedded_spec=_read_embedded_spec(task_dir / "skills" / name / EMBEDDED_SPEC_FILE),
            )
        )
    for offset, name in enumerate(undefined):
        skill_infos.append(
            SkillInfo(
                name=name,
                description="",
                is_primitive=True,
                sub_skills=[],
                used_by=referrers.get(name, []),
                defined=False,
                level=0,
                order=len(ordered) + offset,
            )
        )

    return TaskInfo(
        name=task,
        robot=robot,
        description=description,
        root_skill=root.name,
        structure=raw_structure,
        skills=skill_infos,
        object_config=object_config,
        warnings=warnings,
        levels=1 + max((levels[name] for name in ordered), default=0),
        task_dir=task_dir,
        robot_dir=robot_dir,
    )


def _read_object_config(task_dir: Path, tasks_side: Path, warnings: list[str]) -> dict[str, Any]:
    primary = task_dir / OBJECT_CONFIG_FILE
    secondary = tasks_side / OBJECT_CONFIG_FILE
    if primary.is_file():
        config = _read_json_object(primary)
        if secondary.is_file() and _read_json_object(secondary) != config:
            # GenHRL keeps two copies; its orchestrator reads tasks/, its UI training skills/.
            task = task_dir.name
            warnings.append(
                f"tasks/{task}/{OBJECT_CONFIG_FILE} differs from skills/{task}/{OBJECT_CONFIG_FILE}; "
                "the portal uses the skills/ copy (the one GenHRL's training exports as OBJECT_CONFIG_PATH)."
            )
        return config
    if secondary.is_file():
        return _read_json_object(secondary)
    warnings.append(f"No {OBJECT_CONFIG_FILE} in {task_dir} or {tasks_side}; the scene is empty.")
    return {}


def _read_description(tasks_side: Path) -> str:
    path = tasks_side / DESCRIPTION_FILE
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise GenHRLError(path, f"cannot be read: {exc}") from None


def _read_embedded_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    return _read_json_object(path)


# --- object config summary -----------------------------------------------------------------------


