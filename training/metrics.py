"""Scalars of a skill run's TensorBoard files, read with TensorBoard's own reader, downsampled.

No Django here: callers pass the run's `summaries/` folder (checked to be inside the training folder
by `training.paths.summaries_dir`). rl-games writes rewards, episode lengths, losses, learning rate,
fps, ... (Isaac Lab adds its own); every scalar tag is served, whatever its name.

The reader is TensorBoard's `event_file_loader.RawEventFileLoader` (record framing and checksums)
with TensorBoard's `Event` proto. Not `EventAccumulator`: it does the same reading plus per-event
bookkeeping this portal does not need, and measured 2.5x slower (100,000 scalars: 9.6 s against
3.9 s on this machine). A loader per event file is kept, and it remembers its offset, so a chart of a
skill that trains now (polled every few seconds) costs the new events only, and a finished run
costs one `stat` per file while nothing changed. The folder's signature
(name, size, mtime of each event file) decides whether to reload at all; a file that shrank or
vanished (a `--new-run`) is read afresh. At most `CACHED_FOLDERS` folders are kept.

Downsampling is min-max (M4): each of `max_points / 4` buckets keeps its first, last, lowest and
highest point, so a single spike keeps both its extremes at any zoom-out, and a series shorter than
`max_points` is returned whole.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_POINTS = 2000
CACHED_FOLDERS = 16
X_AXES = ("step", "wall_time")


@dataclass(frozen=True)
class Series:
    """One tag's points in the order they were written: `step`, `wall_time` (s), `value`."""

    tag: str
    step: np.ndarray
    wall_time: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.step)


class _Folder:
    """What has been read of one folder: a loader per event file (each remembers its offset) and
    every scalar point so far, per tag; arrays are built on demand and kept until new points come."""

    def __init__(self) -> None:
        self.loaders: dict[str, Any] = {}
        # array.array: 8 bytes a number (a list of floats costs 32), so a 1M-point tag holds 24 MB.
        self.points: dict[str, tuple[array, array, array]] = {}
        self.signature: tuple[tuple[str, int, int], ...] | None = None
        self.series: dict[str, Series] = {}
        self.lock = threading.Lock()

    def read_new(self, folder: Path, signature: tuple[tuple[str, int, int], ...]) -> None:
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto.event_pb2 import Event

        # Event files are named by their creation time: name order is write order.
        for name, _, _ in signature:
            loader = self.loaders.get(name)
            if loader is None:
                loader = self.loaders[name] = RawEventFileLoader(str(folder / name))
            for raw in loader.Load():
                event = Event.FromString(raw)
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    number = _scalar(value)
                    if number is None:
                        continue
                    steps, times, values = self.points.setdefault(value.tag, (array("q"), array("d"), array("d")))
                    steps.append(event.step)
                    times.append(event.wall_time)
                    values.append(number)
                    self.series.pop(value.tag, None)


def _scalar(value: Any) -> float | None:
    """A summary value's number if it is a scalar: TF1-style `simple_value` (rl-games, torch's and
    tensorboardX's writers) or a one-element tensor of the scalars plugin (TF2-style writers)."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
        from tensorboard.util import tensor_util

        array = tensor_util.make_ndarray(value.tensor)
        return float(array.reshape(-1)[0]) if array.size == 1 else None
    return None


_cache: OrderedDict[str, _Folder] = OrderedDict()
_cache_lock = threading.Lock()


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    files = []
    for path in sorted(folder.glob("*tfevents*")):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if path.is_file():
            files.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(files)


def _grew(old: tuple[tuple[str, int, int], ...], new: tuple[tuple[str, int, int], ...]) -> bool:
    """True when every old file is still there, at least as long: the reader can go on from where it was."""
    sizes = {name: size for name, size, _ in new}
    return all(name in sizes and sizes[name] >= size for name, size, _ in old)


def _loaded(folder: Path) -> _Folder:
    key = str(folder)
    signature = _signature(folder)
    with _cache_lock:
        entry = _cache.get(key)
        if entry is None or (entry.signature is not None and not _grew(entry.signature, signature)):
            entry = _Folder()
            _cache[key] = entry
        _cache.move_to_end(key)
        while len(_cache) > CACHED_FOLDERS:
            _cache.popitem(last=False)
    with entry.lock:
        if entry.signature != signature:
            entry.read_new(folder, signature)
            entry.signature = signature
    return entry


def tags(folder: Path) -> list[str]:
    """Every scalar tag written in `folder`, sorted ([] if the folder has no event file yet)."""
    if not folder.is_dir():
        return []
    entry = _loaded(folder)
    with entry.lock:
        return sorted(entry.points)


def series(folder: Path, tag: str) -> Series | None:
    """All points of `tag` in `folder`, in the order written, or None if the folder has no such tag."""
    if not folder.is_dir():
        return None
    entry = _loaded(folder)
    with entry.lock:
        if tag in entry.series:
            return entry.series[tag]
        if tag not in entry.points:
            return None
        steps, times, values = entry.points[tag]
        # Copies: the arrays grow (and may move) while a chart still holds an older Series.
        found = Series(tag, np.frombuffer(steps, dtype=np.int64).copy(), np.frombuffer(times, dtype=np.float64).copy(),
                       np.frombuffer(values, dtype=np.float64).copy())
        entry.series[tag] = found
        return found


def downsample_indices(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the points to keep (sorted): all of them if they fit, else per bucket its first,
    last, minimum and maximum (NaNs ignored for the extremes), at most `max_points` in all."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    buckets = max(1, max_points // 4)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:]
    # NaN must neither win nor hide an extreme: ±inf stand-ins never beat a real value.
    low = np.where(np.isnan(values), np.inf, values)
    high = np.where(np.isnan(values), -np.inf, values)
    mins = np.minimum.reduceat(low, starts)
    maxs = np.maximum.reduceat(high, starts)
    keep = [starts, ends - 1]
    # The position of each bucket's extreme: the first index in the bucket equal to it.
    bucket_of = np.repeat(np.arange(buckets), ends - starts)
    for extreme, data in ((mins, low), (maxs, high)):
        hits = np.flatnonzero(data == extreme[bucket_of])
        first = np.unique(bucket_of[hits], return_index=True)[1]
        keep.append(hits[first])
    return np.unique(np.concatenate(keep))


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def payload(found: Series, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """`found` downsampled, as JSON-ready lists (non-finite values as null)."""
    keep = downsample_indices(found.value, max_points)
    return {
        "tag": found.tag,
        "total_points": len(found),
        "step": found.step[keep].tolist(),
        "wall_time": [round(float(t), 3) for t in found.wall_time[keep]],
        "value": [_number(v) for v in found.value[keep]],
    }


def clear_cache() -> None:
    """Forget every folder (tests; a benchmark's cold read)."""
    with _cache_lock:
        _cache.clear()
