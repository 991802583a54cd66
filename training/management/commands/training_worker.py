"""`manage.py training_worker [--slots N] [--queue NAME]`: a worker process outside the web server.

It claims queued sessions of its queue (each session is claimed by exactly one worker, however
many run, on however many hosts share the database), supervises up to N at once, renews their
heartbeat lease and reaps the sessions of workers that died. It is the same loop as the embedded
worker (`training.engine.worker.Worker`); run it with GENHRL_EMBEDDED_WORKER=0 so daphne only serves
pages, and a web server restart no longer touches training.

SIGTERM (or Ctrl-C): claim nothing more, stop the trainers gracefully (SIGINT to their process
groups: final checkpoint, success states flushed) and mark their sessions `interrupted`, which
`manage.py train TASK --resume` or the web's resume continues. A second SIGTERM stops at once.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import leases
from training.engine.worker import Worker
from training.services import DEFAULT_QUEUE


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Claim and train queued sessions of one queue until stopped (SIGTERM: stop gracefully, resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slots", type=int, default=None,
                            help="trainers at once, shared fairly by the sessions it claims; one session uses several when "
                            f"its skill tree allows (default GENHRL_WORKER_SLOTS, now {settings.GENHRL_WORKER_SLOTS})")
        parser.add_argument("--queue", default=DEFAULT_QUEUE,
                            help="queue to serve (default %(default)s; the web and `train` queue there)")
        parser.add_argument("--poll-interval", type=_positive, default=2.0,
                            help="seconds between looks at the queue (default %(default)s)")
        parser.add_argument("--heartbeat-interval", type=_positive, default=leases.HEARTBEAT_INTERVAL,
                            help="seconds between lease renewals (default %(default)s)")
        parser.add_argument("--reap-interval", type=_positive, default=leases.REAP_INTERVAL,
                            help="seconds between looks for sessions of dead workers (default %(default)s)")
        parser.add_argument("--stale-after", type=_positive, default=leases.lease_duration().total_seconds(),
                            help="seconds without a heartbeat after which a session is interrupted "
                            "(default %(default)s; keep it well above --heartbeat-interval)")
        parser.add_argument("--hard-timeout", type=_positive, default=10.0,
                            help="after a second SIGTERM, seconds before trainers are killed (default %(default)s)")

    def handle(self, *args: Any, **options: Any) -> None:
        slots = options["slots"]
        if slots is not None and not 1 <= slots <= 64:
            raise CommandError("--slots must be between 1 and 64")
        if options["stale_after"] <= options["heartbeat_interval"] * 2:
            raise CommandError("--stale-after must be more than twice --heartbeat-interval")
        worker = Worker(
            slots, queue=options["queue"], poll_interval=options["poll_interval"],
            heartbeat_interval=options["heartbeat_interval"], reap_interval=options["reap_interval"],
            stale_after=timedelta(seconds=options["stale_after"]),
        )
        received: list[str] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # Only a counter: the loop does the work, outside the handler.
            received.append(signal.Signals(signum).name)
            if not worker.shutdown_reason:
                worker.shutdown_reason = f"worker {worker.worker_id} received {received[0]}"
            worker.request_shutdown()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stdout.write(
            f"worker {worker.worker_id}: serving queue {worker.queue!r} with {worker.slots} slot(s)", ending="\n"
        )
        self.stdout.flush()
        try:
            worker.serve(reason=f"worker {worker.worker_id} was stopped", hard_timeout=options["hard_timeout"])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        how = "at once" if len(received) > 1 else "gracefully"
        self.stdout.write(f"worker {worker.worker_id}: stopped {how} ({', '.join(received) or 'no signal'})")
