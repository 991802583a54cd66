"""The URL converter for task, robot and skill names in paths: `<name:robot>`.

Like Django's `str` (anything but "/"), minus NUL: PostgreSQL text cannot hold it, so a name with
one can match no row, and the URL simply does not resolve (404) instead of reaching a query that
the database refuses (a 500 on PostgreSQL only). Importing this module registers it once.
"""

from __future__ import annotations

from django.urls import register_converter


class NameConverter:
    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(NameConverter, "name")
