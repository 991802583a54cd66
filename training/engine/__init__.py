"""The training engine: what runs in the process that supervises a session (a worker, `manage.py train`).

- `planning`: which skills to train, in what order, from where, and each run's `spec.json`;
- `supervision`: one trainer process: its clock, stop rules and the stop escalation;
- `recording`: a trainer's output turned into rows (run numbers, log lines, metric points);
- `orchestrator`: one session's lifecycle, from claim to its terminal status;
- `worker`: the loop that claims queued sessions and holds their leases.

Web entry points never import this package: they reach it through `training.signals`.
"""
