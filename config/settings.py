"""Settings for the Actions console.

Everything that differs between a laptop and production comes from the environment; the
defaults are the embedded set-up that `make run` uses (SQLite, in-process cache, DEBUG on).
Every variable is listed in the README.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# DJANGO_ENV=production turns on every transport-security setting `check --deploy` looks for.
PRODUCTION = os.environ.get("DJANGO_ENV", "development") == "production"
DEBUG = env_flag("DJANGO_DEBUG", not PRODUCTION)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-" + "x" * 20

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "guardian",
    "axes",
    "ninja",
    "core",
    "tenants",
    "audit_app",
    "actions_app",
    "flows_app",
    "orchestration",
]

MIDDLEWARE = [
    # First: probes are answered before the host check, the HTTPS redirect and sessions.
    "config.health.HealthProbeMiddleware",
    "core.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "core.middleware.ApiMethodNotAllowedMiddleware",
    "audit_app.middleware.UnrecordedRunsMiddleware",
    # Axes last: it must see the outcome of the authentication backends.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Serves the collected, hashed static files (npm packages included) from every app server.
    MIDDLEWARE.insert(3, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "tenants.context_processors.tenant_switcher",
                "audit_app.context_processors.unrecorded_runs",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        # A kept connection is checked before a request reuses it: after PostgreSQL restarts or
        # fails over, the first request of each process reconnects instead of failing.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite waits instead of failing at once when two requests write together; WAL lets
    # readers go on while one request writes, and NORMAL sync is safe with WAL (no corruption,
    # at worst the last commits before a power cut are lost — fine for the embedded set-up).
    # IMMEDIATE: a transaction takes the write lock when it begins. With the default (deferred)
    # a transaction that read first and writes later cannot wait for the lock once another
    # request has committed in between, and fails at once with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        # With connections that stay open the WAL file is no longer removed when the last one
        # closes; checkpoints reuse it from the start, and this truncates it back to 64 MiB.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864;",
    }
    # Connections persist (CONN_MAX_AGE above) as they do on PostgreSQL. Opening one per request
    # (connect, register functions, five PRAGMAs) and closing it (a WAL checkpoint attempt) took
    # about 30 % of a gunicorn worker's time in bench/run_endpoint.py. runserver closes each
    # request thread's connections itself, so the dev server keeps none open.

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "actions-console"),
            # Redis answers in well under a millisecond; an unreachable one must fail fast rather
            # than hold a sign-in (or a readiness probe) for a TCP timeout.
            "OPTIONS": {
                "socket_connect_timeout": float(os.environ.get("REDIS_TIMEOUT_SECONDS", "1")),
                "socket_timeout": float(os.environ.get("REDIS_TIMEOUT_SECONDS", "1")),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions live in the database only, so any app server behind the load balancer can serve any
# request. Not cached_db: while Redis is away its sign-in raises, and a sign-out that cannot delete
# the cached copy would leave a session that comes back with Redis. One primary-key read per
# console request is what the console can afford.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTHENTICATION_BACKENDS = [
    # Axes first so a locked-out client is refused before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# guardian: no anonymous user row; anonymous requests never reach object checks.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# django-axes: lock a username+IP pair after repeated failures for a while.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", "0.25"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Proxies in front of the app whose X-Forwarded-For entries are trusted (core.http.client_ip).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"
# Days the platform security log keeps failed sign-ins and refused requests (manage.py purge_audit).
SECURITY_LOG_RETENTION_DAYS = int(os.environ.get("SECURITY_LOG_RETENTION_DAYS", "90"))
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
# Where `manage.py collectstatic` puts the hashed, compressed files WhiteNoise serves.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Monaco's prebuilt AMD bundle, from npm (package.json), served as /static/monaco/vs/...
    ("monaco", BASE_DIR / "node_modules" / "monaco-editor" / "min"),
]
STATICFILES_FINDERS = [
    # Django's two finders; the first leaves out the parts of Monaco the editor never loads.
    "config.static_storage.StaticFilesDirsFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "config.static_storage.ManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Every reference goes through the manifest (Monaco's too, see actions_app/templatetags/
# monaco_static.py), so collectstatic keeps and compresses only the hashed copies.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True

# Cookies and transport. Session cookies are never readable from JavaScript; the CSRF cookie
# stays readable only because Django's double-submit check needs it in forms.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_flag("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # The load balancer terminates TLS and says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# --- Actions runtime, flows and outbound webhooks -------------------------------------------
# (ACTIONS_RUNTIME_WORKERS, read by actions_app/runtime: V8 worker processes per app process.)
# PostgreSQL: a flow run's records are flushed to the WAL before the sign-in is answered. Off
# answers first; the fault bench then lost an answered run when PostgreSQL crashed.
RUN_RECORDS_DURABLE = env_flag("RUN_RECORDS_DURABLE", True)
# A sign-in transaction keeps its flow revision this long after its first trigger.
FLOW_TRANSACTION_TTL_SECONDS = int(os.environ.get("FLOW_TRANSACTION_TTL_SECONDS", "3600"))
# Fernet keys (comma-separated; the first encrypts, all decrypt) for binding secrets. Without
# them a key is derived from DJANGO_SECRET_KEY: set them in production so rotating the Django
# key does not make stored secrets unreadable.
SECRETS_ENCRYPTION_KEYS = env_list("SECRETS_ENCRYPTION_KEYS", "")
# Webhook delivery: networks that may be reached although private (on-prem receivers). Empty
# means loopback, private, link-local, CGNAT and metadata addresses are all refused.
WEBHOOK_ALLOWED_PRIVATE_NETWORKS = env_list("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "")
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "6"))
# `make run` drains the webhook outbox and settles flow runs' records in a thread of the dev
# server; production runs `manage.py run_outbox_worker` and `manage.py settle_runs` as processes.
OUTBOX_IN_PROCESS = env_flag("OUTBOX_IN_PROCESS", False)

# How long a rate-limit counter waits for Redis on the sign-in path, and how long a process then
# skips it (core/rate_limits.py).
RATE_LIMIT_REDIS_TIMEOUT_MS = int(os.environ.get("RATE_LIMIT_REDIS_TIMEOUT_MS", "250"))
RATE_LIMIT_REDIS_RETRY_SECONDS = float(os.environ.get("RATE_LIMIT_REDIS_RETRY_SECONDS", "1"))
# Management API: requests per token per clock minute, counted in the cache (Redis in production,
# so every app process shares the count); past it the API answers 429 with Retry-After.
API_RATE_LIMIT_PER_MINUTE = int(os.environ.get("API_RATE_LIMIT_PER_MINUTE", "600"))

# Invitations to join a tenant (Settings → Members): how long a link works, and how many one admin
# may send an hour (the form must not become a way to spam addresses).
INVITATION_LIFETIME_DAYS = int(os.environ.get("INVITATION_LIFETIME_DAYS", "7"))
INVITATIONS_PER_ADMIN_PER_HOUR = int(os.environ.get("INVITATIONS_PER_ADMIN_PER_HOUR", "50"))
