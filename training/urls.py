"""URLs of the training pages (mounted at `/training/` by `genhrl_site/urls.py`); the JSON API and
the SSE streams are `training/api/urls.py`, under `/api/`."""

from __future__ import annotations

from django.urls import path

import genhrl_site.converters  # noqa: F401  (registers <name:...>)
from training import explore_views, lab_views, media_views, views

app_name = "training"

urlpatterns = [
    path("", views.sessions, name="sessions"),
    path("indicator/", views.indicator, name="indicator"),
    path("dashboard-card/", views.dashboard_card, name="dashboard_card"),
    path("train-selected/", views.bulk_start, name="bulk_start"),
    path("watch/", views.task_watch, name="task_watch"),
    # Task names are case-sensitive and may hold ".", "-" and "_": `name` takes anything but "/" and NUL.
    path("tasks/<name:robot>/<name:name>/start/", views.configure, name="configure"),
    path("tasks/<name:robot>/<name:name>/estimate/", views.estimate, name="estimate"),
    path("tasks/<name:robot>/<name:name>/panel/", views.task_panel, name="task_panel"),
    path("tasks/<name:robot>/<name:name>/badge/", views.task_badge, name="task_badge"),
    path("sessions/<int:pk>/", views.session_detail, name="session"),
    path("sessions/<int:pk>/progress/", views.session_progress, name="session_progress"),
    path("sessions/<int:pk>/cancel/", views.session_cancel, name="session_cancel"),
    path("sessions/<int:pk>/retry/", views.session_retry, name="session_retry"),
    # Running a lab (issue 14): presets, sweeps, workers, the queue, notifications.
    path("sessions/<int:pk>/lab/", lab_views.session_lab, name="session_lab"),
    path("presets/", lab_views.preset_list, name="presets"),
    path("presets/<int:pk>/delete/", lab_views.preset_delete, name="preset_delete"),
    path("presets/<int:pk>/share/", lab_views.preset_share, name="preset_share"),
    path("tasks/<name:robot>/<name:name>/presets/save/", lab_views.preset_save, name="preset_save"),
    path("sweeps/", lab_views.sweep_list, name="sweeps"),
    path("sweeps/new/", lab_views.sweep_new, name="sweep_new"),
    path("sweeps/<int:pk>/", lab_views.sweep_detail, name="sweep"),
    path("sweeps/<int:pk>/cancel/", lab_views.sweep_cancel, name="sweep_cancel"),
    path("sweeps/<int:pk>/compare/", lab_views.sweep_compare, name="sweep_compare"),
    path("workers/", lab_views.workers, name="workers"),
    path("queue/", lab_views.queue_page, name="queue"),
    path("queue/<int:pk>/move/", lab_views.queue_move, name="queue_move"),
    path("queue/limits/", lab_views.queue_limit, name="queue_limit"),
    path("notifications/", lab_views.notification_settings, name="notifications"),
    # Understanding runs (issue 13a): a session's metrics explorer, sessions side by side.
    path("sessions/<int:pk>/metrics/", explore_views.session_metrics, name="session_metrics"),
    path("compare/", explore_views.compare, name="compare"),
    # Videos, downloads, evaluation and the flat baseline (issue 13b).
    path("sessions/<int:pk>/media/", media_views.session_media, name="session_media"),
    path("sessions/<int:pk>/tensorboard.zip", media_views.session_logs, name="session_logs"),
    path("sessions/<int:pk>/flat-baseline/", media_views.train_flat, name="train_flat"),
    path("runs/<int:pk>/videos/<name:folder>/<name:name>", media_views.run_video, name="run_video"),
    path("tasks/<name:robot>/<name:name>/policies/", media_views.task_policies, name="task_policies"),
    path("skills/<int:pk>/policy.zip", media_views.skill_policy, name="skill_policy"),
    path("skills/<int:pk>/evaluate/", media_views.evaluate_skill, name="evaluate_skill"),
    path("evaluations/<int:pk>/video.mp4", media_views.evaluation_video, name="evaluation_video"),
]
