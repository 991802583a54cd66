"""URLs of the JSON API, mounted under `/api/` by `genhrl_site/urls.py`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, URLResolver, include, path

from training.api.views import api


def _authenticated_by_the_api(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """Exempt the API's views from LoginRequiredMiddleware.

    Every operation authenticates itself (token or session) and answers 401 JSON; the
    middleware would send scripts a login redirect instead. The OpenAPI document and its page
    hold no data, so they are public.
    """
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _authenticated_by_the_api(pattern.url_patterns)
        else:
            login_not_required(pattern.callback)
    return patterns


# Not `app_name` at module level: include() would read it and nest the namespace.
_patterns, _app, _namespace = api.urls

urlpatterns = [
    path("", include((_authenticated_by_the_api(_patterns), _app), namespace=_namespace)),
]
