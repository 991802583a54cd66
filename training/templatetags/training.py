"""Template helpers of the training pages: durations, status colours, log lines, the reward curve
(inline SVG, drawn on the server: no chart library), and the navigation's live indicator."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django import template
from django.urls import reverse

from training import config
from training.models import STATUS_COLORS, LogLine, SessionStatus, TrainingSession
from training.queries import training_states

register = template.Library()


register.filter("option_label", config.option_label)

# Lines of a trainer's output worth catching the eye: Python tracebacks, errors, failures.
ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|\b\w*Error\b|\bFAILED\b|\bException\b|^\s*error\b", re.I)
WARNING_LINE = re.compile(r"\bwarn(ing)?\b", re.I)

CURVE_WIDTH = 640
CURVE_HEIGHT = 120
CURVE_PAD = {"left": 52, "right": 14, "top": 10, "bottom": 22}


@register.filter
def duration(seconds: Any) -> str:
    """`3 h 05 min`, `4 min 07 s`, `12 s`; a dash for nothing."""
    if seconds in (None, ""):
        return "—"
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "—"
    hours, rest = divmod(max(total, 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def can_start_training(user: Any) -> bool:
    """May this user start training (training.permissions)? Shows or hides the start buttons."""
    from training import permissions

    return permissions.can_start(user)


@register.filter
def seconds_until(start: Any, end: Any) -> float | None:
    """Seconds from one datetime to another (None if either is missing)."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    """`mapping[key]` in a template, or None."""
    if isinstance(mapping, Mapping):
        return mapping.get(key)
    return None


@register.filter
def status_color(status: Any) -> str:
    """The status's colour name (training.models.STATUS_COLORS), for `status-<colour>` classes."""
    return STATUS_COLORS.get(str(status), "secondary")


@register.filter
def status_label(status: Any) -> str:
    value = str(status or "")
    return value.replace("_", " ").capitalize() if value else "Never trained"


@register.filter
def is_active_status(status: Any) -> bool:
    return str(status) in SessionStatus.active()


@register.filter
def percent(fraction: Any) -> int:
    """0-1 as a whole percentage, clamped."""
    try:
        return max(0, min(100, int(float(fraction) * 100)))
    except (TypeError, ValueError):
        return 0


@register.filter
def ratio_percent(value: Any, whole: Any) -> int:
    """`value / whole` as a whole percentage (0-100)."""
    try:
        whole_f = float(whole)
        return max(0, min(100, int(100 * float(value) / whole_f))) if whole_f > 0 else 0
    except (TypeError, ValueError):
        return 0


@register.filter
def log_class(line: LogLine) -> str:
    """CSS class of a line of trainer output: errors stand out, the supervisor's own lines are marked."""
    if ERROR_LINE.search(line.text):
        return "log-error"
    if line.stream == LogLine.Stream.SYSTEM:
        return "log-system"
    if WARNING_LINE.search(line.text):
        return "log-warning"
    if line.stream == LogLine.Stream.STDERR:
        return "log-stderr"
    return ""


@register.filter
def cancelled_by(actor: Any) -> str:
    """Who stopped a session, from `cancel_requested_by` ("user:ana", "cli:ana", "worker:host:pid")."""
    kind, _, who = str(actor or "").partition(":")
    if kind == "user" and who:
        return f"Cancelled by {who}"
    if kind == "cli":
        return f"Cancelled from the terminal{f' by {who}' if who else ''}"
    if kind == "worker":
        return "Stopped by its worker (the server shut down or restarted)"
    return "Cancelled"


@register.filter
def error_summary(error: Any) -> str:
    """The line of an error worth reading first: a traceback's last line (the exception), else the first."""
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return lines[-1]
    return lines[0]


@register.filter
def compact(number: Any) -> str:
    """12,345,678 → 12.3M; 45,600 → 45.6k."""
    try:
        value = float(number)
    except (TypeError, ValueError):
        return "—"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 3) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten) from `low` to `high`, about `count` steps."""
    span = high - low
    if span <= 0:
        return [low]
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= count)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def curve_geometry(
    points: Sequence[tuple[int, float]], target: float | None = None, *, x_max: float = 0.0,
    from_zero: bool = False,
) -> dict[str, Any] | None:
    """Scale (frames, value) pairs into the SVG's box: the line, the area under it, the axes, and an
    optional dashed target line. Frames run from 0 to `x_max` (or the last point), so several
    curves of one run share their x axis; counts (`from_zero`) start their y axis at 0."""
    if not points:
        return None
    xs = [float(x) for x, _ in points]
    ys = [float(y) for _, y in points]
    x_low, x_high = 0.0, max(max(xs), float(x_max), 1.0)
    y_low, y_high = min(ys), max(ys)
    if target is not None:
        y_low, y_high = min(y_low, float(target)), max(y_high, float(target))
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 1.0, y_high + 1.0
    margin = (y_high - y_low) * 0.08
    y_low, y_high = (0.0 if from_zero and y_low >= 0 else y_low - margin), y_high + margin
    left, top = CURVE_PAD["left"], CURVE_PAD["top"]
    right = CURVE_WIDTH - CURVE_PAD["right"]
    bottom = CURVE_HEIGHT - CURVE_PAD["bottom"]

    def sx(x: float) -> float:
        return left + (right - left) * (x - x_low) / (x_high - x_low)

    def sy(y: float) -> float:
        return bottom - (bottom - top) * (y - y_low) / (y_high - y_low)

    coords = [(round(sx(x), 1), round(sy(y), 1)) for x, y in zip(xs, ys, strict=True)]
    line = " ".join(f"{x},{y}" for x, y in coords)
    area = f"M{coords[0][0]},{bottom} L" + " L".join(f"{x},{y}" for x, y in coords) + f" L{coords[-1][0]},{bottom} Z"
    x_ticks = []
    for value in nice_ticks(x_low, x_high, 4):
        x = round(sx(value), 1)
        anchor = "start" if x - left < 12 else "end" if right - x < 18 else "middle"
        x_ticks.append({"x": x, "label": compact(value), "anchor": anchor})
    return {
        "width": CURVE_WIDTH, "height": CURVE_HEIGHT, "left": left, "right": right, "top": top, "bottom": bottom,
        "line": line, "area": area, "last": coords[-1], "last_value": ys[-1], "best_value": max(ys),
        "count": len(points), "frames": x_high,
        "target_y": round(sy(float(target)), 1) if target is not None else None,
        "y_ticks": [{"y": round(sy(v), 1), "label": compact(v)} for v in nice_ticks(y_low, y_high, 3)],
        "x_ticks": x_ticks,
    }


@register.inclusion_tag("training/_curve.html")
def metric_curve(
    points: Sequence[tuple[int, float]], name: str, label: str, value: Any = None,
    target: float | None = None, frames: float = 0.0,
) -> dict[str, Any]:
    """One curve of a skill run (`name` picks its colour), drawn as inline SVG on the server.

    `value` is the run's current value for the caption (the stored points are at most one per
    second, so the last point can lag); `frames` the run's frames, the x axis' end.
    """
    geometry = curve_geometry(points, target, x_max=float(frames or 0), from_zero=name == "states")
    current = value if value is not None else (geometry["last_value"] if geometry else None)
    return {"curve": geometry, "name": name, "label": label, "target": target, "value": current}


@register.inclusion_tag("training/_nav_indicator.html", takes_context=True)
def training_nav_indicator(context: template.Context) -> dict[str, Any]:
    """The navigation's "Training" link with the number of active sessions (base.html)."""
    request = context.get("request")
    path = request.path if request is not None else ""
    counted = context.get("active_total")  # the dashboard and the Training page have it already
    count = counted if isinstance(counted, int) else (
        TrainingSession.objects.filter(status__in=SessionStatus.active()).count()
    )
    return {
        "active_count": count,
        "is_current": path.startswith(reverse("training:sessions")),
    }


@register.inclusion_tag("training/_task_watch.html")
def task_watch(tasks: Any, latest: TrainingSession | None = None) -> dict[str, Any]:
    """The watcher that keeps these tasks' panels and cards true (`training.views.task_watch`).

    One task with its newest session (`latest`, which the task page has already read), or task-list
    cards annotated with `queries.latest_session_annotations`: no query. Else one query.
    """
    if hasattr(tasks, "pk"):
        states = {tasks.pk: f"{latest.pk}:{latest.status}" if latest is not None else "0:"}
    else:
        tasks = list(tasks)
        if all(hasattr(task, "training_status") for task in tasks):
            states = {t.pk: f"{t.training_session_id or 0}:{t.training_status or ''}" for t in tasks}
        else:
            states = training_states(task.pk for task in tasks)
    return {"watch_state": "~".join(f"{pk}:{state}" for pk, state in sorted(states.items()))}
