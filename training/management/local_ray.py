"""A Ray head on this machine, reachable on 127.0.0.1 only: for the benchmark and the tests.

What it takes (shared/reference/ray-jobs.md): `--node-ip-address 127.0.0.1` alone is not enough;
`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` in the head's and every client's environment keeps every
socket on loopback. Free ports everywhere (Ray's default 6379 is Redis's), its own temp folder,
token auth off explicitly (a stray ~/.ray/auth_token would switch it on). Torn down by SIGTERM to
the `ray start --block` process alone (~3 s); never `ray stop`, which kills every Ray process on
the machine by name.
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

# Clients need these too (os.environ of the process that submits jobs).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


class RayNotInstalled(RuntimeError):
    pass


@dataclass
class RayHead:
    address: str  # the dashboard: what JobSubmissionClient and GENHRL_RAY_ADDRESS take
    process: subprocess.Popen[bytes]
    log_path: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_head(*, cpus: int = 2, gpus: int = 0, start_timeout: float = 60.0) -> Iterator[RayHead]:
    """Start a head, yield it once its dashboard answers, stop it; the client variables are set
    in this process's environment meanwhile."""
    ray = Path(sys.executable).with_name("ray")
    if not ray.exists():
        raise RayNotInstalled("Ray is not installed (pip install -r requirements-ray.txt)")
    folder = Path(tempfile.mkdtemp(prefix="genhrl-ray-"))  # short: Ray's socket paths must fit in 107 bytes
    dashboard = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8",
        # A job that cannot get its resources fails after 10 s instead of Ray's default 15 minutes.
        "RAY_JOB_START_TIMEOUT_SECONDS": "10", **RAY_ENV,
    }
    argv = [
        str(ray), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(_free_port()),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
        "--ray-client-server-port", str(_free_port()), "--min-worker-port", "20000", "--max-worker-port", "20999",
        "--temp-dir", str(folder / "t"), "--disable-usage-stats", "--num-cpus", str(cpus), "--num-gpus", str(gpus),
        "--include-dashboard", "true",
    ]
    log_path = folder / "head.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=2) as answer:  # noqa: S310 (loopback)
                    if answer.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.25)
        yield RayHead(address, process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)
