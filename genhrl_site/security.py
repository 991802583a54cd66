"""Who the client is, behind reverse proxies: used by the sign-in and API-token lock-out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKED_STATUS = 429
TOKEN_CREDENTIAL = "api-token:"  # the "username" a failed API token is counted under


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or with GENHRL_PROXY_COUNT=N trusted proxies in front,
    the address the outermost of them saw (X-Forwarded-For, counted from the right, so a client
    cannot choose its own address by sending the header itself)."""
    count = getattr(settings, "GENHRL_PROXY_COUNT", 0)
    remote = request.META.get("REMOTE_ADDR") or None  # None: axes records no address
    if not count:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    return forwarded[-count] if len(forwarded) >= count else remote


def lockout_parameters(request: HttpRequest, credentials: dict[str, Any] | None = None) -> list[Any]:
    """What a failure counts against (django-axes' AXES_LOCKOUT_PARAMETERS): the account and the
    client address for a sign-in; the client address alone for an API token (a token's visible
    prefix is no secret, so counting failures against it would let anyone lock its owner out)."""
    username = str((credentials or {}).get("username") or "")
    if username.startswith(TOKEN_CREDENTIAL):
        return ["ip_address"]
    return [["username"], ["ip_address"]]


def _cooloff_minutes() -> int:
    return round(float(settings.AXES_COOLOFF_TIME) * 60)


def locked_out_message() -> str:
    return (
        "too many failed sign-ins or invalid API tokens for this account or from this address; "
        f"try again in {_cooloff_minutes()} minutes"
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """What a locked-out client gets (django-axes' AXES_LOCKOUT_CALLABLE): JSON under /api/, a page
    that says what happened and how long it lasts elsewhere."""
    minutes = _cooloff_minutes()
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": locked_out_message()}, status=LOCKED_STATUS)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes, "username": username}
    return render(request, "registration/locked_out.html", context, status=LOCKED_STATUS)
