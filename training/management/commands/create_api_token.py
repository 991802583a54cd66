"""`manage.py create_api_token USER [--name NAME]`: issue an API token; it is printed once, last."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.tokens import ApiToken


class Command(BaseCommand):
    help = (
        "Create an API token for USER and print it as the last line. Only a hash is stored: copy it "
        "now. Scripts send it as `Authorization: Bearer <token>`; delete the token in the admin to revoke it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for (shown in the admin).")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; a token would not authenticate")
        row, token = ApiToken.issue(user, name=name[:100])
        self.stdout.write(f"API token {row.prefix}… created for {username}. It is shown once; only a hash is kept.")
        # The token alone on the last line, so scripts can take it with `tail -n 1`.
        self.stdout.write(token)
