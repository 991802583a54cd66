"""`python -m training.trainer --spec RUN_DIR/spec.json`: train one skill (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import argparse
import sys

from . import records
from .signals import Shutdown, Terminated
from .spec import SpecError, TrainerSpec


def main(argv: list[str] | None = None) -> int:
    # Install the handlers before the slow torch/rl-games imports: a stop request during
    # start-up must not kill the process with a bare KeyboardInterrupt.
    shutdown = Shutdown()
    shutdown.install()
    # rl-games prints with plain print(); line buffering keeps its lines and our records in order
    # even when the launcher forgot `-u`.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(prog="python -m training.trainer", description=__doc__)
    parser.add_argument("--spec", required=True, help="path of the run's spec.json")
    parser.add_argument(
        "--evaluate", action="store_true",
        help="run the skill's published policy (spec.evaluate) for N episodes instead of training",
    )
    args = parser.parse_args(argv)
    try:
        try:
            spec = TrainerSpec.load(args.spec)
        except SpecError as exc:
            records.emit("error", message=str(exc))
            return 2
        if args.evaluate:
            from .evaluate import run_evaluation

            return run_evaluation(spec, shutdown)
        if spec.backend == "isaaclab":
            from .isaaclab import run_isaaclab

            return run_isaaclab(spec, shutdown)
        from .embedded import run_embedded

        return run_embedded(spec, shutdown)
    except Terminated as exc:
        # Only reachable before a backend took over (it handles its own): nothing to flush yet.
        shutdown.finalizing()
        records.terminated(exc.signal_name)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
