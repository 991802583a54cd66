from django.urls import path

import genhrl_site.converters  # noqa: F401  (registers <name:...>)
from tasks import views

task_urls = [
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/rescan/", views.rescan, name="task_rescan"),
    # Names are case-sensitive and may hold ".", "-" and "_": `name` takes anything but "/" and NUL.
    path("tasks/<name:robot>/<name:name>/", views.task_detail, name="task_detail"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    *task_urls,
]
