"""Who the client is, behind reverse proxies: used by the sign-in and API-token lock-out."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with GENHRL_PROXY_COUNT=N trusted proxies in front,
    the address the outermost of them saw (X-Forwarded-For, counted from the right, so a client
    cannot choose its own address by sending the header itself)."""
    count = getattr(settings, "GENHRL_PROXY_COUNT", 0)
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if not count:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    return forwarded[-count] if len(forwarded) >= count else remote
