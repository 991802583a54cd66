"""What runs leave on disk, for people (issue 13): recorded videos, archives of a policy folder and of
a session's TensorBoard logs, and readable TensorBoard run names.

Every path is resolved inside the folder it must stay in, never built from an unchecked name: a
video is looked up among the files actually listed in its run folder, and archives are built by
walking a folder whose own path comes from the database (training/paths.py). Reading TensorBoard
event files is issue 13a's `training/metrics.py`; nothing here parses them.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.models import SkillRun, TrainingSession

VIDEO_NAME = re.compile(r"(?:rl-video-)?(?:step|episode)-(?P<step>\d+)\.mp4")
VIDEO_FOLDERS = ("train", "eval", "play")
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Video:
    run: SkillRun
    folder: str  # train / eval / play
    name: str
    step: int | None  # the simulator step at which the clip started (from its name)
    size: int
    modified: float

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.name}"


def _run_folder(run: SkillRun) -> Path | None:
    if not run.run_dir:
        return None
    folder = Path(run.run_dir)
    return folder.resolve() if folder.is_dir() else None


def run_videos(run: SkillRun) -> list[Video]:
    """The clips a run recorded (`videos/<train|eval|play>/*.mp4`), newest first."""
    root = _run_folder(run)
    if root is None:
        return []
    found = []
    for folder in VIDEO_FOLDERS:
        where = root / "videos" / folder
        if not where.is_dir():
            continue
        for path in where.iterdir():
            # Complete clips only: the recorder writes `.<name>.tmp.mp4` and renames it.
            if path.suffix != ".mp4" or path.name.startswith(".") or not path.is_file() or path.is_symlink():
                continue
            match = VIDEO_NAME.fullmatch(path.name)
            stat = path.stat()
            found.append(Video(run, folder, path.name, int(match["step"]) if match else None, stat.st_size, stat.st_mtime))
    found.sort(key=lambda v: (v.modified, v.step or 0), reverse=True)
    return found


def session_videos(session: TrainingSession) -> list[Video]:
    runs = session.skill_runs.select_related("skill").order_by("order")
    videos = [video for run in runs for video in run_videos(run)]
    videos.sort(key=lambda v: (v.modified, v.step or 0), reverse=True)
    return videos


def video_file(run: SkillRun, folder: str, name: str) -> Path | None:
    """The clip `folder/name` of this run if the run really has it (looked up, not built), else None."""
    for video in run_videos(run):
        if video.folder == folder and video.name == name:
            root = _run_folder(run)
            assert root is not None
            path = (root / "videos" / video.folder / video.name).resolve()
            return path if path.is_relative_to(root) else None
    return None


# -- TensorBoard run names --------------------------------------------------------------------------
def run_label(run: SkillRun) -> str:
    """`s12-fetch_block-go_to_block`: session, task and skill, as TensorBoard shows a run."""
    return f"s{run.session_id}-{run.skill.task.name}-{run.skill.name}"


def summaries_folder(run: SkillRun) -> Path | None:
    """The run's TensorBoard folder (rl-games writes `summaries/`), resolved inside the run folder."""
    root = _run_folder(run)
    if root is None:
        return None
    folder = (root / "summaries").resolve()
    return folder if folder.is_dir() and folder.is_relative_to(root) else None


def tensorboard_runs(sessions: Iterable[TrainingSession]) -> list[tuple[str, Path]]:
    """(readable name, summaries folder) of every run of these sessions that wrote TensorBoard files."""
    out = []
    for session in sessions:
        for run in session.skill_runs.select_related("skill__task").order_by("order"):
            folder = summaries_folder(run)
            if folder is not None:
                out.append((run_label(run), folder))
    return out


# -- archives ---------------------------------------------------------------------------------------
class _Sink:
    """A write-only, non-seekable file for ZipFile that hands out what was written so far."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _files(folder: Path) -> Iterator[tuple[Path, str]]:
    """(file, archive name) of each regular file under `folder`; links are skipped, names are relative."""
    root = folder.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            continue
        yield resolved, resolved.relative_to(root).as_posix()


def zip_stream(entries: Iterable[tuple[str, Path]]) -> Iterator[bytes]:
    """A zip of folders, streamed as it is built: each entry is (archive prefix, folder)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[arg-type]
        for prefix, folder in entries:
            for path, name in _files(folder):
                with path.open("rb") as source, archive.open(f"{prefix}/{name}", mode="w", force_zip64=True) as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        if sink.position and len(sink.parts) > 16:
                            yield sink.take()
                yield sink.take()
    yield sink.take()


def safe_archive_name(*parts: Any) -> str:
    """A download file name from names that passed training/paths.py's checks anyway."""
    text = "-".join(str(p) for p in parts)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:180] + ".zip"
