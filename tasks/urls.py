from django.urls import path

from tasks import views

task_urls = [
    path("tasks/", views.task_list, name="task_list"),
    path("tasks/rescan/", views.rescan, name="task_rescan"),
    # Names are case-sensitive and may hold ".", "-" and "_": `str` takes anything but "/".
    path("tasks/<str:robot>/<str:name>/", views.task_detail, name="task_detail"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    *task_urls,
]
