"""Small template helpers for the portal's pages."""

from __future__ import annotations

from django import template

register = template.Library()

# Levels past this share the last colour; GenHRL generates at most 3 levels.
LEVEL_COLOURS = 5


@register.filter
def level_class(level: object) -> str:
    """CSS class for a level badge: `level-0` … `level-4`."""
    try:
        number = int(level)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "level-unknown"
    return f"level-{min(max(number, 0), LEVEL_COLOURS - 1)}"

