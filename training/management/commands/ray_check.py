"""`manage.py ray_check`: can the Ray cluster run this portal's trainers?

Trainers read and write by absolute path (spec.json, run folders, success states, policies), run
with this portal's Python and import its code. So on every node the data folder, the trainer code
(and the Isaac Lab root, when set) must be mounted at the same paths, and this virtualenv's Python
must exist. This command submits one small job pinned to each alive node (its `node:<ip>`
resource) that checks exactly that, and prints each node's Python and torch. Exit status 1 if any
node fails a check.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.executor import LaunchCommand
from training.leases import ray_executor
from training.ray_executor import entrypoint
from training.trainer.launch import REPO_ROOT

# Runs on the node with this portal's Python: argv[1] is a JSON list of (label, path, must_write).
PROBE = r"""
import json, os, platform, socket, sys, tempfile
checks = []
for label, path, write in json.loads(sys.argv[1]):
    ok = os.path.exists(path)
    detail = "present" if ok else "missing"
    if ok and write:
        try:
            fd, name = tempfile.mkstemp(prefix=".ray_check-", dir=path)
            os.close(fd)
            os.unlink(name)
            detail = "writable"
        except OSError as exc:
            ok, detail = False, "not writable: %s" % exc
    checks.append({"what": label, "path": path, "ok": ok, "detail": detail})
try:
    import torch
    torch_version = torch.__version__
    cuda = torch.cuda.is_available()
except Exception as exc:
    torch_version, cuda = "not importable: %s" % exc, False
print("RAY_CHECK " + json.dumps({
    "host": socket.gethostname(), "python": platform.python_version(), "executable": sys.executable,
    "torch": torch_version, "cuda": cuda, "checks": checks,
}), flush=True)
"""


class Command(BaseCommand):
    help = "Check that every alive Ray node sees this portal's folders and Python (GENHRL_RAY_ADDRESS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--address", help="the Ray dashboard (default GENHRL_RAY_ADDRESS)")
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each node's job")

    def handle(self, *args: Any, **options: Any) -> None:
        executor = ray_executor()
        address = options["address"] or executor.address
        if address != executor.address:
            from training.ray_executor import RayExecutor

            executor = RayExecutor(address, instance=executor.instance, resources=executor.resources)
        try:
            from ray.util.state import list_nodes

            # A head that just started lists its own node a moment after its dashboard answers.
            deadline = time.monotonic() + 15
            while True:
                nodes = [n for n in list_nodes(address=address) if str(n.state) == "ALIVE"]
                if nodes or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        except ImportError:
            raise CommandError("Ray is not installed here: pip install -r requirements-ray.txt") from None
        except Exception as exc:
            raise CommandError(f"cannot reach the Ray cluster at {address}: {exc}") from None
        if not nodes:
            raise CommandError(f"the Ray cluster at {address} has no alive node")
        paths = [
            ("data folder (run folders)", str(Path(settings.GENHRL_RUNS_DIR).parent), True),
            ("trainer code", str(REPO_ROOT / "training" / "trainer" / "__main__.py"), False),
            ("this portal's Python", sys.executable, False),
        ]
        if settings.GENHRL_ISAACLAB_ROOT:
            paths.append(("Isaac Lab root", str(settings.GENHRL_ISAACLAB_ROOT), False))
        failed = 0
        for node in nodes:
            report = self._probe(executor, node.node_ip, paths, options["timeout"])
            failed += self._print(node.node_ip, report)
        if failed:
            raise CommandError(f"{failed} node(s) cannot run this portal's trainers (see above)")
        self.stdout.write(self.style.SUCCESS(f"All {len(nodes)} node(s) can run this portal's trainers."))

    def _probe(self, executor: Any, ip: str, paths: list[tuple[str, str, bool]], timeout: float) -> dict[str, Any]:
        job_id = f"genhrl-{executor.instance}-ray-check-{ip.replace('.', '-')}-{int(time.time())}"
        command = LaunchCommand(argv=[sys.executable, "-c", PROBE, json.dumps(paths)], env={}, cwd=Path("/"))
        client = executor.client
        client.submit_job(
            entrypoint=entrypoint(command), submission_id=job_id, entrypoint_num_cpus=0,
            entrypoint_resources={f"node:{ip}": 0.001}, metadata={"genhrl_instance": executor.instance},
        )
        deadline = time.monotonic() + timeout
        while str(client.get_job_status(job_id)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
            if time.monotonic() > deadline:
                client.stop_job(job_id)
                return {"error": f"no answer within {timeout:g} s (is a CPU free on it?)"}
            time.sleep(0.5)
        logs = client.get_job_logs(job_id)
        for line in logs.splitlines():
            if line.startswith("RAY_CHECK "):
                return json.loads(line[len("RAY_CHECK "):])
        return {"error": "the probe did not run: " + (logs.strip().splitlines() or ["no output"])[-1]}

    def _print(self, ip: str, report: dict[str, Any]) -> int:
        if "error" in report:
            self.stdout.write(self.style.ERROR(f"node {ip}: {report['error']}"))
            return 1
        self.stdout.write(
            f"node {ip} ({report['host']}): Python {report['python']} at {report['executable']}, "
            f"torch {report['torch']}{', CUDA available' if report['cuda'] else ''}"
        )
        bad = 0
        for check in report["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            self.stdout.write(f"  {mark} {check['what']}: {check['path']} ({check['detail']})")
            bad += not check["ok"]
        return int(bad > 0)
