"""A trainer that runs out of memory: the error says which memory (GPU or host) and suggests fewer
environments, and the session's hints say the same (the product specification's error recovery)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import orchestrate
from training import outcomes, queries
from training.executor import LaunchCommand, TrainerProcess, kernel_oom_kills
from training.models import SessionStatus, SkillStatus

pytestmark = [pytest.mark.django_db, pytest.mark.training]


def test_host_out_of_memory_names_the_host_and_suggests_fewer_environments(fetch_block, start):
    session = orchestrate(start(fetch_block, num_envs=64), "--host-oom").run()

    assert session.status == SessionStatus.FAILED
    run = session.skill_runs.get(order=0)
    assert run.status == SkillStatus.FAILED
    assert run.stop_reason == outcomes.Code.HOST_OUT_OF_MEMORY
    assert run.error.startswith("Host out of memory (RAM, not the GPU): reduce parallel environments (--num-envs, now 64)")
    hints = queries.failure_hints(session)
    assert any("host ran out of memory" in hint and "e.g. 32" in hint for hint in hints)


def test_gpu_out_of_memory_names_the_gpu(fetch_block, start):
    session = orchestrate(start(fetch_block, num_envs=64), "--oom").run()

    run = session.skill_runs.get(order=0)
    # torch's `OutOfMemoryError` holds "MemoryError": it must not read as the host's memory.
    assert run.stop_reason == outcomes.Code.OUT_OF_MEMORY
    assert run.error.startswith("GPU out of memory")
    assert any("GPU ran out of memory" in hint for hint in queries.failure_hints(session))


def test_judge_prefers_gpu_and_reads_host_memory_otherwise() -> None:
    crashed = {"exit_code": 1, "success_states": 0, "min_success_states": 10, "num_envs": 512}
    host = outcomes.judge(outcomes.RunFacts(**crashed, host_out_of_memory=True))
    both = outcomes.judge(outcomes.RunFacts(**crashed, out_of_memory=True, host_out_of_memory=True))
    neither = outcomes.judge(outcomes.RunFacts(**crashed))

    assert (host.reason, both.reason, neither.reason) == ("host_out_of_memory", "out_of_memory", "crashed")
    assert "now 512" in host.error


def test_a_trainer_killed_by_a_signal_names_it_and_a_silent_sigkill_suspects_memory() -> None:
    """Popen's -9 is SIGKILL, not "code -9:" followed by nothing; the kernel's OOM killer sends a
    silent SIGKILL, so that one (and only that one) points at the host's memory."""
    base = {"success_states": 0, "min_success_states": 10, "num_envs": 512}
    silent = outcomes.judge(outcomes.RunFacts(exit_code=-9, **base))
    talking = outcomes.judge(outcomes.RunFacts(exit_code=-9, tail=("step 40", ""), **base))
    terminated = outcomes.judge(outcomes.RunFacts(exit_code=-15, **base))
    confirmed = outcomes.judge(outcomes.RunFacts(exit_code=-9, host_out_of_memory=True, **base))
    quiet_crash = outcomes.judge(outcomes.RunFacts(exit_code=3, tail=("", " "), **base))

    assert silent.reason == outcomes.Code.KILLED
    assert silent.error == (
        "the trainer was killed by SIGKILL (exit code -9) without any output: the host may have run out "
        "of memory (the kernel's out-of-memory killer sends SIGKILL)"
    )
    assert talking.error == "the trainer was killed by SIGKILL (exit code -9)\nIts last output:\nstep 40"
    assert terminated.error == "the trainer was killed by SIGTERM (exit code -15)"
    assert confirmed.reason == outcomes.Code.HOST_OUT_OF_MEMORY
    assert confirmed.error.endswith("\nthe trainer was killed by SIGKILL (exit code -9)")  # no "may have" then
    assert (quiet_crash.reason, quiet_crash.error) == (outcomes.Code.CRASHED, "the trainer exited with code 3")
    hints = outcomes.hints([silent.reason], {"num_envs": 512})
    assert "out-of-memory killer" in hints[0] and "e.g. 256" in hints[0]


def test_a_sigkill_nobody_here_sent_while_the_kernel_killed_for_memory_is_host_oom(tmp_path: Path, monkeypatch) -> None:
    """The kernel's OOM killer leaves no message: a SIGKILL the supervisor did not send, while the
    host's count of OOM kills (/proc/vmstat oom_kill) went up, reads as host memory exhaustion."""
    counts = iter([5, 6])
    monkeypatch.setattr("training.executor.kernel_oom_kills", lambda: next(counts))
    process = TrainerProcess(LaunchCommand([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path), None)
    process.start()
    subprocess.run(["kill", "-KILL", str(process.pid)], check=True)  # as the kernel would: not through us
    process._proc.wait(10)  # type: ignore[union-attr]
    process.close()

    assert process.returncode == -signal.SIGKILL
    assert process.host_oom


def test_our_own_sigkill_is_never_taken_for_the_oom_killer(tmp_path: Path, monkeypatch) -> None:
    counts = iter([5, 6])
    monkeypatch.setattr("training.executor.kernel_oom_kills", lambda: next(counts))
    process = TrainerProcess(LaunchCommand([sys.executable, "-c", "import time; time.sleep(60)"], {}, tmp_path), None)
    process.start()
    process.kill_now()
    process.close()

    assert not process.host_oom


def test_the_kernel_count_is_read_from_vmstat(tmp_path: Path) -> None:
    vmstat = tmp_path / "vmstat"
    vmstat.write_text("nr_free_pages 1\noom_kill 7\n")
    assert kernel_oom_kills(vmstat) == 7
    assert kernel_oom_kills(tmp_path / "missing") is None
