"""`manage.py ensure_admin`: make sure a fresh install has an account to log in with."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import IntegrityError, transaction

USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the superuser 'admin' with a generated password (printed once) if it does not exist. "
        "Never prints or changes an existing password."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        lookup = {users.USERNAME_FIELD: USERNAME}
        if users._default_manager.filter(**lookup).exists():
            self.stdout.write(f"Superuser '{USERNAME}' already exists.")
            return
        password = secrets.token_urlsafe(16)
        try:
            with transaction.atomic():
                users._default_manager.create_superuser(**lookup, email="", password=password)
        except IntegrityError:
            # Another process (a second `make run`) created it between the check and the insert.
            self.stdout.write(f"Superuser '{USERNAME}' already exists.")
            return
        self.stdout.write(self.style.SUCCESS(f"Created superuser '{USERNAME}' with password: {password}"))
        self.stdout.write(
            "This password is shown only once. Change it with: python manage.py changepassword admin"
        )
