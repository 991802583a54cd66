"""ASGI entry point: daphne serves pages, the JSON API, the SSE streams and static files from here.

Static files are served by Django's ASGI static handler so that `make run` needs no other server;
a lab deployment behind nginx can serve `STATIC_ROOT` itself and this handler is simply never hit.

The web process's background threads start here, not in an AppConfig, so that management commands
(`train`, `migrate`, ...) never start them: the SSE relay, which brings progress written by any
process to this process's viewers, and, unless GENHRL_EMBEDDED_WORKER is off, the embedded worker
that trains queued sessions.
"""

import gc
import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genhrl_site.settings")

application = ASGIStaticFilesHandler(get_asgi_application())

from training.engine.worker import start_embedded_worker  # noqa: E402
from training.sse import start_relay  # noqa: E402  (needs the apps loaded above)

start_relay()
if settings.GENHRL_EMBEDDED_WORKER:
    start_embedded_worker()

# The garbage collector of a process that holds many long-lived streams: what was loaded so far
# (Django, the apps, their modules: ~120,000 objects) is never scanned again, and young
# collections are rarer, so objects that live a fraction of a second die young instead of
# growing the oldest generation. Reference counting still frees everything as before.
if settings.GENHRL_GC_YOUNG_THRESHOLD:
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(settings.GENHRL_GC_YOUNG_THRESHOLD, max(middle, 20), max(old, 20))
