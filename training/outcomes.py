"""How a skill run ended, judged from facts; and what to try after a failure, keyed by code.

Pure: no Django, no processes, no files. The engine collects the facts of an ended run
(`RunFacts`: exit code, records, traceback, success states on disk, whether a policy was
published) and `judge` decides. Tests call `judge` directly with any combination of facts.

A failed run's `stop_reason` is its failure code (`Code`); the pages look hints up by code
(`hints`), never by matching the wording of an error, so rewording a message cannot break a hint.

How it differs from GenHRL's orchestrator (reference §2.8, §4.4-4.5), on purpose: success is
judged from the success states on disk, the records and the absence of a traceback, never from
the exit code alone (Isaac Lab can exit 0 after an exception, §1.9).
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The run statuses this module decides between (training.models.SkillStatus values; that module
# needs Django, this one must not).
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

# The supervisor's own reasons to stop a trainer; they win over the trainer's `done` reason.
SUPERVISOR_REASONS = ("cancelled", "time_limit", "target_reached")
# Trainer exceptions that mean the skill's definition (embedded.json, spec.json) is wrong.
SPEC_EXCEPTIONS = ("SkillSpecError", "SpecError")

OOM_HINT = "GPU out of memory: reduce parallel environments (--num-envs, now {num_envs})."
HOST_OOM_HINT = (
    "Host out of memory (RAM, not the GPU): reduce parallel environments (--num-envs, now {num_envs}) "
    "or train fewer skills at once."
)


class Code(StrEnum):
    """Why a run (or a session) failed. Stored as the failed run's `stop_reason`."""

    CRASHED = "crashed"  # a traceback, or a non-zero exit we did not cause
    KILLED = "killed"  # ended by a signal we did not send (an operator, a scheduler, the kernel's OOM killer)
    TRAINER_ERROR = "error"  # the trainer reported an `error` record
    SPEC_INVALID = "spec_invalid"  # ... about the skill's definition
    OUT_OF_MEMORY = "out_of_memory"  # the GPU's memory
    HOST_OUT_OF_MEMORY = "host_out_of_memory"  # the host's (RAM): MemoryError, or the kernel's OOM killer
    TIME_LIMIT = "time_limit"  # stopped at the time limit short of its success states
    TOO_FEW_STATES = "too_few_states"  # ended by itself short of its success states
    NO_POLICY = "no_policy"
    PUBLISH_FAILED = "publish_failed"
    SETUP = "setup"  # could not be launched: a sub-skill without a policy, a spec not written
    LAUNCH = "launch"  # the process could not be started
    STALLED = "stalled"  # sent no record for GENHRL_STALL_SECONDS: hung, deadlocked or stopped
    INTERRUPTED = "interrupted"  # the supervising worker went away
    SUPERVISOR = "supervisor"  # the supervisor itself failed
    BACKEND_UNAVAILABLE = "backend_unavailable"  # isaaclab without GENHRL_ISAACLAB_ROOT
    UNDEFINED_SUB_SKILL = "undefined_sub_skill"
    NOTHING_TO_TRAIN = "nothing_to_train"


@dataclass(frozen=True)
class RunFacts:
    """What is known about a trainer run once its process has ended."""

    exit_code: int | None
    success_states: int  # counted on disk now
    min_success_states: int
    stop_reason: str = ""  # why the supervisor stopped it ("" if it did not)
    stopped_by_us: bool = False  # the supervisor sent it a signal
    done_reason: str = ""  # the trainer's `done` record reason ("" without one)
    traceback: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # messages of its `error` records
    tail: tuple[str, ...] = ()  # its last lines of output
    has_policy: bool = False  # run_dir/policy/policy.pth exists
    out_of_memory: bool = False  # it printed a GPU out-of-memory message
    host_out_of_memory: bool = False  # it ran out of host memory (a MemoryError, or killed by the kernel for it)
    max_time_minutes: float = 0.0
    num_envs: int = 0


@dataclass(frozen=True)
class Outcome:
    """The verdict: the run's status, its `stop_reason` (a `Code` when it failed) and error text."""

    status: str
    reason: str
    error: str = ""

    def message(self, success_states: int) -> str:
        """The one line the event history shows."""
        return self.error.splitlines()[0] if self.error else f"{self.reason}: {success_states} success states"

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED


def judge(facts: RunFacts) -> Outcome:
    """Decide how the run ended. A completed outcome still needs its policy published."""
    traceback = list(facts.traceback)
    if facts.stopped_by_us and traceback and traceback[-1].startswith(("KeyboardInterrupt", "SystemExit")):
        traceback = []  # our own SIGINT surfacing as an exception is not a crash
    if facts.stop_reason in SUPERVISOR_REASONS:
        reason = facts.stop_reason
    else:
        reason = facts.done_reason or facts.stop_reason or "exited"

    finished = facts.done_reason == "target_reached" and facts.has_policy and not facts.traceback
    if facts.stop_reason == "cancelled" and not (finished and facts.success_states >= facts.min_success_states):
        return Outcome(CANCELLED, reason)
    if traceback:
        code = Code.SPEC_INVALID if exception_name(traceback[-1]) in SPEC_EXCEPTIONS else Code.CRASHED
        outcome = Outcome(FAILED, code, "the trainer raised an exception:\n" + "\n".join(traceback))
    elif facts.errors:
        spec = any(exception_name(message) in SPEC_EXCEPTIONS for message in facts.errors)
        outcome = Outcome(FAILED, Code.SPEC_INVALID if spec else Code.TRAINER_ERROR, "; ".join(facts.errors))
    elif facts.exit_code != 0 and not facts.stopped_by_us:
        outcome = _exited(facts)
    elif facts.success_states < facts.min_success_states:
        have = f"{facts.success_states} of {facts.min_success_states} success states"
        if facts.stop_reason == "time_limit":
            error = f"time limit of {facts.max_time_minutes:g} min reached with {have}"
            outcome = Outcome(FAILED, Code.TIME_LIMIT, error)
        else:
            outcome = Outcome(FAILED, Code.TOO_FEW_STATES, f"the trainer ended with {have}")
    elif not facts.has_policy:
        outcome = Outcome(FAILED, Code.NO_POLICY, "the trainer published no policy (run_dir/policy/policy.pth)")
    else:
        return Outcome(COMPLETED, reason)
    if facts.out_of_memory:
        error = f"{OOM_HINT.format(num_envs=facts.num_envs)}\n{outcome.error}"
        outcome = Outcome(FAILED, Code.OUT_OF_MEMORY, error)
    elif facts.host_out_of_memory:
        error = f"{HOST_OOM_HINT.format(num_envs=facts.num_envs)}\n{outcome.error}"
        outcome = Outcome(FAILED, Code.HOST_OUT_OF_MEMORY, error)
    return outcome


def _exited(facts: RunFacts) -> Outcome:
    """A trainer that ended by itself with a non-zero exit code, or by a signal we did not send.

    Popen reports a death by signal N as exit code -N: named here, since "-9" means nothing to most
    readers. The kernel's OOM killer sends SIGKILL and leaves no output, so a silent SIGKILL says
    the host may have run out of memory, unless the executor knows it did (`judge` then says so).
    """
    exit_code = facts.exit_code
    tail = [line for line in facts.tail[-20:] if line.strip()]
    killed_by = _signal_name(-exit_code) if exit_code is not None and exit_code < 0 else ""
    if killed_by:
        code, error = Code.KILLED, f"the trainer was killed by {killed_by} (exit code {exit_code})"
        memory_known = facts.out_of_memory or facts.host_out_of_memory
        if exit_code == -signal.SIGKILL and not tail and not memory_known:
            error += (
                " without any output: the host may have run out of memory (the kernel's out-of-memory "
                "killer sends SIGKILL)"
            )
    elif exit_code is None:
        code, error = Code.CRASHED, "the trainer ended without an exit code"
    else:
        code, error = Code.CRASHED, f"the trainer exited with code {exit_code}"
    # The first line is the headline pages show: a whole sentence, the output below it.
    return Outcome(FAILED, code, error + ("\nIts last output:\n" + "\n".join(tail) if tail else ""))


def _signal_name(number: int) -> str:
    """`SIGKILL` for 9; `signal 77` for a number this platform does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def exception_name(line: str) -> str:
    """The class name of Python's exception line (`pkg.mod.Name: message` -> `Name`), else ""."""
    head, colon, _ = line.partition(":")
    name = head.strip().rsplit(".", 1)[-1]
    return name if colon and name.isidentifier() else ""


def stalled(seconds: float, outcome: Outcome) -> Outcome:
    """A run the supervisor stopped because it sent no progress for `seconds`."""
    error = f"no progress for {seconds:.0f} s: the trainer was stopped as stalled"
    if outcome.error:
        error += f"\n{outcome.error}"
    return Outcome(FAILED, Code.STALLED, error)


def publish_failed(error: Exception) -> Outcome:
    """A run judged complete whose policy could not be copied to the skill."""
    return Outcome(FAILED, Code.PUBLISH_FAILED, f"cannot publish the policy: {error}")


# -- what to try next ----------------------------------------------------------------------------
_SUB_SKILLS = (
    "A composite skill needs its sub-skills' policies: keep “Skip complete skills” on and retry so they "
    "train first, or fix the skill library and rescan the task."
)
# In the order they are shown. Values: the session's settings (num_envs, half_envs, max_time,
# min_success_states).
# What to try when the host may be short of memory (its RAM, not the GPU's).
FEWER_ON_THE_HOST = (
    "retry with fewer parallel environments (now {num_envs:,}), e.g. {half_envs:,}, or with fewer skills "
    "training at once on that worker (its slots)."
)
HINTS: dict[str, str] = {
    Code.OUT_OF_MEMORY: (
        "The GPU ran out of memory: retry with fewer parallel environments (now {num_envs:,}), e.g. {half_envs:,}."
    ),
    Code.HOST_OUT_OF_MEMORY: "The host ran out of memory (RAM, not the GPU): " + FEWER_ON_THE_HOST,
    Code.KILLED: (
        "Something outside the portal killed the trainer: an operator, a scheduler's limit, or the kernel's "
        "out-of-memory killer, which sends SIGKILL without a word in the trainer's output. If the host may "
        "have run out of memory, " + FEWER_ON_THE_HOST
    ),
    Code.TIME_LIMIT: (
        "The skill ran out of time: raise the max time per skill (now {max_time:g} min) or lower the min "
        "success states (now {min_success_states:,})."
    ),
    Code.TOO_FEW_STATES: (
        "The trainer stopped short of the success states: lower the min success states (now "
        "{min_success_states:,}) or give it more time."
    ),
    Code.SETUP: _SUB_SKILLS,
    Code.UNDEFINED_SUB_SKILL: _SUB_SKILLS,
    Code.SPEC_INVALID: (
        "The skill's definition for the embedded simulator (embedded.json) is invalid: fix it, rescan the "
        "task, then retry."
    ),
    Code.BACKEND_UNAVAILABLE: (
        "Isaac Lab is not configured on this server: set GENHRL_ISAACLAB_ROOT, or train on the embedded backend."
    ),
    Code.STALLED: (
        "The trainer stopped reporting progress (hung, deadlocked, or paused). Check its output below "
        "and the host's load; if it needs longer between reports, raise GENHRL_STALL_SECONDS. Retry resumes."
    ),
    Code.INTERRUPTED: (
        "The server or worker stopped while training (restart, crash). Retry resumes from the skills that "
        "completed."
    ),
}
GENERIC_HINT = "Read the trainer's output below for the cause, adjust the settings if needed, and retry."
RETRY_HINT = "Retry starts a new session with the same settings; skills that completed are skipped."


def hints(codes: Iterable[str], settings: Mapping[str, Any]) -> list[str]:
    """Advice for a failure with these codes, filled in with the session's settings."""
    num_envs = int(settings.get("num_envs", 0))
    values = {
        "num_envs": num_envs,
        "half_envs": max(1, num_envs // 2),
        "max_time": float(settings.get("max_time", 0)),
        "min_success_states": int(settings.get("min_success_states", 0)),
    }
    wanted = set(codes)
    found: list[str] = []
    for code, hint in HINTS.items():
        text = hint.format(**values)
        if code in wanted and text not in found:
            found.append(text)
    return [*(found or [GENERIC_HINT]), RETRY_HINT]
