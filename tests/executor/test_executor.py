"""The executor's readers: records, tracebacks, GPU messages, long lines, no Django involved."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from training.executor import MAX_LINE_BYTES, LaunchCommand, LocalExecutor

pytestmark = pytest.mark.training


def run_script(tmp_path: Path, code: str):
    command = LaunchCommand(argv=[sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    process = LocalExecutor().launch(command, tmp_path / "trainer.log")
    deadline = time.monotonic() + 20
    while process.poll() is None and time.monotonic() < deadline:
        process.wait_for_record(0.1)
    process.reap_group()
    process.close()
    return process, process.drain()


def test_records_and_lines_are_told_apart(tmp_path):
    process, output = run_script(tmp_path, (
        "import json,sys\n"
        "print('hello')\n"
        "print(json.dumps({'kind': 'progress', 'frames': 5}))\n"
        "print('{not json')\n"
        "print(json.dumps(['kind']))\n"
        "print('to stderr', file=sys.stderr)\n"
    ))
    assert process.returncode == 0
    assert output.records == [{"kind": "progress", "frames": 5}]
    texts = {(stream, text) for _, stream, text, _ in output.lines}
    assert texts == {("stdout", "hello"), ("stdout", "{not json"), ("stdout", '["kind"]'), ("stderr", "to stderr")}
    assert (tmp_path / "trainer.log").read_text().count("\n") == 5  # records are in the log too


def test_the_last_traceback_is_kept(tmp_path):
    process, _ = run_script(tmp_path, (
        "import sys\n"
        "def f():\n"
        "    raise ValueError('deep problem')\n"
        "f()\n"
    ))
    assert process.returncode == 1
    assert process.traceback[0] == "Traceback (most recent call last):"
    assert process.traceback[-1] == "ValueError: deep problem"


def test_chained_tracebacks_are_kept_whole(tmp_path):
    process, _ = run_script(tmp_path, (
        "try:\n"
        "    1/0\n"
        "except ZeroDivisionError as e:\n"
        "    raise RuntimeError('wrapped') from e\n"
    ))
    text = "\n".join(process.traceback)
    assert "RuntimeError: wrapped" in text


@pytest.mark.parametrize(
    ("message", "oom", "buffer"),
    [
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", True, False),
        ("[Error] [carb.cudainterop.plugin] CUDA error 2: cudaErrorMemoryAllocation - out of memory", True, False),
        ("[Error] [omni.physx.plugin] Unable to create PxCudaContextManager!", True, False),
        ("PhysX error: increase PxGpuDynamicsMemoryConfig::totalAggregatePairsCapacity to 16790", False, True),
        ("all good", False, False),
    ],
)
def test_gpu_memory_messages_are_recognised(tmp_path, message, oom, buffer):
    process, _ = run_script(tmp_path, f"import sys; print({message!r}, file=sys.stderr)")
    assert (process.oom, process.gpu_buffer_warning) == (oom, buffer)


def test_carriage_returns_and_huge_lines(tmp_path):
    _, output = run_script(tmp_path, (
        "import sys\n"
        "sys.stdout.write('10%\\r50%\\r100%\\n')\n"
        f"sys.stdout.write('x' * {MAX_LINE_BYTES * 2 + 10} + '\\n')\n"
    ))
    texts = [text for _, _, text, _ in output.lines]
    assert texts[0] == "100%"
    assert [len(t) for t in texts[1:]] == [MAX_LINE_BYTES, MAX_LINE_BYTES, 10]


def test_trainer_runs_in_its_own_process_group(tmp_path):
    import os

    process, _ = run_script(tmp_path, "import os; print(os.getpgid(0) == os.getpid(), os.getsid(0) == os.getpid())")
    assert (tmp_path / "trainer.log").read_text().strip() == "True True"
    assert os.getpgid(0) != process.pgid
