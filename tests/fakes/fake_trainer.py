"""A stand-in trainer that follows docs/ARCHITECTURE.md's contract, for orchestrator tests.

It is a real subprocess (run as a script, no Django, no torch) that reads spec.json, prints the
JSON records, writes success-state files under the real naming scheme and publishes a policy
folder, and it can misbehave on demand: crash, print a traceback and exit 0, flood its output,
ignore signals, leave a child behind. The real trainer is slower to start (torch, rl-games); the
behaviours that do not need real learning are tested with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from training.trainer.success import state_file_name  # noqa: E402  (pure stdlib module)

stop_requested = False


def emit(kind: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"kind": kind, "time": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def count_states(folder: Path | None) -> int:
    if folder is None or not folder.is_dir():
        return 0
    total = 0
    for path in folder.iterdir():
        name = path.name
        if name.startswith("ss-") and name.endswith(".pt") and "-n" in name:
            total += int(name.rsplit("-n", 1)[1][:-3])
    return total


def write_states(folder: Path, count: int) -> None:
    name = state_file_name(count)
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(b"fake")
    os.replace(tmp, folder / name)


def publish(spec: dict, frames: int) -> Path:
    policy = Path(spec["run_dir"]) / "policy"
    policy.mkdir(parents=True, exist_ok=True)
    (policy / "policy.pth").write_bytes(b"fake weights")
    (policy / "agent.yaml").write_text("fake: true\n")
    info = {
        "skill": spec["skill"],
        "frames": frames,
        "start_states_dir": spec.get("start_states_dir"),
        "sub_skills": [s["name"] for s in spec.get("sub_skills", [])],
    }
    (policy / "skill.json").write_text(json.dumps(info))
    return policy


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--states-per-epoch", type=int, default=5)
    parser.add_argument("--epoch-seconds", type=float, default=0.02)
    parser.add_argument("--frames-per-epoch", type=int, default=1000)
    parser.add_argument("--flood", type=int, default=0, help="print this many plain lines first")
    parser.add_argument("--crash-after", type=int, default=0, help="raise after this many epochs")
    parser.add_argument("--only-skill", help="misbehave (crash, ...) only when training this skill")
    parser.add_argument("--traceback-exit0", action="store_true")
    parser.add_argument("--ignore-signals", action="store_true")
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument("--no-policy", action="store_true")
    parser.add_argument("--hang-after-done", action="store_true")
    parser.add_argument("--oom", action="store_true", help="die like PyTorch out of GPU memory")
    parser.add_argument("--host-oom", action="store_true", help="die like Python out of host memory")
    args = parser.parse_args()

    spec = json.loads(Path(args.spec).read_text())
    if args.only_skill and spec["skill"] != args.only_skill:
        args.crash_after = 0
    # What the launcher gave us, for tests of the launch line.
    (Path(spec["run_dir"]) / "launch.json").write_text(
        json.dumps({"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv})
    )
    success_dir = Path(spec["success_dir"])
    success_dir.mkdir(parents=True, exist_ok=True)
    start_dir = Path(spec["start_states_dir"]) if spec.get("start_states_dir") else None

    def on_sigint(signum: int, frame: object) -> None:
        global stop_requested
        if stop_requested:
            sys.exit(130)
        stop_requested = True

    def on_sigterm(signum: int, frame: object) -> None:
        sys.exit(143)

    if args.ignore_signals:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
    if args.spawn_child:
        # Stays in our process group; the supervisor must not leave it behind.
        child = subprocess.Popen(["sleep", "600"])  # noqa: S607
        (Path(spec["run_dir"]) / "child.pid").write_text(str(child.pid))

    for composite_child in spec.get("sub_skills", []):
        if not (Path(composite_child["policy_dir"]) / "policy.pth").is_file():
            emit("error", message=f"sub-skill {composite_child['name']} has no policy")
            return 1

    emit("start", skill=spec["skill"], backend=spec["backend"], num_envs=spec["num_envs"], pid=os.getpid(),
         start_states=count_states(start_dir))
    if args.flood:
        line = "flood line " + "x" * 60 + "\n"
        out = sys.stdout
        for _ in range(args.flood):
            out.write(line)
        out.write("binary \x00 garbage \xff\n")  # NUL is not storable as PostgreSQL text
        out.flush()

    frames = 0
    epoch = 0
    minimum = spec["min_success_states"]
    while True:
        time.sleep(args.epoch_seconds)
        epoch += 1
        frames += args.frames_per_epoch
        if args.states_per_epoch:
            write_states(success_dir, args.states_per_epoch)
        states = count_states(success_dir)
        emit("progress", epoch=epoch, frames=frames, fps=args.frames_per_epoch / args.epoch_seconds,
             mean_reward=float(epoch), mean_episode_length=40.0, success_rate=0.5, success_states=states,
             checkpoint=None)
        print(f"epoch {epoch} frames {frames}", flush=True)
        if args.crash_after and epoch >= args.crash_after:
            raise RuntimeError("fake trainer crashed on purpose")
        if args.host_oom:
            print("Traceback (most recent call last):", file=sys.stderr)
            print('  File "envs.py", line 12, in step', file=sys.stderr)
            print("MemoryError", file=sys.stderr, flush=True)
            return 1
        if args.oom:
            print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0)",
                  file=sys.stderr, flush=True)
            return 1
        reached = states >= minimum and frames >= spec["min_frames"]
        capped = spec.get("max_frames") and frames >= spec["max_frames"]
        if reached or capped or stop_requested:
            break

    policy = None if args.no_policy else publish(spec, frames)
    reason = "stopped" if stop_requested else ("target_reached" if reached else "max_frames")
    emit("done", reason=reason, frames=frames, success_states=count_states(success_dir), checkpoint=None,
         policy_dir=str(policy) if policy else None)
    if args.traceback_exit0:
        print("Traceback (most recent call last):", file=sys.stderr)
        print('  File "simulation_app.py", line 1, in close', file=sys.stderr)
        print("RuntimeError: Kit shutdown failed", file=sys.stderr, flush=True)
        return 0
    if args.hang_after_done:
        while True:
            time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
