"""Fixtures shared by every test folder: accounts and clients, demo tasks, sessions, data folders,
the real GenHRL fixtures, and (from `tests/live.py`) a live daphne and chromium.

Plain helpers and constants that tests import (`TINY`, `wait_for`, `one_skill_task`, ...) live in
`tests/factories.py`. A folder's own `conftest.py` holds only fixtures no other folder uses, and
nothing imports it.

Accounts: `user` is a plain signed-in account (may view, may not start training); `researcher` is
that same account given the start permission through the Researchers group, so a test asks for one
or the other. `other_user` is another plain account, `other_researcher` another researcher who
owns nothing, `staff_user` a staff account (starts without the group).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tasks.models import Task
from tests.factories import (
    ANONYMOUS,
    G1_GENERATED,
    ON_CI,
    OTHER,
    OWNER,
    SHARED_FIXTURES,
    STAFF,
    TINY,
    Lab,
    Run,
    csrf_headers,
    make_doorway_task,
    make_researcher,
    make_spec,
    one_skill_task,
    run_trainer,
    write,
)
from tests.live import (
    api_daphne,
    chromium,
    live_daphne,
    ray_head,
    training_daphne,
    use_file_sqlite_test_db,
)
from training import paths, services
from training.models import LogLine, MetricPoint, SessionStatus, SkillRun, SkillStatus, TrainingSession
from training.tokens import ApiToken


def pytest_configure(config: pytest.Config) -> None:
    # Before any database is created: live daphnes, worker processes and other trainers in
    # subprocesses must open the same SQLite file as the tests.
    use_file_sqlite_test_db(config)


# -- folders ----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated_data_dir(settings, tmp_path):
    """Training artifacts of a test go to its own folder, never to the developer's data/."""
    runs = tmp_path / "training"
    runs.mkdir()
    settings.GENHRL_RUNS_DIR = runs
    return runs


@pytest.fixture
def isaaclab_fixture_tree() -> Path:
    """The real GenHRL fixtures (an Isaac Lab tree) beside this checkout; skips without them (fails on CI)."""
    if not G1_GENERATED.is_dir():
        if ON_CI:
            pytest.fail(f"shared GenHRL fixtures missing at {SHARED_FIXTURES}")
        pytest.skip("shared GenHRL fixtures are not beside this checkout")
    return SHARED_FIXTURES


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    """An empty Isaac Lab tree in tmp_path, to write small GenHRL tasks into."""
    root = tmp_path / "IsaacLab"
    root.mkdir()
    return Lab(root)


@pytest.fixture
def g1_copy(isaaclab_fixture_tree: Path, tmp_path: Path) -> Lab:
    """A writable copy of the real fixture tree, to put broken tasks beside the real ones."""
    import shutil

    root = tmp_path / "IsaacLabCopy"
    shutil.copytree(isaaclab_fixture_tree, root)
    return Lab(root)


# -- accounts and clients ---------------------------------------------------------------------------
@pytest.fixture
def password() -> str:
    return "correct-horse-battery-staple"


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    """Cheap password hashing, for tests that make several accounts (PBKDF2's deliberate slowness
    would be most of their run time). Not for tests that sign in on a live daphne: its settings
    do not know this hasher. Ask for it with `pytest.mark.usefixtures("fast_passwords")`."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user(django_user_model, password):
    """A plain signed-in account, named `researcher`: it may view everything and start nothing."""
    return django_user_model.objects.create_user("researcher", "researcher@example.org", password)


@pytest.fixture
def researcher(user):
    """`user` with the start permission, through the Researchers group (as an admin grants it)."""
    return make_researcher(user)


@pytest.fixture
def other_user(django_user_model, password):
    """Another plain account: may view, may not start."""
    return django_user_model.objects.create_user("other", "other@example.org", password)


@pytest.fixture
def other_researcher(django_user_model: Any, password: str) -> Any:
    """Another researcher: may start, owns nothing."""
    return make_researcher(django_user_model.objects.create_user("colleague", "colleague@example.org", password))


@pytest.fixture
def staff_user(django_user_model, password):
    return django_user_model.objects.create_user("staff", "staff@example.org", password, is_staff=True)


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def token(researcher: Any) -> str:
    """An API token of the researcher."""
    return ApiToken.issue(researcher, name="tests")[1]


@pytest.fixture
def token_client(token: str) -> Client:
    """A script: no cookies, the researcher's Bearer token, no CSRF token."""
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def browser_client(researcher: Any) -> Client:
    """A browser: the researcher logged in by session cookie, CSRF enforced as in production."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    return client


@pytest.fixture
def client_for(researcher: Any, other_user: Any, staff_user: Any) -> Callable[[str, str], tuple[Client, dict[str, str]]]:
    """`(client, headers)` acting as one of `tests.factories.ACTORS` (the researcher is the owner),
    by API token or by browser session (with CSRF)."""
    people = {OWNER: researcher, OTHER: other_user, STAFF: staff_user}

    def make(actor: str, auth: str = "token") -> tuple[Client, dict[str, str]]:
        client = Client(enforce_csrf_checks=True)
        if actor == ANONYMOUS:
            return client, {}
        if auth == "token":
            return client, {"Authorization": f"Bearer {ApiToken.issue(people[actor])[1]}"}
        client.force_login(people[actor])
        return client, csrf_headers(client)

    return make


# -- tasks ------------------------------------------------------------------------------------------
@pytest.fixture
def demo(db: None) -> dict[str, Task]:
    """The bundled demo tasks (robot PointMass) by name, imported the way `make run` imports them."""
    from tasks.importer import import_demo

    report = import_demo()
    assert report.ok, report.lines()
    return {task.name: task for task in Task.objects.filter(robot="PointMass")}


@pytest.fixture
def demo_tasks(demo: dict[str, Task]) -> list[Task]:
    """The demo tasks as a list, by name."""
    return list(Task.objects.filter(robot="PointMass").order_by("name"))


@pytest.fixture
def fetch_block(demo: dict[str, Task]) -> Task:
    """Two primitives and the composite over them."""
    return demo["fetch_block"]


@pytest.fixture
def patrol(demo: dict[str, Task]) -> Task:
    return demo["patrol_beacons"]


@pytest.fixture
def reach_beacon(db: None) -> Task:
    """A task of one primitive skill, the subject of the permission matrices."""
    return one_skill_task("reach_beacon")


@pytest.fixture
def doorway_task(db: None) -> Task:
    """A three-level G1 task with case twins, an undefined skill, warnings and every shape kind."""
    return make_doorway_task()


# -- sessions ---------------------------------------------------------------------------------------
@pytest.fixture
def start() -> Callable[..., TrainingSession]:
    """Queue a session with `TINY` options and no owner, as `manage.py train` would."""

    def make(task: Task, **config: Any) -> TrainingSession:
        return services.start_session(task, {**TINY, **config}, actor="test")

    return make


@pytest.fixture
def queue(researcher: Any) -> Callable[..., TrainingSession]:
    """Queue a session owned by the researcher, as the dialog or the API would (nothing trains it)."""

    def make(task: Task, options: dict[str, Any] = TINY, **changes: Any) -> TrainingSession:
        return services.start_session(task, {**options, **changes}, owner=researcher)

    return make


@pytest.fixture
def queued(reach_beacon: Task, researcher: Any) -> TrainingSession:
    """An active session owned by the researcher."""
    return services.start_session(reach_beacon, TINY, owner=researcher)


@pytest.fixture
def cancelled(queued: TrainingSession) -> TrainingSession:
    """A session that ended unfinished (resumable), owned by the researcher."""
    return services.request_cancel(queued, actor="user:researcher")


@pytest.fixture
def make_session(db: None, user: Any) -> Callable[..., TrainingSession]:
    """A session of its own task with one skill run, its run folder (1000 bytes) and the skill's
    shared files (see `tests.factories.run_folder` and `shared_files`), finished `days_ago`."""
    counter = iter(range(1000))

    def make(status: str = SessionStatus.COMPLETED, *, days_ago: float = 30, lines: int = 0,
             points: int = 0) -> TrainingSession:
        task = one_skill_task(f"task_{next(counter)}")
        skill = task.skills.get()
        finished = timezone.now() - timedelta(days=days_ago)
        session = TrainingSession.objects.create(
            task=task, owner=user, backend="embedded", status=status, created_at=finished,
            finished_at=finished if status in SessionStatus.terminal() else None,
            heartbeat_at=finished,
        )
        run = SkillRun.objects.create(
            session=session, skill=skill, order=0,
            status=SkillStatus.COMPLETED if status in SessionStatus.terminal() else SkillStatus.TRAINING,
            frames=12345, best_reward=9.5, success_states=60, log_excerpt="last words", log_line_count=lines,
        )
        folder = paths.run_dir(skill, run.pk)
        run.run_dir = str(folder)
        run.save(update_fields=["run_dir"])
        write(folder / "nn" / "last.pth", 600)
        write(folder / "trainer.log", 400)
        # The skill's own files, shared by every session of the task: never removed by a clean-up.
        write(paths.policy_dir(skill) / "policy.pth", 10)
        write(paths.success_dir(skill) / "ss-1-abc-n60.pt", 10)
        LogLine.objects.bulk_create(
            LogLine(skill_run=run, seq=i, stream="stdout", text=f"line {i}", time=finished) for i in range(lines)
        )
        MetricPoint.objects.bulk_create(
            MetricPoint(skill_run=run, tag=tag, step=i * 100, value=float(i), time=finished)
            for tag in ("mean_reward", "success_rate") for i in range(points)
        )
        return session

    return make


# -- real TensorBoard files (issue 13a) --------------------------------------------------------------
@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Run]:
    """fetch_block's go_to_block trained for real twice (seeds 1 and 2, tiny): each run folder's
    `summaries/` holds the TensorBoard files rl-games wrote. No database: sessions point at copies."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("tensorboard")
    specs = {seed: make_spec(root / f"seed-{seed}", "fetch_block", "go_to_block", seed=seed, max_frames=12_000,
                             min_success_states=5) for seed in (1, 2)}
    # Side by side: each is mostly start-up (importing torch and rl-games), single-threaded.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(specs, pool.map(run_trainer, specs.values()), strict=True))
    for run in runs.values():
        assert run.returncode == 0, run.stderr[-3000:]
    return runs


@pytest.fixture
def compared_sessions(fetch_block: Task, researcher: Any, trained_runs: dict[int, Run]) -> list[TrainingSession]:
    """Two completed sessions of fetch_block that differ in seed and envs; their go_to_block runs
    hold the real event files of `trained_runs` (copied under this test's training folder)."""
    from training.config import TrainingConfig

    skill = fetch_block.skills.get(name="go_to_block")
    made = []
    for seed, envs in ((1, 64), (2, 128)):
        run = trained_runs[seed]
        config = TrainingConfig.from_data({"seed": seed, "num_envs": envs, "min_success_states": 5}, task=fetch_block)
        ended = timezone.now() - timedelta(minutes=seed)
        session = TrainingSession.objects.create(
            task=fetch_block, owner=researcher, backend="embedded", status=SessionStatus.COMPLETED,
            config=config.to_json(), created_at=ended - timedelta(seconds=run.seconds),
            started_at=ended - timedelta(seconds=run.seconds), finished_at=ended,
        )
        progress = run.of("progress")
        skill_run = SkillRun.objects.create(
            session=session, skill=skill, order=0, status=SkillStatus.COMPLETED, frames=run.done["frames"],
            success_states=run.done["success_states"], success_rate=progress[-1]["success_rate"],
            best_reward=max(p["mean_reward"] for p in progress if p["mean_reward"] is not None),
            elapsed_seconds=run.seconds, started_at=session.started_at, finished_at=ended,
        )
        folder = paths.run_dir(skill, skill_run.pk)
        shutil.copytree(run.spec_path.parent / "summaries", folder / "summaries")
        SkillRun.objects.filter(pk=skill_run.pk).update(run_dir=str(folder))
        made.append(session)
    return made


# -- one real training run with a video (issue 13b) ------------------------------------------------
@pytest.fixture(scope="session")
def trained_go_to_block(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """fetch_block's go_to_block trained once by the real trainer (video on, tiny settings); tests
    copy its run folder and policy (`trained_block_run`)."""
    from tests.factories import make_spec, run_trainer

    root = tmp_path_factory.mktemp("trained_go_to_block")
    run = run_trainer(make_spec(root, "fetch_block", "go_to_block", spec_changes={"min_success_rate": 0.8},
                                video=True, video_interval=40, video_length=20))
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture
def trained_block_run(fetch_block: Task, researcher: Any, trained_go_to_block: Any) -> SkillRun:
    """A completed fetch_block session whose go_to_block run is `trained_go_to_block` (files copied
    into this test's data folder, the policy published)."""
    import shutil

    from training.config import TrainingConfig

    skill = fetch_block.skills.get(name="go_to_block")
    session = TrainingSession.objects.create(
        task=fetch_block, owner=researcher, config=TrainingConfig(video=True).to_json(), backend="embedded",
        status=SessionStatus.COMPLETED,
    )
    run = SkillRun.objects.create(session=session, skill=skill, order=0, status=SkillStatus.COMPLETED, frames=4096)
    folder = paths.run_dir(skill, run.pk)
    shutil.copytree(Path(trained_go_to_block.spec["run_dir"]), folder)
    shutil.copytree(Path(trained_go_to_block.done["policy_dir"]), paths.policy_dir(skill))
    run.run_dir = str(folder)
    run.save(update_fields=["run_dir"])
    return run

__all__ = ["api_daphne", "chromium", "live_daphne", "ray_head", "training_daphne"]  # fixtures from tests/live.py
