"""Runs one trainer subprocess and collects its output without ever stalling it.

`LocalExecutor` is the `local` executor of DESIGN.md: a subprocess on this host, in its own process
group (`start_new_session=True`), from an argv list (never a shell). Two reader threads drain
stdout and stderr as fast as the trainer writes: a trainer that prints 100,000 lines a second must
never block on a full pipe (GenHRL's orchestrator read one line per 0.1 s and did). The readers do
the cheap per-line work themselves (append to the full log file, spot JSON records, tracebacks and
GPU out-of-memory messages) and keep only a bounded tail for the database, so memory and database
load stay flat however much the trainer prints; the supervisor picks up the batch with `drain()`.

No Django in here: the executor knows processes and bytes, the engine knows the database. Records are
parsed by the trainer's own `records.parse_line`, so writer and reader share one definition.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from training.trainer.records import parse_line as parse_record

# Lines kept per drain for the database; older undrained lines are counted and skipped (they stay
# in the log file). At one drain per 0.5 s this stores up to 4,000 lines/s, far above what anyone
# reads live, and keeps each batch insert small.
MAX_PENDING_LINES = 2000
MAX_PENDING_RECORDS = 5000
MAX_LINE_BYTES = 64 * 1024  # a `\r`-only progress bar must not become one unbounded line
READ_BYTES = 256 * 1024
TRACEBACK_LINES = 80

TRACEBACK_START = "Traceback (most recent call last)"
# GPU memory exhaustion as PyTorch, Kit and PhysX print it (isaaclab-and-rlgames.md §1.9), and
# PhysX GPU buffers running out (the run may go on, but its results are suspect). Plain substring
# tests: a regex alternation over every block costs twenty times more.
_OOM_MARKS = (
    b"CUDA out of memory", b"OutOfMemoryError", b"cudaErrorMemoryAllocation", b"Unable to create PxCudaContextManager",
)
_GPU_BUFFER_MARKS = (b"PxGpuDynamicsMemoryConfig", b"collisionStackSize buffer overflow")
# Host (RAM) exhaustion as Python, PyTorch's CPU allocator, C++ and Ray's memory monitor print it.
# `MemoryError` must start a word: torch's GPU `OutOfMemoryError` contains it.
_HOST_OOM_MARKS = (
    b"DefaultCPUAllocator: can't allocate memory", b"std::bad_alloc", b"Cannot allocate memory",
    b"running low on memory",
)
_MEMORY_ERROR = re.compile(rb"(?<![A-Za-z])MemoryError")
_TRACEBACK = TRACEBACK_START.encode()

RecordParser = Callable[[str], "dict[str, Any] | None"]

# Linux's prctl(PR_SET_PDEATHSIG): the kernel signals the child when the thread that forked it
# dies, so a supervisor killed with SIGKILL leaves no trainer running. SIGTERM, not SIGKILL: the
# trainer flushes its buffered success states on SIGTERM. Grandchildren in the group (Isaac Lab's
# launcher starts python as a child) are not covered; the next worker's reaper ends those by the
# recorded process group (`end_orphan_group`).
PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    # Loaded before any fork: the child may only make the one C call, not import or allocate much.
    with contextlib.suppress(OSError, TypeError):
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """A `preexec_fn` that ties the child's life to this process (Linux only; None elsewhere)."""
    libc = _libc
    if libc is None:
        return None

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal will ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


@dataclass(frozen=True)
class LaunchContext:
    """Who a trainer is for, beyond its command: an executor that submits jobs names them so."""

    job_id: str = ""
    backend: str = "embedded"
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchCommand:
    """What to run for one skill: argv list, complete environment and working folder."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path


@dataclass
class Output:
    """What the readers collected since the last `drain()`."""

    lines: list[tuple[int, str, str, float]] = field(default_factory=list)  # seq, stream, text, time
    skipped_lines: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped_records: int = 0


def _text(raw: bytes | str) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    text = text.rstrip("\r")
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL; a trainer printing binary must not break the writes.
        text = text.replace("\x00", "\ufffd")
    if "\r" in text:
        # Progress bars redraw with `\r`: only the last redraw is what a person would see.
        text = text.rsplit("\r", 1)[-1]
    return text


class _Collector:
    """State shared by the two reader threads and the supervisor; guarded by one lock.

    Output is handled a block at a time (whatever one read returned, cut at the last newline):
    the block goes to the log file in one write, and per-line work happens only where it must
    (lines starting with `{` on stdout, blocks with a traceback in them). Lines are kept as bytes
    and decoded by `drain()`, only the ones that are kept. That is what lets one reader keep up
    with millions of lines a second.
    """

    def __init__(self, log: IO[bytes] | None, parse: RecordParser, wake: threading.Event | None = None) -> None:
        self.lock = threading.Lock()
        self.log = log
        self.parse = parse
        self.next_seq = 1
        self.lines: deque[tuple[int, str, bytes | str, float]] = deque(maxlen=MAX_PENDING_LINES)
        self.records: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING_RECORDS)
        self.line_total = 0
        self.lines_taken = 0
        self.record_total = 0
        self.records_taken = 0
        # The last traceback seen, and the one being collected per stream.
        self.traceback: list[str] = []
        self._collecting: dict[str, list[str] | None] = {"stdout": None, "stderr": None}
        self.oom = False
        self.host_oom = False
        self.gpu_buffer_warning = False
        self.record_event = threading.Event()
        # Shared by all trainers of one supervisor, so it sleeps until any of them has news.
        self.wake = wake

    def signal_news(self) -> None:
        self.record_event.set()
        if self.wake is not None:
            self.wake.set()

    def feed_block(self, stream: str, block: bytes, lines: list[bytes]) -> None:
        """`block` as read (for the log file) and the lines it holds, without their newlines."""
        if self.log is not None:
            self.log.write(block)
        records: list[dict[str, Any]] = []
        kept = lines
        if stream == "stdout" and (block.startswith(b"{") or b"\n{" in block):
            kept = []
            for line in lines:
                record = self.parse(_text(line)) if line.startswith(b"{") else None
                if record is None:
                    kept.append(line)
                else:
                    records.append(record)
        now = time.time()
        with self.lock:
            first = self.next_seq
            self.next_seq += len(kept)
            self.line_total += len(lines)
            if len(kept) > MAX_PENDING_LINES:
                first += len(kept) - MAX_PENDING_LINES
                kept = kept[-MAX_PENDING_LINES:]
            self.lines.extend([(first + i, stream, line, now) for i, line in enumerate(kept)])
            if records:
                self.record_total += len(records)
                self.records.extend(records)
        if records:
            self.signal_news()
        if self._collecting[stream] is not None or _TRACEBACK in block:
            for line in lines:
                self._scan_traceback(stream, line)
        if not self.oom and any(mark in block for mark in _OOM_MARKS):
            self.oom = True
        if not self.host_oom and (
            any(mark in block for mark in _HOST_OOM_MARKS) or (b"MemoryError" in block and _MEMORY_ERROR.search(block))
        ):
            self.host_oom = True
        if not self.gpu_buffer_warning and any(mark in block for mark in _GPU_BUFFER_MARKS):
            self.gpu_buffer_warning = True

    def _scan_traceback(self, stream: str, raw: bytes) -> None:
        collecting = self._collecting[stream]
        if _TRACEBACK in raw:
            self._collecting[stream] = [_text(raw)]
        elif collecting is not None:
            text = _text(raw)
            collecting.append(text)
            # The exception line ends a traceback: the first unindented line after the frames.
            ended = text and not text[0].isspace() and not text.startswith("During handling")
            if ended and not text.startswith(("The above exception", TRACEBACK_START)):
                self.traceback = collecting[-TRACEBACK_LINES:]
                self._collecting[stream] = None
            elif len(collecting) > TRACEBACK_LINES * 4:
                del collecting[: len(collecting) - TRACEBACK_LINES]

    def note(self, text: str) -> None:
        """A line from the supervisor itself (signals sent), numbered with the trainer's lines."""
        if self.log is not None:
            self.log.write(f"[supervisor] {text}\n".encode())
        with self.lock:
            self.line_total += 1
            self.lines.append((self.next_seq, "system", text, time.time()))
            self.next_seq += 1

    def finish_tracebacks(self) -> None:
        """A traceback still being collected at exit (no exception line seen) counts too."""
        for stream, collecting in self._collecting.items():
            if collecting:
                self.traceback = collecting[-TRACEBACK_LINES:]
                self._collecting[stream] = None

    def drain(self) -> Output:
        with self.lock:
            lines = list(self.lines)
            records = list(self.records)
            self.lines.clear()
            self.records.clear()
            line_count = self.line_total - self.record_total
            skipped_lines = line_count - self.lines_taken - len(lines)
            skipped_records = self.record_total - self.records_taken - len(records)
            self.lines_taken = line_count
            self.records_taken = self.record_total
        decoded = [(seq, stream, _text(raw), when) for seq, stream, raw, when in lines]
        return Output(decoded, skipped_lines, records, skipped_records)


def _split_long(lines: list[bytes]) -> list[bytes]:
    """Cut lines longer than MAX_LINE_BYTES into pieces of that size."""
    out: list[bytes] = []
    for line in lines:
        while len(line) > MAX_LINE_BYTES:
            out.append(line[:MAX_LINE_BYTES])
            line = line[MAX_LINE_BYTES:]
        out.append(line)
    return out


class TrainerProcess:
    """One running trainer: its process group, its readers, its collected output."""

    def __init__(
        self, command: LaunchCommand, log_path: Path | None, parse: RecordParser = parse_record,
        wake: threading.Event | None = None,
    ):
        self.command = command
        self._wake = wake
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self._collector: _Collector | None = None
        self._parse = parse
        self._proc: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []
        self.started_monotonic = 0.0
        self.running_since: float | None = None  # a local process runs from its start
        self._signals_sent: set[int] = set()
        self._oom_kills_at_start: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.log_path is not None:
            self._log = open(self.log_path, "ab", buffering=1024 * 1024)  # closed in close()
        self._collector = _Collector(self._log, self._parse, self._wake)
        self._oom_kills_at_start = kernel_oom_kills()
        self._proc = subprocess.Popen(  # argv list, never a shell
            list(self.command.argv),
            cwd=self.command.cwd,
            env=dict(self.command.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: signals reach it and its children only
            close_fds=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
        self.started_monotonic = time.monotonic()
        self.running_since = self.started_monotonic
        for stream, pipe in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            reader = threading.Thread(
                target=self._read, args=(stream, pipe), name=f"trainer-{self._proc.pid}-{stream}", daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def _read(self, stream: str, pipe: IO[bytes]) -> None:
        collector = self._collector
        assert collector is not None
        fd = pipe.fileno()
        pending = b""
        try:
            while True:
                chunk = os.read(fd, READ_BYTES)
                if not chunk:
                    break
                data = pending + chunk if pending else chunk
                end = data.rfind(b"\n")
                if end < 0:
                    complete, pending = b"", data
                else:
                    complete, pending = data[: end + 1], data[end + 1 :]
                lines = complete.split(b"\n")[:-1] if complete else []
                if len(pending) >= MAX_LINE_BYTES:
                    # A line without an end (a `\r` progress bar) is passed on in pieces.
                    cut = len(pending) - len(pending) % MAX_LINE_BYTES
                    lines.extend(pending[i : i + MAX_LINE_BYTES] for i in range(0, cut, MAX_LINE_BYTES))
                    complete, pending = complete + pending[:cut], pending[cut:]
                if not lines:
                    continue
                if len(complete) > MAX_LINE_BYTES:
                    lines = _split_long(lines)
                collector.feed_block(stream, complete, lines)
            if pending:
                collector.feed_block(stream, pending, _split_long([pending]))
        except (OSError, ValueError):
            # The pipe was closed under us at shutdown; nothing more will come.
            pass
        finally:
            with contextlib.suppress(OSError):
                pipe.close()
            # End of output usually means the trainer is exiting: wake the supervisor now.
            collector.signal_news()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def pgid(self) -> int:
        # start_new_session makes the child a session and group leader: pgid == pid.
        return self.pid

    @property
    def describe(self) -> str:
        return f"process group {self.pgid}"

    def poll(self) -> int | None:
        assert self._proc is not None
        return self._proc.poll()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def wait_for_record(self, timeout: float) -> None:
        """Sleep up to `timeout`, waking early when a record arrives (keeps live latency low)."""
        assert self._collector is not None and self._proc is not None
        if not any(reader.is_alive() for reader in self._readers):
            # Both pipes are closed: the exit is what is left to wait for.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)
            return
        if self._collector.record_event.wait(timeout):
            self._collector.record_event.clear()

    def drain(self) -> Output:
        assert self._collector is not None
        return self._collector.drain()

    def note(self, text: str) -> None:
        assert self._collector is not None
        self._collector.note(text)

    @property
    def traceback(self) -> list[str]:
        return [] if self._collector is None else list(self._collector.traceback)

    @property
    def oom(self) -> bool:
        return self._collector is not None and self._collector.oom

    @property
    def host_oom(self) -> bool:
        """It ran out of host memory: it said so, or the kernel's OOM killer ended it (SIGKILL that the
        supervisor did not send, while the host's count of OOM kills went up)."""
        if self._collector is not None and self._collector.host_oom:
            return True
        if self.returncode != -signal.SIGKILL or signal.SIGKILL in self._signals_sent:
            return False
        before, now = self._oom_kills_at_start, kernel_oom_kills()
        return before is not None and now is not None and now > before

    @property
    def gpu_buffer_warning(self) -> bool:
        return self._collector is not None and self._collector.gpu_buffer_warning

    @property
    def line_total(self) -> int:
        return 0 if self._collector is None else self._collector.line_total

    # -- signals ---------------------------------------------------------------------------------
    def signal_group(self, sig: int) -> bool:
        """Send `sig` to the trainer's process group only; False if the group is gone."""
        self._signals_sent.add(sig)
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        return True

    def group_alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            # A pid reused by someone else's process group; ours is gone.
            return False
        return True

    def reap_group(self, grace: float = 2.0) -> None:
        """After the leader has exited: end whatever it left behind in its group (TERM, then KILL)."""
        if self.poll() is None:
            return
        if not self.group_alive():
            return
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.group_alive():
            time.sleep(0.05)
        if self.group_alive():
            self.signal_group(signal.SIGKILL)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.group_alive():
                time.sleep(0.05)

    def kill_now(self) -> None:
        """Last resort (the supervisor itself is failing): SIGKILL the group and reap the leader."""
        if self._proc is None:
            return
        self.signal_group(signal.SIGKILL)  # recorded: never mistaken for the kernel's OOM killer
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)

    def close(self, reader_timeout: float = 5.0) -> None:
        """Join the readers (output after exit included), then close the log file."""
        for reader in self._readers:
            reader.join(timeout=reader_timeout)
        if self._collector is not None:
            self._collector.finish_tracebacks()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


class LocalExecutor:
    """The default executor: trainers run as subprocesses of the supervising process, on this host."""

    name = "local"

    def launch(
        self, command: LaunchCommand, log_path: Path | None, parse: RecordParser = parse_record,
        wake: threading.Event | None = None, context: LaunchContext | None = None,
    ) -> TrainerProcess:
        """Start the trainer; `wake` is set whenever it prints a record or closes its output."""
        process = TrainerProcess(command, log_path, parse, wake)
        process.start()
        return process


def kernel_oom_kills(path: Path = Path("/proc/vmstat")) -> int | None:
    """How many processes the kernel's OOM killer has ended since boot (Linux 4.13+), or None."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


# -- orphans of a dead supervisor --------------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of `pid` from /proc, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: parse after its last ")".
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[2])
    except (IndexError, ValueError):
        return None


def _proc_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def group_members(pgid: int) -> list[int]:
    """Live pids whose process group is `pgid` (Linux /proc; empty elsewhere or when gone).

    Zombies do not count: they run nothing, and an orphan's zombie lingers until init reaps it.
    """
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
                members.append(int(entry))
    return members


def owned_group(pgid: int, marker: str) -> list[int]:
    """The members of process group `pgid` if it is still a trainer of ours, else [].

    A recorded pid can be reused after a reboot or a long time; killing by it blindly could hit
    someone else's processes. The group is ours only if one of its members was launched with
    `marker` (the run's unique spec.json path) as a whole argument.
    """
    if not marker or pgid <= 1:
        return []
    members = group_members(pgid)
    if any(marker in _proc_cmdline(pid) for pid in members):
        return members
    return []


def end_orphan_group(pgid: int, marker: str, grace: float = 3.0) -> bool:
    """End a trainer group left by a dead supervisor: SIGTERM, then SIGKILL after `grace` seconds.

    Only after `owned_group` verified it (never by name or pattern). Returns True if a group was
    found and is gone now; False if there was nothing of ours to end.
    """
    if not owned_group(pgid, marker):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_members(pgid):
                return True
            time.sleep(0.05)
    return not group_members(pgid)
