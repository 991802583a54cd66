"""The error pages: HTML for people, JSON for the API.

Every answer under `/api/` is JSON, also when Django itself answers: no route matched (404), a
body over DATA_UPLOAD_MAX_MEMORY_SIZE or a bad request (400), a permission error (403) or a
crash (500). Scripts can always parse what they get.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        # Not the exception's text: it can echo what the client sent (a Host header, a file name).
        return JsonResponse({"detail": "bad request: the request was malformed or too large"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": str(exception) or "permission denied"}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "not found: no API endpoint at this address"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "internal server error; the server log has the details"}, status=500)
    return defaults.server_error(request)
