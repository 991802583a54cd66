"""`manage.py training_worker ARGS` with the fake trainer in place of the real one.

    FAKE_TRAINER_ARGS="--epoch-seconds 0.05" python tests/fakes/fake_worker.py --slots 1 ...

The command, its loop, its signal handling and its database writes are the real ones; only the
launch line of each skill (`training.engine.planning.default_command_builder`) points at
tests/fakes/fake_trainer.py, which starts in milliseconds. DATABASE_URL names the test database.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_TRAINER = Path(__file__).resolve().with_name("fake_trainer.py")
sys.path.insert(0, str(REPO_ROOT))


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genhrl_site.settings")
    django.setup()

    from django.core.management import call_command

    from training.engine import planning
    from training.executor import LaunchCommand

    extra = shlex.split(os.environ.get("FAKE_TRAINER_ARGS", ""))

    def build(spec_path: Path, config: object, skill: object) -> LaunchCommand:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        argv = [sys.executable, str(FAKE_TRAINER), "--spec", str(spec_path), *extra]
        return LaunchCommand(argv=argv, env=env, cwd=spec_path.parent)

    planning.default_command_builder = build
    call_command("training_worker", *sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
