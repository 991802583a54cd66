"""What a task's scene holds, from its GenHRL `object_config.json`, shaped for the task page.

The file is LLM-written and only loosely structured (flat per-shape arrays such as
`num_cubes`, `position_cubes`, `size_cubes`, `radius_spheres`, `height_cylinders` and
`_cube_comments`), so every reader here tolerates missing keys, short lists and odd values:
a scene summary must never break the page it is shown on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# Shape kinds in the order the page lists them; `num_<kind>` keys of other kinds are shown too.
KNOWN_KINDS = ("cubes", "spheres", "cylinders", "cones", "capsules")
# A corrupt `num_*` must not make the page render a million rows.
MAX_OBJECTS_PER_KIND = 500
# Colour words an object's label may start with ("Red beacon (north-west)"): the map draws the object
# in that colour instead of its shape's (each has a `color-<name>` rule in portal.css).
COLOR_WORDS = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray",
    "cyan", "magenta",
)
_COLOR_ALIASES = {"grey": "gray", "violet": "purple"}


@dataclass(frozen=True)
class SceneObject:
    kind: str  # plural, as in the file: "cubes"
    index: int  # 1-based within its kind
    label: str  # from `_<singular>_comments`, or "" when the file has none
    position: tuple[float, ...] | None
    mass: float | None
    size: tuple[float, ...] | None  # cubes: x, y, z extents
    radius: float | None
    height: float | None

    @property
    def dimensions(self) -> str:
        """Human-readable size, e.g. "0.5 × 5 × 1.5 m" or "r 0.1 m, h 2 m"."""
        if self.size:
            return " × ".join(_num(v) for v in self.size) + " m"
        parts = []
        if self.radius is not None:
            parts.append(f"r {_num(self.radius)} m")
        if self.height is not None:
            parts.append(f"h {_num(self.height)} m")
        return ", ".join(parts)

    @property
    def color(self) -> str:
        """The colour the label names ("Red beacon" -> "red"), or "" to draw the shape's own."""
        return label_color(self.label)

    @property
    def position_text(self) -> str:
        return "(" + ", ".join(_num(v) for v in self.position) + ")" if self.position else ""


@dataclass
class ShapeGroup:
    kind: str
    declared: int  # `num_<kind>` as written
    objects: list[SceneObject] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return _singular(self.kind)

    @property
    def count(self) -> int:
        return len(self.objects)


@dataclass
class SceneSummary:
    comment: str
    groups: list[ShapeGroup]

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def objects(self) -> list[SceneObject]:
        return [obj for g in self.groups for obj in g.objects]

    @property
    def nonempty_groups(self) -> list[ShapeGroup]:
        return [g for g in self.groups if g.count]


def summarise_object_config(config: Any) -> SceneSummary:
    """Objects per shape kind (every kind, empty ones included) with their labels and sizes."""
    if not isinstance(config, dict) or not config:
        return SceneSummary(comment="", groups=[])  # no file: the page says so
    kinds = list(KNOWN_KINDS)
    for key in config:
        if isinstance(key, str) and key.startswith("num_") and key[4:] not in kinds:
            kinds.append(key[4:])
    groups = [_group(config, kind) for kind in kinds]
    comment = config.get("_comment")
    return SceneSummary(comment=comment if isinstance(comment, str) else "", groups=groups)


def _group(config: dict[str, Any], kind: str) -> ShapeGroup:
    declared = _int(config.get(f"num_{kind}"))
    positions = _list(config.get(f"position_{kind}"))
    # Some files omit num_<kind> but still list positions: trust whichever says more.
    count = min(max(declared, len(positions)), MAX_OBJECTS_PER_KIND)
    singular = _singular(kind)
    labels = _list(config.get(f"_{singular}_comments"))
    masses = _list(config.get(f"mass_{kind}"))
    sizes = _list(config.get(f"size_{kind}"))
    radii = _list(config.get(f"radius_{kind}"))
    heights = _list(config.get(f"height_{kind}"))
    objects = [
        SceneObject(
            kind=kind,
            index=i + 1,
            label=str(_at(labels, i) or ""),
            position=_vector(_at(positions, i)),
            mass=_float(_at(masses, i)),
            size=_vector(_at(sizes, i)),
            radius=_float(_at(radii, i)),
            height=_float(_at(heights, i)),
        )
        for i in range(count)
    ]
    return ShapeGroup(kind=kind, declared=declared, objects=objects)


def label_color(label: str) -> str:
    """The first colour word among a label's first two words ("Red beacon", "the blue cube"), or ""."""
    for word in re.findall(r"[a-z]+", label.lower())[:2]:
        word = _COLOR_ALIASES.get(word, word)
        if word in COLOR_WORDS:
            return word
    return ""


def _singular(kind: str) -> str:
    return kind[:-1] if kind.endswith("s") else kind


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _at(values: list[Any], i: int) -> Any:
    return values[i] if i < len(values) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int:
    number = _float(value)
    return max(int(number), 0) if number is not None else 0


def _vector(value: Any) -> tuple[float, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    numbers = [_float(v) for v in value[:4]]
    return tuple(n for n in numbers if n is not None) if all(n is not None for n in numbers) else None


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


@dataclass(frozen=True)
class MapShape:
    """One object drawn on the top-down scene map (SVG user units, y pointing down)."""

    number: int
    kind: str
    label: str
    shape: str  # "rect" or "circle"
    x: float
    y: float
    width: float
    height: float
    r: float
    color: str = ""  # a COLOR_WORDS name from the label, or "" for the shape's colour

    @property
    def cx(self) -> float:
        return self.x + self.width / 2 if self.shape == "rect" else self.x

    @property
    def cy(self) -> float:
        return self.y + self.height / 2 if self.shape == "rect" else self.y


@dataclass(frozen=True)
class SceneMap:
    left: float
    top: float
    size: float
    shapes: list[MapShape]
    grid_step: float  # metres between grid lines
    grid_x: list[float]
    grid_y: list[float]

    @property
    def view_box(self) -> str:
        return f"{self.left:.3f} {self.top:.3f} {self.size:.3f} {self.size:.3f}"

    @property
    def right(self) -> float:
        return self.left + self.size

    @property
    def bottom(self) -> float:
        return self.top + self.size

    @property
    def unit(self) -> float:
        """One "pixel" of a 400 px wide map, for strokes and text that keep their size at any scale."""
        return self.size / 400

    @property
    def stroke(self) -> float:
        return self.unit * 1.5

    @property
    def marker(self) -> float:
        return self.unit * 5

    @property
    def font_size(self) -> float:
        return self.unit * 13


def scene_map(summary: SceneSummary, *, min_extent: float = 2.0) -> SceneMap | None:
    """A top-down map (x right, y up) of the objects that have positions, or None if none has one.

    The origin is always in view: GenHRL scenes place the robot's start there.
    """
    placed = [
        (n, obj) for n, obj in enumerate(summary.objects, start=1) if obj.position and len(obj.position) >= 2
    ]
    if not placed:
        return None
    boxes = []  # (x, y, half-x, half-y) in world units, y up
    for _, obj in placed:
        hx, hy = _half_extent(obj)
        boxes.append((obj.position[0], obj.position[1], hx, hy))  # type: ignore[index]
    lo_x = min([0.0] + [x - hx for x, _, hx, _ in boxes])
    hi_x = max([0.0] + [x + hx for x, _, hx, _ in boxes])
    lo_y = min([0.0] + [y - hy for _, y, _, hy in boxes])
    hi_y = max([0.0] + [y + hy for _, y, _, hy in boxes])
    span = max(hi_x - lo_x, hi_y - lo_y, min_extent)
    size = span * 1.24
    cx, cy = (lo_x + hi_x) / 2, (lo_y + hi_y) / 2
    left, top = cx - size / 2, -cy - size / 2  # SVG y points down
    shapes = []
    for (number, obj), (x, y, hx, hy) in zip(placed, boxes, strict=True):
        if obj.size and len(obj.size) >= 2:
            shape = MapShape(number, obj.kind, obj.label, "rect", x - hx, -y - hy, 2 * hx, 2 * hy, 0, obj.color)
        else:
            shape = MapShape(number, obj.kind, obj.label, "circle", x, -y, 0, 0, hx, obj.color)
        shapes.append(shape)
    step = 1.0 if size <= 40 else 10.0 ** math.floor(math.log10(size / 4))
    return SceneMap(
        left=left,
        top=top,
        size=size,
        shapes=shapes,
        grid_step=step,
        grid_x=_grid(left, size, step),
        grid_y=_grid(top, size, step),
    )


def _grid(start: float, size: float, step: float) -> list[float]:
    first = math.ceil(start / step)
    last = math.floor((start + size) / step)
    return [i * step for i in range(first, last + 1)]


def _half_extent(obj: SceneObject) -> tuple[float, float]:
    if obj.size and len(obj.size) >= 2:
        return abs(obj.size[0]) / 2, abs(obj.size[1]) / 2
    radius = abs(obj.radius) if obj.radius is not None else 0.1
    return radius, radius
