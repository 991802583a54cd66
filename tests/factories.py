"""Plain helpers and constants that tests import: one definition of each, for every test folder.

Fixtures live in `tests/conftest.py` (and, for the live daphne and chromium, `tests/live.py`); what a
test calls itself lives here. Sections:

- paths: the repository, the real GenHRL fixtures, the stand-in scripts in `tests/fakes/`;
- training options and timings: `TINY`, `WEB_OPTIONS`, `FAST`;
- accounts and the API: `make_researcher`, `csrf_headers`, `api_url`, the permission matrix's actors;
- tasks: `one_skill_task`, `make_task`, the doorway task's data, GenHRL trees in tmp_path (`Lab`);
- sessions: `run_session`, `give_states`, run folders of the clean-up tests;
- the fake trainer in this process (`fake_builder`, `orchestrate`) and in others (`train_elsewhere`,
  `Workers`);
- waiting: `wait_for`, `group_gone`;
- reading SSE streams: `events`, `aevents`;
- the real trainer as a subprocess, for `tests/trainer`: `make_spec`, `run_trainer`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.test import Client

from tasks.models import Skill, Task
from training import paths, permissions, services
from training.config import TrainingConfig
from training.engine.orchestrator import Orchestrator
from training.engine.supervision import Timings
from training.executor import LaunchCommand, group_members
from training.models import TrainingSession
from training.trainer import records
from training.trainer.launch import build_command

# -- paths ------------------------------------------------------------------------------------------
REPO_ROOT = Path(__file__).resolve().parent.parent
# The real GenHRL task files, in their real layout, shared by the whole team beside this repository.
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "isaaclab"
G1_GENERATED = (
    SHARED_FIXTURES / "source" / "isaaclab_tasks" / "isaaclab_tasks" / "manager_based" / "G1_generated"
)
DEMO_ROOT = REPO_ROOT / "tasks" / "demo"
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Scripts run as subprocesses (see their docstrings).
FAKES = Path(__file__).resolve().parent / "fakes"
FAKE_TRAINER = FAKES / "fake_trainer.py"  # follows the trainer's contract, starts in milliseconds
FAKE_WORKER = FAKES / "fake_worker.py"  # `manage.py training_worker` with the fake trainer
TRAIN_ELSEWHERE = FAKES / "train_elsewhere.py"  # one session supervised in another process

# -- training options and timings -------------------------------------------------------------------
# Options small enough for the fake trainer to finish a skill in about a second.
TINY: dict[str, Any] = {
    "num_envs": 16,
    "min_success_states": 10,
    "min_steps_primitive": 0,
    "min_steps_composite": 0,
    "max_time": 1,
}

# What the training pages' tests queue and type in the dialog: every field the form needs (a
# seed too), and small enough that the real embedded trainer finishes a demo skill in seconds.
WEB_OPTIONS: dict[str, Any] = {
    "num_envs": 64,
    "min_success_states": 5,
    "min_steps_primitive": 2048,
    "min_steps_composite": 1024,
    "max_time": 2,
    "seed": 1,
}

# Waits short enough for tests, long enough for a graceful stop of the fake trainer.
FAST = Timings(sigint_grace=3.0, sigterm_grace=2.0, exit_grace_after_done=1.0, target_grace=1.0, metric_interval=0.0)


# -- accounts and the API ---------------------------------------------------------------------------
def make_researcher(user: Any) -> Any:
    """Give `user` the start permission the way an admin does: the Researchers group.

    get_or_create, because a transactional test's flush removes the group the migration made.
    """
    permission = Permission.objects.get(content_type__app_label="training", codename="start_training")
    group, _ = Group.objects.get_or_create(name=permissions.RESEARCHERS_GROUP)
    group.permissions.add(permission)
    user.groups.add(group)
    return user


def csrf_headers(client: Client) -> dict[str, str]:
    """Fetch a page to get the csrftoken cookie, and send it back the way htmx does."""
    client.get("/accounts/login/")
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


def api_url(task: Task | str, action: str, robot: str | None = None) -> str:
    """`/api/tasks/<name>/training/<action>`, with `?robot=` when given a task or a robot."""
    name = task if isinstance(task, str) else task.name
    robot = robot if robot is not None or isinstance(task, str) else task.robot
    url = f"/api/tasks/{name}/training/{action}"
    return f"{url}?robot={robot}" if robot else url


# The actors of every permission matrix (the `client_for` fixture acts as each of them): the owner
# is the `researcher` fixture, `other` a plain account, `staff` the staff account.
OWNER, OTHER, STAFF, ANONYMOUS = "owner", "other", "staff", "anonymous"
ACTORS = [OWNER, OTHER, STAFF, ANONYMOUS]
AUTHS = ["token", "session"]


# -- tasks ------------------------------------------------------------------------------------------
def one_skill_task(name: str, robot: str = "PointMass") -> Task:
    """A task with a single primitive skill, for tests that need many tasks."""
    task = Task.objects.create(
        name=name, robot=robot, backend=Task.Backend.EMBEDDED, root_skill=name,
        source_path=f"/demo/{robot}_generated/skills/{name}", skill_count=1, levels=1,
    )
    Skill.objects.create(task=task, name=name, level=0, order=0, is_primitive=True)
    return task


def make_task(name: str = "task", robot: str = "G1", **fields: Any) -> Task:
    """A task row without skills (an Isaac Lab one unless told otherwise), for the pages' tests."""
    defaults: dict[str, Any] = {
        "backend": Task.Backend.ISAACLAB,
        "description": f"{name} description",
        "root_skill": name,
        "source_path": f"/lab/{robot}_generated/skills/{name}",
        "skill_count": 1,
        "levels": 1,
    }
    return Task.objects.create(name=name, robot=robot, **{**defaults, **fields})


DOORWAY_OBJECTS: dict[str, Any] = {
    "_comment": "Two walls form a doorway; a block waits beyond it.",
    "num_cubes": 2,
    "_cube_comments": ["Left wall", "Small block"],
    "mass_cubes": [1000.0, 1.0],
    "position_cubes": [[3.0, -2.8, 0.75], [5.5, -3.0, 0.15]],
    "size_cubes": [[0.5, 5.0, 1.5], [0.3, 0.3, 0.3]],
    "num_spheres": 1,
    "_sphere_comments": ["Red ball"],
    "position_spheres": [[1.0, 1.0, 0.1]],
    "radius_spheres": [0.2],
    "num_cylinders": 1,
    "_cylinder_comments": ["Pillar"],
    "position_cylinders": [[2.0, 2.0, 1.0]],
    "radius_cylinders": [0.25],
    "height_cylinders": [2.0],
    "num_cones": 1,
    "_cone_comments": ["Traffic cone"],
    "position_cones": [[-1.0, 2.0, 0.3]],
    "radius_cones": [0.2],
    "height_cones": [0.6],
    "num_capsules": 1,
    "_capsule_comments": ["Capsule buoy"],
    "position_capsules": [[-2.0, -1.0, 0.3]],
    "radius_capsules": [0.1],
    "height_capsules": [0.5],
}

# Like GenHRL's committed doorway_and_goal_seed42: `Walk_to_Small_Block` (composite) and
# `walk_to_Small_Block` (its primitive child) differ only by case. `open_door` is named, never defined.
DOORWAY_HIERARCHY: dict[str, Any] = {
    "name": "doorway_and_goal",
    "description": "Walk through the doorway, then to the small block.",
    "children": [
        {
            "name": "Navigate_Doorway",
            "description": "Get through the doorway.",
            "children": [
                {"name": "approach_doorway", "description": "Walk up to the doorway."},
                {"name": "open_door", "description": "Open the door."},
            ],
        },
        {
            "name": "Walk_to_Small_Block",
            "description": "Go to the small block (composite).",
            "children": [{"name": "walk_to_Small_Block", "description": "Step to the small block (primitive)."}],
        },
    ],
}
DOORWAY_SKILLS = [
    # name, level, order, is_primitive, sub_skills, used_by, defined
    ("approach_doorway", 0, 0, True, [], ["Navigate_Doorway"], True),
    ("open_door", 0, 1, True, [], ["Navigate_Doorway"], False),
    ("walk_to_Small_Block", 0, 2, True, [], ["Walk_to_Small_Block"], True),
    ("Navigate_Doorway", 1, 3, False, ["approach_doorway", "open_door"], ["doorway_and_goal"], True),
    ("Walk_to_Small_Block", 1, 4, False, ["walk_to_Small_Block"], ["doorway_and_goal"], True),
    ("doorway_and_goal", 2, 5, False, ["Navigate_Doorway", "Walk_to_Small_Block"], [], True),
]


def make_doorway_task() -> Task:
    """A three-level G1 task with case twins, an undefined skill, warnings and every shape kind."""
    task = make_task(
        "doorway_and_goal",
        "G1",
        description="Walk through a doorway formed by two heavy walls, then walk to a small block.",
        hierarchy=DOORWAY_HIERARCHY,
        object_config=DOORWAY_OBJECTS,
        warnings=["skill 'open_door' is named in the hierarchy but not defined in skill_library.json"],
        skill_count=len(DOORWAY_SKILLS),
        levels=3,
    )
    descriptions = {}

    def collect(node: dict[str, Any]) -> None:
        descriptions[node["name"]] = node["description"]
        for child in node.get("children", []):
            collect(child)

    collect(DOORWAY_HIERARCHY)
    Skill.objects.bulk_create(
        Skill(
            task=task,
            name=name,
            description=descriptions[name] if defined else "",
            level=level,
            order=order,
            is_primitive=primitive,
            sub_skills=subs,
            used_by=used_by,
            defined=defined,
        )
        for name, level, order, primitive, subs, used_by, defined in DOORWAY_SKILLS
    )
    return task


# -- GenHRL task trees in tmp_path, for quirks and errors the real fixtures lack ---------------------
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


# -- sessions ---------------------------------------------------------------------------------------
def run_session(task: Task, owner: Any, options: dict[str, Any] = TINY, **changes: Any) -> TrainingSession:
    """A session as a worker leaves it a little way in: planned, first skill training with some
    metrics and output, the others pending (no trainer runs: the rows are written directly)."""
    from datetime import timedelta

    from django.utils import timezone

    from training.models import LogLine, MetricPoint, SessionStatus, SkillRun, SkillStatus, Stage

    session = services.start_session(task, {**options, **changes}, owner=owner)
    session.transition_to(SessionStatus.RUNNING, actor="worker:test", worker_id="test", heartbeat_at=timezone.now())
    session.set_stage(Stage.PLANNING, actor="worker:test")
    session.set_stage(Stage.TRAINING, actor="worker:test")
    skills = list(task.skills.filter(defined=True).order_by("order"))
    runs = [
        SkillRun.objects.create(session=session, skill=skill, order=i, min_success_states=session.config["min_success_states"])
        for i, skill in enumerate(skills)
    ]
    first = runs[0]
    first.transition_to(SkillStatus.TRAINING, actor="worker:test", started_at=timezone.now() - timedelta(seconds=42))
    SkillRun.objects.filter(pk=first.pk).update(success_states=3, frames=4096, epochs=4, last_reward=1.5, best_reward=1.5)
    TrainingSession.objects.filter(pk=session.pk).update(current_skill=first.skill)
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        MetricPoint(skill_run=first, tag=tag, step=1024 * (i + 1), value=float(i), time=now)
        for i in range(4) for tag in ("mean_reward", "success_states")
    )
    LogLine.objects.bulk_create([
        LogLine(skill_run=first, seq=1, stream=LogLine.Stream.STDOUT, text="epoch: 1 frames: 1024", time=now),
        LogLine(skill_run=first, seq=2, stream=LogLine.Stream.STDERR, text="Traceback (most recent call last):", time=now),
        LogLine(skill_run=first, seq=3, stream=LogLine.Stream.STDERR, text="RuntimeError: boom", time=now),
        LogLine(skill_run=first, seq=4, stream=LogLine.Stream.SYSTEM, text="supervisor: stopping", time=now),
    ])
    session.refresh_from_db()
    return session


class Payload:
    """Unpickling this touches `marker`: proof that code from a file ran (see test_safeload)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return (Path.touch, (self.marker,))


def evil_file(path: Path, marker: Path) -> Path:
    """A `.pt` file shaped like GenHRL's success states whose pickle runs code when fully loaded."""
    import torch

    torch.save([{"state": torch.zeros(3)}, Payload(marker)], path)
    return path


def give_states(skill: Skill, count: int, policy: bool = True) -> None:
    """Put `count` success states (and a policy) in a skill's folders, as an earlier run would."""
    from training.trainer.success import state_file_name

    folder = paths.success_dir(skill)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / state_file_name(count)).write_bytes(b"fake")
    if policy:
        target = paths.policy_dir(skill)
        target.mkdir(parents=True, exist_ok=True)
        (target / "policy.pth").write_bytes(b"fake")


def write(path: Path, size: int) -> None:
    """A file of `size` bytes, with its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def run_folder(session: TrainingSession) -> Path:
    """The run folder of a `make_session` session's only skill run."""
    return Path(session.skill_runs.get().run_dir)


def shared_files(session: TrainingSession) -> list[Path]:
    """The skill's own files that `make_session` writes: shared by every session, never cleaned up."""
    skill = session.skill_runs.get().skill
    return [paths.policy_dir(skill) / "policy.pth", paths.success_dir(skill) / "ss-1-abc-n60.pt"]


# -- the fake trainer, supervised in this process ---------------------------------------------------
def fake_builder(*extra: str) -> Callable[[Path, TrainingConfig, Skill], LaunchCommand]:
    """Launch the fake trainer with extra arguments, in the run folder, with a small environment."""

    def build(spec_path: Path, config: TrainingConfig, skill: Skill) -> LaunchCommand:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        argv = [sys.executable, str(FAKE_TRAINER), "--spec", str(spec_path), *extra]
        return LaunchCommand(argv=argv, env=env, cwd=spec_path.parent)

    return build


def orchestrate(session: TrainingSession, *extra: str, timings: Timings = FAST, **kwargs: Any) -> Orchestrator:
    """An orchestrator for `session` that launches the fake trainer with `extra` arguments."""
    return Orchestrator(
        session, command_builder=fake_builder(*extra), timings=timings, actor="test", **kwargs
    )


# -- the fake trainer in other processes ------------------------------------------------------------
def child_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a Django subprocess on the test database (see `tests.live.live_database_url`)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
        "DATABASE_URL": database_url,
        "GENHRL_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }
    # The child must keep Django's async-safety checks, whatever the test process relaxed.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def train_elsewhere(session_id: int, data_dir: Path, *trainer_args: str) -> subprocess.Popen[bytes]:
    """Supervise a session in a separate Python process with the fake trainer, as `manage.py train` would."""
    from tests.live import live_database_url  # tests.live imports this module

    argv = [sys.executable, str(TRAIN_ELSEWHERE), str(session_id), str(FAKE_TRAINER), *trainer_args]
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env(live_database_url(), data_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class Workers:
    """Worker processes started by one test; all are killed (by their own pid) at its end.

    Workers run as real processes (`manage.py training_worker`, or `tests/fakes/fake_worker.py`:
    the same command with the fake trainer), pointed at the test database through DATABASE_URL, so
    claims, leases, signals and process groups are exercised the way they happen in production.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, *args: str, fake: str | None = "", env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """A worker; `fake` holds the fake trainer's arguments, None runs the real trainer."""
        from tests.live import live_database_url  # tests.live imports this module

        environment = child_env(live_database_url(), self.data_dir, **(env or {}))
        if fake is None:
            argv = [sys.executable, "manage.py", "training_worker", *args]
        else:
            environment["FAKE_TRAINER_ARGS"] = fake
            argv = [sys.executable, str(FAKE_WORKER), *args]
        log = self.data_dir / f"worker-{len(self.processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=REPO_ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.logs.append(log)
        return process

    def log(self, index: int = -1) -> str:
        return self.logs[index].read_text(errors="replace") if self.logs else ""

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.send_signal(signal.SIGTERM)  # at once
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


# -- waiting ----------------------------------------------------------------------------------------
def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def group_gone(pgid: int) -> bool:
    """No process left in the group: none alive, and no exited child of this test process unreaped.

    A zombie whose parent is init (an orphan, waiting to be reaped) does not count: reaping it is
    init's job, not the code under test's. One that is our own child does: we failed to wait for it.
    """
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False
    if group_members(pgid):
        return False
    return not _own_zombies(pgid)


def _own_zombies(pgid: int) -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: parse after its last ")".
        fields = raw[raw.rfind(b")") + 2 :].split()
        try:
            state, parent, group = fields[0].decode(), int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            continue
        if group == pgid and parent == me and state in ("Z", "X"):
            found.append(int(entry))
    return found


# -- reading SSE streams: chunks in, (event, data) out ----------------------------------------------
def parse_block(block: str) -> tuple[str, Any] | None:
    """One SSE message (lines without the blank separator) as (event, data); None for comments."""
    event, data = "message", []
    for line in block.split("\n"):
        if line.startswith(":") or not line:
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if not data:
        return None
    text = "\n".join(data)
    try:
        return event, json.loads(text)
    except ValueError:
        return event, text


class Buffer:
    """Accumulates chunks and yields complete messages."""

    def __init__(self) -> None:
        self.text = ""
        self.comments = 0

    def feed(self, chunk: bytes | str) -> list[tuple[str, Any]]:
        self.text += chunk.decode() if isinstance(chunk, bytes) else chunk
        self.text = self.text.replace("\r\n", "\n")
        messages = []
        while "\n\n" in self.text:
            block, self.text = self.text.split("\n\n", 1)
            parsed = parse_block(block)
            if parsed is None:
                self.comments += block.startswith(":")
            else:
                messages.append(parsed)
        return messages


async def aevents(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, Any]]:
    buffer = Buffer()
    async for chunk in chunks:
        for message in buffer.feed(chunk):
            yield message


def events(chunks: Iterator[bytes]) -> Iterator[tuple[str, Any]]:
    buffer = Buffer()
    for chunk in chunks:
        yield from buffer.feed(chunk)


# -- the real trainer as a subprocess (tests/trainer) -----------------------------------------------
# Specs from the bundled demo tasks; the subprocess is the real thing (`python -u -m
# training.trainer --spec ...`, own process group, argv list) with tiny settings: 64 envs, small
# success targets.
DEMO_SKILLS = DEMO_ROOT / "PointMass_generated" / "skills"
TINY_ENVS = 64
RUN_TIMEOUT = 120  # seconds; a tiny run takes a few


def skill_spec(task: str, skill: str, **changes: Any) -> dict[str, Any]:
    spec = json.loads((DEMO_SKILLS / task / "skills" / skill / "embedded.json").read_text())
    spec.update(changes)
    return spec


def make_spec(
    root: Path,
    task: str,
    skill: str,
    *,
    is_primitive: bool = True,
    sub_skills: list[dict[str, Any]] | None = None,
    start_states_dir: Path | None = None,
    spec_changes: dict[str, Any] | None = None,
    **fields: Any,
) -> Path:
    """Write run/spec.json for one skill of a demo task under `root`; returns its path."""
    run_dir = root / skill / "runs" / "1"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "backend": "embedded",
        "task": task,
        "robot": "PointMass",
        "skill": skill,
        "is_primitive": is_primitive,
        "level": 0 if is_primitive else 1,
        "run_dir": str(run_dir),
        "success_dir": str(root / skill / "success_states"),
        "start_states_dir": str(start_states_dir) if start_states_dir else None,
        "num_envs": TINY_ENVS,
        "seed": 3,
        "min_success_states": 20,
        "min_frames": 0,
        "max_frames": 400_000,
        "video": False,
        "video_interval": 2000,
        "video_length": 200,
        "object_config": json.loads((DEMO_SKILLS / task / "object_config.json").read_text()),
        "skill_spec": skill_spec(task, skill, **(spec_changes or {})),
        "sub_skills": sub_skills or [],
    }
    spec.update(fields)
    path = run_dir / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


def sub_skill(
    task: str, skill: str, policy_dir: Path, children: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "name": skill,
        "is_primitive": not children,
        "skill_spec": skill_spec(task, skill),
        "policy_dir": str(policy_dir),
        "sub_skills": children or [],
    }


@dataclass
class Run:
    returncode: int
    records: list[dict[str, Any]]
    lines: list[str]
    stderr: str
    seconds: float
    spec_path: Path
    signalled_after: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    @property
    def done(self) -> dict[str, Any]:
        (done,) = self.of("done")
        return done

    @property
    def spec(self) -> dict[str, Any]:
        return json.loads(self.spec_path.read_text())


def run_trainer(
    spec_path: Path,
    *,
    send: int | None = None,
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Run:
    """Run the trainer to its end; optionally send `send` to its group once `when(record)` holds."""
    argv, env, cwd = build_command(spec_path, "embedded")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    got: list[dict[str, Any]] = []
    lines: list[str] = []
    trigger: dict[str, Any] | None = None
    try:
        for line in proc.stdout:
            lines.append(line)
            record = records.parse_line(line)
            if record is None:
                continue
            got.append(record)
            if send is not None and trigger is None and when is not None and when(record):
                trigger = record
                os.killpg(proc.pid, send)
            if time.monotonic() - started > RUN_TIMEOUT:
                break
        proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read()
    return Run(proc.returncode, got, lines, stderr, time.monotonic() - started, spec_path, trigger)


@dataclass
class FetchBlock:
    """fetch_block trained bottom-up by `tests/trainer/conftest.py`'s `fetch_block_runs`."""

    root: Path
    go_to_block: Run
    go_to_goal: Run
    fetch_block: Run


# -- a webhook receiver on 127.0.0.1 (notifications) ----------------------------------------------
class WebhookServer:
    """An HTTP server on 127.0.0.1 that records every POST (path, headers, JSON body) and answers
    with the next status of `statuses` (then 200). Use as a context manager; `url` is its address."""

    def __init__(self, *statuses: int) -> None:
        import http.server
        import threading

        self.statuses = list(statuses)
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                server.received.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status = server.statuses.pop(0) if server.statuses else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()
                self.wfile.write(b"ok")
                server.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def __enter__(self) -> WebhookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
