"""Short mp4 clips of training rollouts, rendered from the 2-D world (numpy raster -> imageio-ffmpeg).

Like Isaac Lab 2.x's `gym.wrappers.RecordVideo(step_trigger=lambda s: s % interval == 0,
video_length=L)`: a clip starts every `video_interval` low-level world steps and lasts
`video_length` steps; it shows environment 0. Files: `<run>/videos/train/rl-video-step-<N>.mp4`,
Isaac Lab's own names, so one video browser serves both backends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from .envs import FrameSink
from .world import ObjectSet, PointMassWorld

SIZE = 192  # pixels; a multiple of 16 so ffmpeg needs no resizing
FPS = 20  # one world step is 0.05 s, so clips play in real time
TRAIL = 24

_NAMED_COLOURS = {
    "red": (220, 60, 60),
    "blue": (60, 110, 230),
    "green": (60, 180, 90),
    "yellow": (230, 200, 50),
    "orange": (240, 140, 40),
    "purple": (150, 80, 200),
    "white": (235, 235, 235),
    "black": (40, 40, 40),
}
_SHAPE_COLOURS = {"spheres": (200, 120, 220), "cubes": (200, 140, 80), "cylinders": (90, 190, 200)}
BACKGROUND = (28, 32, 40)
GRID = (44, 50, 62)
AGENT = (250, 250, 250)


def _colour(shape: str, comment: str) -> tuple[int, int, int]:
    lowered = comment.lower()
    for name, rgb in _NAMED_COLOURS.items():
        if name in lowered:
            return rgb
    return _SHAPE_COLOURS.get(shape, (180, 180, 180))


class Renderer:
    def __init__(
        self, objects: ObjectSet, arena: float, comments: dict[str, list[str]] | None = None
    ) -> None:
        self.arena = arena
        self.scale = SIZE / (2 * arena * 1.05)
        ys, xs = np.mgrid[0:SIZE, 0:SIZE]
        self._xs, self._ys = xs, ys
        img = np.empty((SIZE, SIZE, 3), np.uint8)
        img[:] = BACKGROUND
        for metre in np.arange(-np.floor(arena), np.floor(arena) + 1):
            c = self._px(metre, metre)
            img[:, int(c[0])] = GRID
            img[int(c[1]), :] = GRID
        comments = comments or {}
        for obj in objects.objects:
            names = comments.get(obj.shape) or []
            rgb = _colour(obj.shape, names[obj.index] if obj.index < len(names) else "")
            cx, cy = self._px(obj.x, obj.y)
            r = max(3.0, obj.size * self.scale)
            if obj.shape == "cubes":
                mask = (np.abs(xs - cx) <= r) & (np.abs(ys - cy) <= r)
            else:
                mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= r * r
            img[mask] = rgb
        self.background = img
        self._trail: list[tuple[float, float]] = []

    def _px(self, x: float, y: float) -> tuple[float, float]:
        # y up in the world, down in the image
        return (SIZE / 2 + x * self.scale, SIZE / 2 - y * self.scale)

    def reset_trail(self) -> None:
        self._trail.clear()

    def render(self, x: float, y: float, highlight: tuple[float, float] | None = None) -> np.ndarray:
        frame = self.background.copy()
        if highlight is not None:
            hx, hy = self._px(*highlight)
            d2 = (self._xs - hx) ** 2 + (self._ys - hy) ** 2
            frame[(d2 <= 100) & (d2 >= 64)] = AGENT
        px = self._px(x, y)
        if self._trail and abs(px[0] - self._trail[-1][0]) + abs(px[1] - self._trail[-1][1]) > 0.5 * self.scale:
            self._trail.clear()  # env 0 was reset: no streak across the arena
        self._trail.append(px)
        del self._trail[:-TRAIL]
        for i, (tx, ty) in enumerate(self._trail[:-1]):
            shade = int(80 + 120 * i / TRAIL)
            xi, yi = int(tx), int(ty)
            if 0 <= xi < SIZE and 0 <= yi < SIZE:
                frame[yi, xi] = (shade, shade, shade)
        ax, ay = self._trail[-1]
        frame[(self._xs - ax) ** 2 + (self._ys - ay) ** 2 <= 16] = AGENT
        return frame


class VideoRecorder(FrameSink):
    def __init__(self, out_dir: Path, renderer: Renderer, interval: int, length: int) -> None:
        self.out_dir = Path(out_dir)
        self.renderer = renderer
        self.interval = max(1, interval)
        self.length = max(1, length)
        self.step = 0
        self._start: int | None = None
        self._frames: list[np.ndarray] = []
        self.written: list[Path] = []

    def capture(self, world: PointMassWorld, highlight: torch.Tensor | None = None) -> None:
        if self._start is None and self.step % self.interval == 0:
            self._start = self.step
            self._frames = []
            self.renderer.reset_trail()
        if self._start is not None:
            x, y = (float(v) for v in world.pos[0])
            target = (float(highlight[0]), float(highlight[1])) if highlight is not None else None
            self._frames.append(self.renderer.render(x, y, target))
            if len(self._frames) >= self.length:
                self._write()
        self.step += 1

    def close(self) -> None:
        """Write a clip that was cut short by the end of training (if it has some frames)."""
        if self._start is not None and len(self._frames) >= 2:
            self._write()
        self._start = None

    def _write(self) -> None:
        import imageio.v2 as imageio

        assert self._start is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rl-video-step-{self._start}.mp4"
        tmp = path.with_name(f".{path.name}.tmp.mp4")
        frames, self._frames, self._start = self._frames, [], None
        try:
            writer = imageio.get_writer(
                tmp,
                fps=FPS,
                codec="libx264",
                macro_block_size=16,
                ffmpeg_log_level="error",
                pixelformat="yuv420p",
            )
            try:
                for frame in frames:
                    writer.append_data(frame)
            finally:
                writer.close()
            # Readers (the portal's video list) only ever see complete files.
            tmp.replace(path)
            self.written.append(path)
        except Exception as exc:  # a broken ffmpeg must not end training
            print(f"[trainer] video not written: {exc}", file=sys.stderr, flush=True)
            tmp.unlink(missing_ok=True)
