"""How API requests authenticate: a Bearer token (scripts) or the session cookie with CSRF (browsers).

Every API request is authenticated here and answers 401 JSON when it is not, instead of the login
redirect that LoginRequiredMiddleware gives pages (see `urls.py`): a script cannot follow a
redirect to an HTML form.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from genhrl_site.security import LOCKED_STATUS, TOKEN_CREDENTIAL, locked_out_message
from training.tokens import VISIBLE_CHARS, authenticate_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>` with a token from `manage.py create_api_token USER`."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        # Wrong tokens count like wrong passwords (django-axes): a client that keeps guessing is
        # refused for a while, whatever it sends.
        credentials = {"username": f"{TOKEN_CREDENTIAL}{token.strip()[:VISIBLE_CHARS]}"}
        if not AxesProxyHandler.is_allowed(request, credentials):
            raise HttpError(LOCKED_STATUS, locked_out_message())
        user = authenticate_token(token)
        if user is None:
            user_login_failed.send(sender=__name__, credentials=credentials, request=request)
            # A wrong token is an error even if a session cookie came along: scripts must know.
            raise AuthenticationError(401, "invalid or revoked API token")
        # The rest of the request (actor names, the stream's permission check) sees the token's user.
        request.user = user
        return user


class SessionCookie(APIKeyCookie):
    """The browser's Django session; unsafe methods also need the CSRF token (`X-CSRFToken`)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request: HttpRequest) -> Any:
        user = request.user
        if not user.is_authenticated:
            # Anonymous is 401 whatever the method; CSRF only matters for someone logged in.
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken")
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:  # pragma: no cover
        return None  # unused: __call__ reads the user that the session middleware resolved


def api_auth() -> list[Any]:
    return [BearerToken(), SessionCookie()]
