"""Template helpers of the lab pages (issue 14): the training dialog's preset bar, resource curves
by time, sizes in bytes and small percent bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import template

from tasks.models import Task
from training import presets
from training.templatetags.training import curve_geometry

register = template.Library()


def preset_bar_context(user: Any, task: Task, *, selected: Any = None, problems: list[str] | None = None,
                       saved: Any = None, save_error: str = "") -> dict[str, Any]:
    """What the preset bar shows: the presets this user may use, the one loaded (and what no longer
    validates in it), and the outcome of a save."""
    return {
        "task": task,
        "presets": list(presets.visible_to(user)),
        "selected": selected,
        "problems": problems or [],
        "saved": saved,
        "save_error": save_error,
        "can_share": presets.can_share(user),
    }


@register.inclusion_tag("training/_preset_bar.html", takes_context=True)
def preset_bar(context: template.Context, task: Task) -> dict[str, Any]:
    """The training dialog's presets: load one (`?preset=<id>`), or save the form as one."""
    request = context.get("request")
    user = getattr(request, "user", None)
    selected = None
    problems: list[str] = []
    raw = request.GET.get("preset", "") if request is not None else ""
    if raw.isdigit() and user is not None:
        selected = presets.visible_to(user).filter(pk=int(raw)).first()
        if selected is not None:
            problems = presets.problems(selected, task)
    return {**preset_bar_context(user, task, selected=selected, problems=problems), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("training/_resource_curve.html")
def resource_curve(points: Sequence[tuple[float, float]], name: str, label: str, unit: str = "") -> dict[str, Any]:
    """A trainer's resource over seconds since it started (inline SVG, like the training curves)."""
    geometry = curve_geometry(points, None, from_zero=True)
    if geometry is not None:
        for tick in geometry["x_ticks"]:
            tick["label"] = f"{tick['label']} s"  # seconds since the trainer started
    last = points[-1][1] if points else None
    peak = max((v for _, v in points), default=None)
    return {"curve": geometry, "name": name, "label": label, "unit": unit, "value": last, "peak": peak}


@register.filter
def gib(value: Any) -> str:
    """Bytes as GiB (or MiB below one GiB)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if number >= 2**30:
        return f"{number / 2**30:.1f} GiB"
    return f"{number / 2**20:.0f} MiB"


@register.filter
def pct(value: Any) -> str:
    """A percentage for a bar's width (CSS), clamped to 0-100."""
    try:
        return f"{max(0.0, min(100.0, float(value))):.0f}"
    except (TypeError, ValueError):
        return "0"


@register.filter
def number(value: Any) -> str:
    """A metric for tables: a few significant digits; a dash for nothing."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.3g}"
