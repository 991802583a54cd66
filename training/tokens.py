"""Per-user API tokens for scripts that call the JSON API (`Authorization: Bearer <token>`).

Browsers use the session cookie and CSRF; a script has no cookie jar worth trusting and no CSRF
token, so it presents a token instead. Only a SHA-256 digest of each token is stored: the token
is shown once, by `manage.py create_api_token USER`, and a database leak reveals no usable token.
A plain digest (no salt, no slow hash) is enough because tokens are 256 random bits, not
passwords a person chose, and it lets a request find its token with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

# Recognisable in logs and secret scanners; the random part follows.
TOKEN_PREFIX = "genhrl_"
# How much of a token is kept in clear, so that a person can tell their tokens apart.
VISIBLE_CHARS = len(TOKEN_PREFIX) + 6
# `last_used_at` is informational; writing it on every request would make each API call a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiToken(models.Model):
    """A secret that authenticates API requests as `user`; delete the row to revoke it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What the token is for.")
    prefix = models.CharField(max_length=20, help_text="The token's first characters, for recognising it.")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "training"
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user}" + (f" ({self.name})" if self.name else "")

    @classmethod
    def issue(cls, user: Any, name: str = "") -> tuple[ApiToken, str]:
        """Create a token for `user`; returns the row and the token, which is never stored."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = cls.objects.create(user=user, name=name, prefix=token[:VISIBLE_CHARS], digest=_digest(token))
        return row, token


def authenticate_token(token: str) -> Any | None:
    """The active user a token belongs to, or None for an unknown, revoked or malformed token."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = ApiToken.objects.select_related("user").filter(digest=_digest(token)).first()
    if row is None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user
