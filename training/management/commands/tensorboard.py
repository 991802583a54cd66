"""`manage.py tensorboard SESSION...`: TensorBoard on those sessions' run folders, with readable run
names (`s12-fetch_block-go_to_block`), bound to 127.0.0.1 (issue 13).

It runs the installed `tensorboard` package as a child process (argv list, never a shell) with
`--logdir_spec name:path,...` and stops it by its own pid on Ctrl-C. To reach it from another
machine, tunnel the port (`ssh -L 6006:127.0.0.1:6006 host`): TensorBoard has no login.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import artifacts
from training.models import TrainingSession

HOST = "127.0.0.1"


def logdir_spec(runs: Sequence[tuple[str, Path]]) -> str:
    """`name:path,name:path`; TensorBoard splits on "," and the first ":", so neither may be in a name
    and no "," in a path."""
    parts = []
    for name, path in runs:
        if any(c in name for c in ":,") or "," in str(path):
            raise CommandError(f"cannot pass {name} ({path}) to TensorBoard: ',' or ':' in the name or ',' in the path")
        parts.append(f"{name}:{path}")
    return ",".join(parts)


def tensorboard_argv(runs: Sequence[tuple[str, Path]], port: int, python: str = sys.executable) -> list[str]:
    return [python, "-m", "tensorboard.main", "--logdir_spec", logdir_spec(runs), "--host", HOST, "--port", str(int(port))]


class Command(BaseCommand):
    help = "Start TensorBoard (on 127.0.0.1) on the run folders of these training sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sessions", nargs="+", type=int, metavar="SESSION", help="training session ids")
        parser.add_argument("--port", type=int, default=6006, help="port on 127.0.0.1 (default 6006)")
        parser.add_argument("--print", action="store_true", dest="print_only", help="print the command line only")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["port"] <= 65535:
            raise CommandError("--port must be between 1 and 65535")
        ids = list(dict.fromkeys(options["sessions"]))
        sessions = {s.pk: s for s in TrainingSession.objects.filter(pk__in=ids)}
        missing = [str(i) for i in ids if i not in sessions]
        if missing:
            raise CommandError(f"no such session: {', '.join(missing)}")
        runs = artifacts.tensorboard_runs(sessions[i] for i in ids)
        if not runs:
            raise CommandError("these sessions wrote no TensorBoard logs yet (each run's summaries/ folder)")
        argv = tensorboard_argv(runs, options["port"])
        for name, path in runs:
            self.stdout.write(f"  {name}  {path}")
        if options["print_only"]:
            self.stdout.write(" ".join(argv))
            return
        self.stdout.write(f"TensorBoard on http://{HOST}:{options['port']}/ (Ctrl-C stops it)")
        process = subprocess.Popen(argv)  # argv list, never a shell
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.terminate()  # its own pid, nothing else
            try:
                code = process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        if code not in (0, -15):
            raise CommandError(f"tensorboard exited with {code}")
