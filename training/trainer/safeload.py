"""Loading `.pt` files without running code from them: `torch.load(..., weights_only=True)` only.

A pickle can run any code it names. Success-state files and policies live in the data folder,
which GenHRL's generated code, Isaac Lab and anyone with write access to it can fill, and the web
process counts those files on a plain user's request. So nothing here ever falls back to a full
unpickle: torch's restricted unpickler rebuilds tensors, containers and a short allow-list of
numpy scalar types (GenHRL's state dicts sometimes hold numpy floats), and refuses the rest.

Python 3.10 compatible (Isaac Sim's python); torch is imported only when a file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class UnsafeFileError(ValueError):
    """A `.pt` file that cannot be read without unpickling arbitrary objects (or is not one)."""


def _numpy_allowed() -> list[Any]:
    """numpy scalars of plain numeric kinds: the scalar reconstructor and the dtypes it needs."""
    try:
        import numpy as np
    except ImportError:
        return []
    core = getattr(np, "_core", None) or np.core  # numpy 2 moved it; 1.x still has np.core
    allowed: list[Any] = [core.multiarray.scalar, np.dtype]
    allowed += [type(np.dtype(code)) for code in "?bhilqpBHILQPefdgFDG"]  # never object ("O")
    return allowed


_allowed = False


def safe_load(path: str | Path) -> Any:
    """`torch.load` with `weights_only=True` (and numeric numpy scalars); UnsafeFileError otherwise."""
    global _allowed
    import torch

    if not _allowed:
        # Once per process and never removed: the `safe_globals` context manager edits one
        # process-wide list, so two threads loading at once would drop each other's entries.
        torch.serialization.add_safe_globals(_numpy_allowed())
        _allowed = True
    try:
        return torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsafeFileError(f"{path}: cannot be loaded safely ({type(exc).__name__})") from exc
