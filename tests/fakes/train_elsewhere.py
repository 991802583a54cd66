"""Supervise one session in this separate process, the way `manage.py train` does, with a fake trainer.

    python tests/fakes/train_elsewhere.py SESSION_ID FAKE_TRAINER [trainer args...]

DATABASE_URL names the test database. The web process learns of every change only through the
database: this process's `session_changed` signals reach nobody there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genhrl_site.settings")
    django.setup()

    from training.engine.orchestrator import Orchestrator
    from training.engine.supervision import Timings
    from training.executor import LaunchCommand
    from training.models import TrainingSession

    session_id, trainer, *extra = sys.argv[1:]

    def build(spec_path: Path, config: object, skill: object) -> LaunchCommand:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        return LaunchCommand(argv=[sys.executable, trainer, "--spec", str(spec_path), *extra], env=env,
                             cwd=spec_path.parent)

    session = TrainingSession.objects.get(pk=int(session_id))
    timings = Timings(sigint_grace=3.0, sigterm_grace=2.0, exit_grace_after_done=1.0, target_grace=1.0)
    session = Orchestrator(session, command_builder=build, timings=timings, actor="test:elsewhere").run()
    print(f"session {session.pk} {session.status} {session.error}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
