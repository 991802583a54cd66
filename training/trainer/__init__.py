"""The trainer that runs inside each training subprocess: `python -m training.trainer --spec PATH`.

No Django here (docs/ARCHITECTURE.md): the subprocess may run under Isaac Lab's own python, on a
host without the portal's settings. Importing this package is cheap; torch and rl-games are only
imported by the modules that need them, so the orchestrator can import `records` and `launch`.

The code stays Python 3.10 compatible: Isaac Lab 2.1 (Isaac Sim 4.5) ships python 3.10 and runs
this same trainer for the `isaaclab` backend.
"""
