"""Settings for the GenHRL Portal, read from the environment.

Defaults suit a laptop: SQLite in the data folder, bound to 127.0.0.1, DEBUG off. Every
environment variable is listed in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from genhrl_site.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_optional_int,
    env_optional_path,
    env_path,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = env_path("GENHRL_DATA_DIR", BASE_DIR / "data")
if not DATA_DIR.exists():
    # It holds the database (password hashes, session keys), the secret key and every run:
    # only the portal's own account may read it.
    DATA_DIR.mkdir(parents=True, mode=0o700)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder."""
    key = env_str("SECRET_KEY", "")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    return _generated_once(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))


def _generated_once(path: Path, make: Any) -> str:
    """A value generated on first start and kept in the data folder (0600).

    Written to a private temporary file, then linked into place: two processes starting together
    (daphne and a worker) both read the one that won, never a half-written or empty file.
    """
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        with os.fdopen(fd, "w") as out:
            out.write(make())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race: use its value
        finally:
            os.unlink(temporary)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", []) if env_str("CSRF_TRUSTED_ORIGINS", "") else []

# Where GenHRL task trees are imported from at start-up and by the staff "Rescan" button.
GENHRL_ISAACLAB_PATH = env_optional_path("GENHRL_ISAACLAB_PATH")
# Where training runs keep checkpoints, success states, logs and videos.
GENHRL_RUNS_DIR = DATA_DIR / "training"
# Which simulator new sessions use unless the task or the request says otherwise.
GENHRL_DEFAULT_BACKEND = env_choice("GENHRL_DEFAULT_BACKEND", "embedded", ("embedded", "isaaclab"))
# Isaac Lab checkout used by the isaaclab backend (the folder holding isaaclab.sh).
GENHRL_ISAACLAB_ROOT = env_optional_path("GENHRL_ISAACLAB_ROOT")
GENHRL_ISAACLAB_VERSION = env_choice("GENHRL_ISAACLAB_VERSION", "2", ("2", "3"))
# Training slots of the embedded in-process worker (sessions trained side by side).
GENHRL_WORKER_SLOTS = env_int("GENHRL_WORKER_SLOTS", 1, minimum=1, maximum=64)
# Run queued sessions in a worker thread inside each daphne process (training/engine/worker.py). Turn off
# when a separate worker process (or only `manage.py train`) does the training.
GENHRL_EMBEDDED_WORKER = env_bool("GENHRL_EMBEDDED_WORKER", True)
# Pruning of finished sessions' fine-grained rows (training/pruning.py, run by cleanup_sessions):
# after this many days a skill run keeps only its newest log lines and a thinned reward curve.
GENHRL_PRUNE_AFTER_DAYS = env_int("GENHRL_PRUNE_AFTER_DAYS", 7, minimum=0)
GENHRL_PRUNE_KEEP_LOG_LINES = env_int("GENHRL_PRUNE_KEEP_LOG_LINES", 200, minimum=0)
GENHRL_PRUNE_MAX_POINTS_PER_TAG = env_int("GENHRL_PRUNE_MAX_POINTS_PER_TAG", 200, minimum=2)
# A worker renews its lease on a session every few seconds; a session whose lease is older than
# this is taken to have lost its worker and is marked interrupted (resumable).
GENHRL_LEASE_SECONDS = env_int("GENHRL_LEASE_SECONDS", 30, minimum=10, maximum=3600)
# Seconds a trainer may go without reporting (a JSON record) before it is stopped as stalled; unset:
# 120 for the embedded backend, 900 for Isaac Lab (which takes minutes to start). 0 turns it off.
GENHRL_STALL_SECONDS = env_optional_int("GENHRL_STALL_SECONDS", minimum=0, maximum=7 * 24 * 3600)
# How long a supervisor keeps its trainers training while the database is unreachable (writes are
# kept in memory and replayed); after that it stops them gracefully, keeping their success states.
GENHRL_DB_OUTAGE_SECONDS = env_int("GENHRL_DB_OUTAGE_SECONDS", 300, minimum=5, maximum=24 * 3600)
# Where trainers run: `local` (subprocesses of the worker) or `ray` (one Ray job per skill run on
# the cluster whose dashboard is GENHRL_RAY_ADDRESS; `pip install -r requirements-ray.txt`).
GENHRL_EXECUTOR = env_choice("GENHRL_EXECUTOR", "local", ("local", "ray"))
GENHRL_RAY_ADDRESS = env_str("GENHRL_RAY_ADDRESS", "http://127.0.0.1:8265")
# What one trainer asks of the cluster: CPUs for the embedded backend, GPUs for Isaac Lab.
GENHRL_RAY_EMBEDDED_CPUS = env_int("GENHRL_RAY_EMBEDDED_CPUS", 1, minimum=0, maximum=256)
GENHRL_RAY_ISAACLAB_GPUS = env_int("GENHRL_RAY_ISAACLAB_GPUS", 1, minimum=0, maximum=16)
GENHRL_RAY_ISAACLAB_CPUS = env_int("GENHRL_RAY_ISAACLAB_CPUS", 1, minimum=0, maximum=256)


def _instance_name() -> str:
    """This portal's name on a shared cluster (job ids and metadata): GENHRL_INSTANCE, else one
    generated once and kept in the data folder, so two portals (or a reset database) never reuse ids."""
    name = env_str("GENHRL_INSTANCE", "")
    if name:
        if not name.replace("-", "").isalnum() or len(name) > 40:
            raise ImproperlyConfigured("GENHRL_INSTANCE may hold letters, digits and '-' (at most 40)")
        return name
    return _generated_once(DATA_DIR / "instance", lambda: secrets.token_hex(4))


GENHRL_INSTANCE = _instance_name()
# How often each daphne process checks the database for progress written by other processes,
# while someone watches a session (training/sse.py). Half of it is the median added latency.
GENHRL_RELAY_POLL_MS = env_int("GENHRL_RELAY_POLL_MS", 25, minimum=5, maximum=5000)
# Database connections a daphne process's streams may hold at once (their sign-in check and their
# first snapshots, which are shared per session): a thousand viewers connecting together wait
# their turn instead of exceeding PostgreSQL's max_connections (training/sse.py).
GENHRL_STREAM_DB_CONNECTIONS = env_int("GENHRL_STREAM_DB_CONNECTIONS", 8, minimum=1, maximum=1000)
# The web process's cyclic garbage collector (genhrl_site/asgi.py): objects allocated before a
# young collection. Python's default (700 in 3.11 and 3.12) makes every object that lives a few
# hundred milliseconds (a waiting stream's future, a request) reach the oldest generation, whose
# full collections pause the event loop for hundreds of milliseconds with a thousand viewers
# (bench_progress). Full collections are postponed, not removed, and cyclic garbage lives longer
# (a few MB). 0 leaves Python's defaults.
GENHRL_GC_YOUNG_THRESHOLD = env_int("GENHRL_GC_YOUNG_THRESHOLD", 50_000, minimum=0, maximum=10_000_000)

# -- running a lab (issue 14) -----------------------------------------------------------------------
# Sessions one user may run at once, unless staff set their own limit on the Queue page (0: none).
GENHRL_SESSIONS_PER_USER = env_int("GENHRL_SESSIONS_PER_USER", 0, minimum=0, maximum=1000)
# Host samples kept per worker (one per heartbeat, ~5 s): 720 is an hour.
GENHRL_MONITOR_HISTORY = env_int("GENHRL_MONITOR_HISTORY", 720, minimum=10, maximum=100_000)
# The portal's address as its users reach it: links in notifications.
GENHRL_PUBLIC_URL = env_str("GENHRL_PUBLIC_URL", "http://127.0.0.1:8000")
# Notifications: attempts per message, the wait after the first failure (then 4x, 16x, ...), and
# how long a webhook may take to answer.
GENHRL_NOTIFY_ATTEMPTS = env_int("GENHRL_NOTIFY_ATTEMPTS", 4, minimum=1, maximum=20)
GENHRL_NOTIFY_BACKOFF_SECONDS = env_int("GENHRL_NOTIFY_BACKOFF_SECONDS", 30, minimum=1, maximum=24 * 3600)
GENHRL_WEBHOOK_TIMEOUT = env_int("GENHRL_WEBHOOK_TIMEOUT", 10, minimum=1, maximum=300)
# E-mail (notifications): Django's own settings, from the environment. Unset EMAIL_HOST means
# Django's default, an SMTP server on localhost:25.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "genhrl-portal@localhost")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_eventstream",
    "ninja",  # the JSON API's docs page, served from ninja's own static files (no CDN)
    "axes",  # failed sign-ins and API tokens: lock-out per account and per client
    "tasks",
    "training",
]

MIDDLEWARE = [
    # First, so a stream's whole opening (session, sign-in, permission) holds one of a bounded
    # number of database connections, closed before the stream starts (training/sse.py).
    "training.sse.StreamGateMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lock-out into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "genhrl_site.urls"
ASGI_APPLICATION = "genhrl_site.asgi.application"
WSGI_APPLICATION = "genhrl_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that stops answering must fail a query within seconds, not block a
    # supervisor for minutes: the engine rides out outages only if it hears of them.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
         "keepalives_count": 3}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web server, workers, trainers' supervisors) write the same file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    _db_file = Path(DATABASES["default"]["NAME"])
    if _db_file.parent.is_dir() and not _db_file.exists():
        # SQLite would create it with the umask (often 0644): it holds password hashes.
        os.close(os.open(_db_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out accounts and clients first
    "django.contrib.auth.backends.ModelBackend",
]
# After GENHRL_LOGIN_FAILURE_LIMIT failed sign-ins (or bad API tokens), an account and a client
# address are each refused for GENHRL_LOGIN_COOLOFF_MINUTES; a success resets the count.
AXES_FAILURE_LIMIT = env_int("GENHRL_LOGIN_FAILURE_LIMIT", 10, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = env_int("GENHRL_LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=24 * 60) / 60  # hours
AXES_LOCKOUT_PARAMETERS = "genhrl_site.security.lockout_parameters"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "genhrl_site.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "genhrl_site.security.client_ip"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"

# -- production: HTTPS, cookies, headers ---------------------------------------------------------
# GENHRL_HTTPS=1 when the portal is reached over HTTPS (normally TLS ends at a reverse proxy):
# cookies only over HTTPS, HTTP redirected to HTTPS, HSTS. GENHRL_PROXY_COUNT=N when N reverse
# proxies (that set X-Forwarded-For and X-Forwarded-Proto) stand in front of daphne.
GENHRL_HTTPS = env_bool("GENHRL_HTTPS", False)
GENHRL_PROXY_COUNT = env_int("GENHRL_PROXY_COUNT", 0, minimum=0, maximum=5)
if GENHRL_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = GENHRL_HTTPS
SECURE_SSL_REDIRECT = GENHRL_HTTPS
SECURE_HSTS_SECONDS = env_int("GENHRL_HSTS_SECONDS", 31_536_000, minimum=0) if GENHRL_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GENHRL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("GENHRL_HSTS_PRELOAD", False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The pages load only their own scripts and styles (vendored htmx, no CDN). Inline style
# *attributes* are allowed for the progress bars' widths; inline <script>/<style> elements are not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# No EVENTSTREAM_STORAGE_CLASS: events are full snapshots, never replayed. (Setting it to None
# is not the same: django-eventstream then fails on every send_event.)
# Who may watch a session's progress stream is decided in one place (training/sse.py).
EVENTSTREAM_CHANNELMANAGER_CLASS = "training.sse.SessionChannelManager"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))},
}
