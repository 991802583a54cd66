"""URLs of the training pages (mounted at `/training/` by `genhrl_site/urls.py`); the JSON API and
the SSE streams are `training/api/urls.py`, under `/api/`."""

from __future__ import annotations

from django.urls import path

import genhrl_site.converters  # noqa: F401  (registers <name:...>)
from training import views

app_name = "training"

urlpatterns = [
    path("", views.sessions, name="sessions"),
    path("indicator/", views.indicator, name="indicator"),
    path("dashboard-card/", views.dashboard_card, name="dashboard_card"),
    path("train-selected/", views.bulk_start, name="bulk_start"),
    # Task names are case-sensitive and may hold ".", "-" and "_": `name` takes anything but "/" and NUL.
    path("tasks/<name:robot>/<name:name>/start/", views.configure, name="configure"),
    path("tasks/<name:robot>/<name:name>/estimate/", views.estimate, name="estimate"),
    path("tasks/<name:robot>/<name:name>/panel/", views.task_panel, name="task_panel"),
    path("tasks/<name:robot>/<name:name>/badge/", views.task_badge, name="task_badge"),
    path("sessions/<int:pk>/", views.session_detail, name="session"),
    path("sessions/<int:pk>/progress/", views.session_progress, name="session_progress"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("sessions/<int:pk>/retry/", views.session_retry, name="session_retry"),
]
