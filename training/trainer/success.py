"""Success states on disk: unique file names, counting states (not files), buffered writes.

Our files: `ss-<utc>-<uuid8>-n<count>.pt`, each a float tensor [count, state_dim]. The count is in
the name so counting a folder needs no unpickling. GenHRL's Isaac Lab code writes
`success_states_<skill>_<stamp>.pt`, each a *list* of per-env state dicts (genhrl-reference.md
§1.6); when our Isaac Lab trainer writes them for GenHRL it adds `_<uuid8>_n<count>` to the name,
so those need no loading either. Files that do not say their count (written by GenHRL itself)
are counted by loading them with torch's restricted unpickler only (`safeload.safe_load`), once
per file version (see `StateCounter`); a file that cannot be read that way is counted as
unreadable, never unpickled: the web process counts these files.

Names are unique (a uuid part), so two flushes in the same second never overwrite each other,
and a file appears atomically (written under a dot-name, then renamed), so a reader never counts
half a file.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .safeload import UnsafeFileError, safe_load

if TYPE_CHECKING:
    import torch

STATE_FILE = re.compile(r"^ss-(?P<utc>\d{8}T\d{6}Z)-(?P<uid>[0-9a-f]{8})-n(?P<count>\d+)\.pt$")
# GenHRL's naming as our Isaac Lab trainer writes it: success_states_<skill>_<stamp>_<uuid8>_n<count>.pt
GENHRL_COUNTED_FILE = re.compile(r"^success_states_.+_\d{8}_\d{6}_[0-9a-f]{8}_n(?P<count>\d+)\.pt$")


class FolderCount(NamedTuple):
    """States in a folder, and how many of its files could not be read safely (counted as 0)."""

    states: int
    unreadable: int = 0


def counted_name(name: str) -> int | None:
    """The state count a file's name carries (ours, or GenHRL's as we write it), else None."""
    match = STATE_FILE.match(name) or GENHRL_COUNTED_FILE.match(name)
    return int(match["count"]) if match else None


def state_file_name(count: int, now: datetime | None = None) -> str:
    # timezone.utc, not datetime.UTC: this module also runs under Isaac Sim's python 3.10.
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")  # noqa: UP017
    return f"ss-{stamp}-{uuid.uuid4().hex[:8]}-n{count}.pt"


def state_files(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        # dot-files are our own in-flight writes
        if path.suffix == ".pt" and not path.name.startswith(".") and path.is_file():
            yield path


def states_in_object(obj: Any) -> int:
    """How many states a loaded .pt object holds.

    A list/tuple is GenHRL's format (one state dict per element). A tensor is ours (rows). A lone
    dict is one state snapshot.
    """
    if isinstance(obj, (list, tuple)):
        return len(obj)
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) >= 1 else 1
    if isinstance(obj, dict):
        return 1
    return 0


class StateCounter:
    """Counts states in a folder; loads each file that does not name its count once per (size, mtime)."""

    def __init__(self) -> None:
        # path -> (size, mtime_ns, states, readable)
        self._cache: dict[str, tuple[int, int, int, bool]] = {}

    def count_file(self, path: Path) -> int:
        return self._count(path)[0]

    def _count(self, path: Path) -> tuple[int, bool]:
        named = counted_name(path.name)
        if named is not None:
            return named, True
        try:
            stat = path.stat()
        except OSError:
            return 0, True
        cached = self._cache.get(str(path))
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2], cached[3]
        try:
            count, readable = states_in_object(safe_load(path)), True
        except UnsafeFileError:
            # Not loadable without a full unpickle (or still being written): never unpickled.
            count, readable = 0, False
        self._cache[str(path)] = (stat.st_size, stat.st_mtime_ns, count, readable)
        return count, readable

    def count_folder(self, directory: Path) -> FolderCount:
        states = unreadable = 0
        for path in state_files(directory):
            count, readable = self._count(path)
            states += count
            unreadable += not readable
        return FolderCount(states, unreadable)

    def count(self, directory: Path) -> int:
        return self.count_folder(directory).states


def count_states(directory: str | Path) -> int:
    """Total states in all `.pt` files of a folder (ours and GenHRL's)."""
    return StateCounter().count(Path(directory))


def load_start_states(directory: str | Path, max_states: int = 100_000) -> torch.Tensor | None:
    """Our flat states from a folder, newest files first, at most `max_states` rows; None if none.

    Only our format (a float tensor [count, dim], or a list of 1-D tensors of one dim) is usable by
    the embedded world; GenHRL's scene-state dicts are skipped.
    """
    import torch

    chunks: list[torch.Tensor] = []
    total = 0
    dim: int | None = None
    files = sorted(state_files(Path(directory)), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for path in files:
        try:
            obj = safe_load(path)
        except UnsafeFileError:
            continue
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(x, torch.Tensor) for x in obj):
            try:
                obj = torch.stack([x.reshape(-1) for x in obj])
            except RuntimeError:
                continue
        if not isinstance(obj, torch.Tensor) or obj.ndim != 2 or obj.shape[0] == 0:
            continue
        if dim is None:
            dim = int(obj.shape[1])
        if obj.shape[1] != dim:
            continue
        chunks.append(obj.float())
        total += int(obj.shape[0])
        if total >= max_states:
            break
    if not chunks:
        return None
    return torch.cat(chunks)[:max_states].contiguous()


class SuccessStore:
    """Buffers this run's success states and writes them as uniquely named files."""

    def __init__(
        self,
        directory: str | Path,
        critical: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.existing = count_states(self.directory)
        self.saved = 0
        self.files: list[Path] = []
        self._buffer: list[torch.Tensor] = []
        self._buffered = 0
        self._critical = critical or nullcontext

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def total(self) -> int:
        """States in the folder once the buffer is flushed: earlier runs + this run."""
        return self.existing + self.saved + self._buffered

    def add(self, states: torch.Tensor) -> None:
        if states.shape[0] == 0:
            return
        self._buffer.append(states.detach().to("cpu", copy=True))
        self._buffered += int(states.shape[0])

    def add_many(self, batches: Iterable[torch.Tensor]) -> None:
        for states in batches:
            self.add(states)

    def flush(self) -> Path | None:
        """Write the buffer to one new file; returns its path, or None if there was nothing."""
        if not self._buffer:
            return None
        import torch

        with self._critical():
            states = torch.cat(self._buffer)
            count = int(states.shape[0])
            name = state_file_name(count)
            final = self.directory / name
            tmp = self.directory / f".{name}.tmp"
            try:
                torch.save(states, tmp)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
            self._buffer.clear()
            self._buffered = 0
            self.saved += count
            self.files.append(final)
            return final
