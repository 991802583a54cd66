"""ASGI entry point: daphne serves pages, the JSON API, the SSE streams and static files from here.

Static files are served by Django's ASGI static handler so that `make run` needs no other server;
a lab deployment behind nginx can serve `STATIC_ROOT` itself and this handler is simply never hit.
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genhrl_site.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
