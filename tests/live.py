"""A real daphne on loopback serving the test database, and a real chromium to drive it.

pytest-django's `live_server` is a threaded WSGI server: it cannot serve the portal's SSE streams
and does not run the ASGI stack the product runs. `live_daphne` starts `python -m daphne` as a
subprocess pointed at the test database instead.

The fixtures here (`live_daphne`, `api_daphne`, `training_daphne`, `chromium`) are imported into
`tests/conftest.py`, so every test may ask for them:

    @pytest.mark.django_db(transaction=True)   # the server must see the rows the test commits
    def test_page(live_daphne: LiveDaphne) -> None:
        httpx.get(live_daphne.url("/accounts/login/"))

SQLite test databases must be files for another process to share them: `tests/conftest.py`'s
`pytest_configure` calls `use_file_sqlite_test_db(config)` before the database is set up.
PostgreSQL needs nothing: the subprocess gets the test database's name through DATABASE_URL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.factories import ON_CI, REPO_ROOT
from training.management.local_ray import RayHead

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 30.0


@dataclass
class LiveDaphne:
    """A running daphne: `base_url` is `http://127.0.0.1:<port>`; `log_path` holds its output."""

    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def session_cookie(self, user: Any) -> dict[str, Any]:
        """A logged-in session for `user`, as a cookie for Playwright's `context.add_cookies`.

        Needs database access in the calling test; the session row must be committed
        (`django_db(transaction=True)`) for daphne to see it.
        """
        from django.conf import settings
        from django.test import Client

        client = Client()
        client.force_login(user)
        morsel = client.cookies[settings.SESSION_COOKIE_NAME]
        return {"name": morsel.key, "value": morsel.value, "url": self.base_url}


def use_file_sqlite_test_db(config: pytest.Config) -> None:
    """Point a SQLite test database at a temporary file that a daphne subprocess can open.

    Must run before pytest-django creates the test database: `tests/conftest.py`'s
    `pytest_configure` hook calls it, once for the whole suite.
    A no-op for other engines, and when a test database name is already set.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    test_settings = database.setdefault("TEST", {})
    if database["ENGINE"] != "django.db.backends.sqlite3" or test_settings.get("NAME"):
        return
    # One folder per pytest run: engineers and CI may run the suite side by side.
    folder = Path(tempfile.mkdtemp(prefix="genhrl-test-db-"))
    test_settings["NAME"] = str(folder / "test.sqlite3")
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def live_database_url() -> str:
    """DATABASE_URL of the test database that pytest-django set up (call after `django_db_setup`)."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        if not name or str(name) == ":memory:" or "mode=memory" in str(name):
            raise RuntimeError(
                "live_daphne needs a file-based SQLite test database: call use_file_sqlite_test_db() "
                "from a pytest_configure hook"
            )
        return f"sqlite:///{Path(name).resolve()}"
    configured = os.environ.get("DATABASE_URL", "")
    if not configured:
        raise RuntimeError(f"cannot tell a subprocess how to reach the {connection.vendor} test database")
    parts = urlsplit(configured)
    return urlunsplit(parts._replace(path="/" + quote(str(name))))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_daphne(
    database_url: str,
    *,
    data_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
    port: int | None = None,
) -> Iterator[LiveDaphne]:
    """Run `python -m daphne genhrl_site.asgi:application` on a loopback port until the block ends.

    The port is a free one, or `port` (e.g. the same one again, to restart a server under open pages).
    """
    from django.conf import settings

    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"daphne-{port}.log"
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "genhrl_site.settings",
        "DATABASE_URL": database_url,
        "GENHRL_DATA_DIR": str(data_dir),
        # Same key as the test process, so sessions made by a test are valid in the server.
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    # The server must keep Django's async-safety checks, whatever the test process relaxed.
    child_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "genhrl_site.asgi:application"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveDaphne(base_url=f"http://127.0.0.1:{port}", port=port, process=process, log_path=log_path)
    try:
        _wait_until_serving(server, timeout)
        yield server
    finally:
        _stop(process)


def _wait_until_serving(server: LiveDaphne, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url("/accounts/login/"), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"daphne did not serve within {timeout:.0f} s:\n{server.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_daphne(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveDaphne]:
    """One daphne for the whole session, on the test database. Tests need `django_db(transaction=True)`.

    Its embedded training worker is off: a server that outlives many tests must not claim the
    sessions other tests queue. Tests that want the server to train start their own with
    `run_daphne(live_database_url(), data_dir=..., env={"GENHRL_EMBEDDED_WORKER": "1"})`.
    """
    env = {"GENHRL_EMBEDDED_WORKER": "0"}
    with run_daphne(live_database_url(), data_dir=tmp_path_factory.mktemp("daphne"), env=env) as server:
        yield server


@pytest.fixture(scope="session")
def api_daphne(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaphne]:
    """A daphne on the test database with the relay on and no embedded worker.

    Tests need `django_db(transaction=True)` so that it sees their rows. Nothing trains in it:
    training happens in another process (`tests.factories.train_elsewhere`), which is the point.
    """
    # The fuzzer sends invalid credentials to every operation (its ST401 check), more than the
    # sign-in lock-out allows from one address; the lock-out itself is tested in-process.
    env = {"GENHRL_EMBEDDED_WORKER": "0", "GENHRL_RELAY_POLL_MS": "25", "GENHRL_LOGIN_FAILURE_LIMIT": "1000"}
    with run_daphne(live_database_url(), data_dir=tmp_path_factory.mktemp("api-daphne"), env=env) as server:
        yield server


@pytest.fixture
def training_daphne(django_db_setup: None, tmp_path: Path) -> Iterator[LiveDaphne]:
    """A daphne of its own (fresh data folder) whose embedded worker trains what the pages queue:
    the embedded simulator, for real (tiny settings such as `tests.factories.WEB_OPTIONS`)."""
    env = {"GENHRL_EMBEDDED_WORKER": "1", "GENHRL_WORKER_SLOTS": "1", "GENHRL_RELAY_POLL_MS": "40"}
    with run_daphne(live_database_url(), data_dir=tmp_path / "daphne", env=env) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright; skips without it (fails on CI).

    Playwright's sync API keeps an event loop in the test thread, so Django would refuse the
    test's own database calls as "async"; the override is module-wide because pytest-django's
    teardown runs after function-scoped fixtures are undone (microsoft/playwright-pytest#29).
    """
    if not CHROMIUM.exists():
        if ON_CI:
            pytest.fail(f"{CHROMIUM} is missing (apt-get install -y --no-install-recommends chromium)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()


# -- a Ray head on 127.0.0.1 (training/management/local_ray.py) -------------------------------------
@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A Ray head started for the tests: 2 CPUs and 2 fake GPUs, jobs pending > 10 s fail."""
    from training.management.local_ray import RayNotInstalled, local_head

    try:
        with local_head(cpus=2, gpus=2) as head:
            yield head
    except RayNotInstalled as exc:
        if ON_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


__all__ = [
    "LiveDaphne",
    "RayHead",
    "ray_head",
    "api_daphne",
    "chromium",
    "free_port",
    "live_daphne",
    "run_daphne",
    "live_database_url",
    "training_daphne",
    "use_file_sqlite_test_db",
]
