"""Pages for understanding runs (issue 13a): a session's metrics explorer and sessions side by side.

The charts are drawn in the browser by `static/js/metrics.js` (vendored uPlot) from the JSON API
(`/api/runs/<id>/metrics...`), so the page, the live refresh and a script read the same series.
The history with filters is `training.views.sessions` (its form: `training.explore_forms`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from training import comparison, permissions


@require_GET
def session_metrics(request: HttpRequest, pk: int) -> HttpResponse:
    """The session page's metrics explorer: its skill runs to choose from (loaded by htmx)."""
    session = permissions.get_session_for_viewer(request, pk)
    # Every run, pending ones too: chosen while pending, its chart starts when it trains.
    runs = list(session.skill_runs.select_related("skill").order_by("order"))
    # The run training now, else the last one that trained, else the first.
    active = [r for r in runs if r.is_active and r.run_dir]
    trained = [r for r in runs if r.run_dir]
    chosen = active[0] if active else (trained[-1] if trained else (runs[0] if runs else None))
    template = "training/_metrics_explorer.html" if request.htmx else "training/session_metrics.html"  # type: ignore[attr-defined]
    return render(request, template, {"session": session, "runs": runs, "chosen": chosen})


@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    """2-4 sessions side by side (`?sessions=12,15`): config diff, per-skill table, overlaid metrics.
    A shareable URL; the API's `/api/compare` answers the same as JSON."""
    try:
        ids = comparison.parse_session_ids(",".join(request.GET.getlist("sessions")))
    except comparison.CompareError as exc:
        return render(request, "training/compare.html", {"problem": str(exc)}, status=400)
    sessions = [permissions.get_session_for_viewer(request, pk) for pk in ids]
    data = comparison.compare(sessions)
    chart = {
        "sessions": data["sessions"], "skills": data["skills"], "overlay_skill": data["overlay_skill"],
        "tags_url": reverse("api:run_metrics", kwargs={"run_id": 0}),
        "series_url": reverse("api:run_series", kwargs={"run_id": 0}),
    }
    api_url = reverse("api:compare") + "?sessions=" + ",".join(map(str, ids))
    return render(request, "training/compare.html", {**data, "chart": chart, "api_url": api_url, "ids": ids})
