from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("training.api.urls")),
    path("training/", include("training.urls")),
    path("", include("tasks.urls")),
]

handler400 = "genhrl_site.errors.bad_request"
handler403 = "genhrl_site.errors.permission_denied"
handler404 = "genhrl_site.errors.page_not_found"
handler500 = "genhrl_site.errors.server_error"
