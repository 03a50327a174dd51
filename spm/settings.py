"""Settings for SPM, configured entirely by environment variables.

With no variables set the app runs on the embedded default: SQLite in the
project folder and Celery in eager mode, so a newcomer needs no servers.
"""

import os
from pathlib import Path

import dj_database_url
import plotly
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from xstatic.pkg import bootstrap as xstatic_bootstrap

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE_VALUES = {"1", "true", "yes", "on"}
_FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean variable; anything other than the known spellings is an error."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE_VALUES:
        return True
    if value in _FALSE_VALUES:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of: 1, 0, true, false, yes, no, on, off."
    )


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer; set a whole number.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} is set but empty; give a comma-separated list.")
    return items


DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is missing; with DEBUG=0 (the Docker image's default) set SECRET_KEY to 50 or "
            "more random characters, or set DEBUG=1 for a development server."
        )
    # Only for the embedded default: sessions signed with it are worthless elsewhere.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is missing; production needs the site's host names.")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_bootstrap5",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "spm",
    "pipelines",
    "goals",
    "coaching",
    "coaching.skills",
    "dashboards",
    "integrations.api",
    "integrations.webhooks",
    "integrations.capture",
    "integrations.sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "spm.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "spm.middleware.AuditActorMiddleware",
    "spm.middleware.BrokerStatusMiddleware",
    "spm.middleware.OrganizationMiddleware",
]

ROOT_URLCONF = "spm.urls"
WSGI_APPLICATION = "spm.wsgi.application"
AUTH_USER_MODEL = "spm.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "spm.context_processors.organization",
            ],
        },
    },
]

# Database: SQLite file by default, anything dj-database-url parses otherwise.
_database_url = os.environ.get("DATABASE_URL", "").strip()
# Parsed even when SQLite ignores it, so a typo fails at start-up rather than on the day DATABASE_URL is set.
_conn_max_age = env_int("CONN_MAX_AGE", 600)
if _database_url:
    try:
        _default_db = dj_database_url.parse(_database_url, conn_max_age=_conn_max_age)
    except ValueError as error:
        raise ImproperlyConfigured(f"DATABASE_URL is invalid ({error}); expected e.g. postgres://user@host:5432/name.") from None
    if _default_db["ENGINE"] == "django.db.backends.postgresql":
        _default_db["CONN_HEALTH_CHECKS"] = True
else:
    _default_db = {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    # With the default rollback journal a long read blocks every write, so a second user's
    # login failed with "database is locked" while a big page rendered. WAL lets readers and
    # one writer run together; IMMEDIATE takes the write lock at BEGIN, where the timeout
    # waits for it, instead of failing on a lock upgrade in the middle of a transaction.
    _default_db.setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL"}
    )
DATABASES = {"default": _default_db}

# Cache: Redis when REDIS_URL is set, so web processes and Celery workers share the KPI
# data version that keys the cached dashboard fragments; process-local memory otherwise.
_redis_cache_url = os.environ.get("REDIS_URL", "").strip()
if _redis_cache_url:
    CACHES = {
        "default": {
            "BACKEND": "spm.cache.TolerantRedisCache",
            "LOCATION": _redis_cache_url,
            "KEY_PREFIX": "spm",
            # A Redis server that does not respond within half a second counts as a cache miss (spm.cache).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "spm"}}
# Imports run in one transaction and report progress through a second connection to the
# same PostgreSQL database, so other requests see the progress before the import commits.
# SQLite would lock against itself, so there progress becomes visible at the end.
IMPORT_PROGRESS_DATABASE = ""
if _default_db["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["progress"] = {**_default_db, "TEST": {"MIRROR": "default"}}
    IMPORT_PROGRESS_DATABASE = "progress"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# django-allauth: e-mail and password only, no public sign-up (members are invited or imported).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "spm.adapters.AccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_SESSION_REMEMBER = None
# Failed logins are limited per e-mail address and per client IP; after 5 failures for one
# address within 5 minutes allauth rejects further attempts for it until the window ends
# (the lockout). The values are allauth's "count/period/key" syntax.
ACCOUNT_RATE_LIMITS = {
    # Every login attempt, successful ones included: an office behind one NAT address logs in
    # together at the start of the day. Password guessing is limited by login_failed.
    "login": "200/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "mfa_authenticate": "5/m/user",
    "mfa_reauthenticate": "5/m/user",
}
# Two-factor authentication with an authenticator app (TOTP) and recovery codes. It is
# optional per user; an organization with `requires_mfa` sends members without it to setup.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "SPM"
LOGIN_REDIRECT_URL = "home"
LOGIN_URL = "account_login"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Berlin"
USE_THOUSAND_SEPARATOR = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", xstatic_bootstrap.BASE_DIR),
    ("vendor/plotly", Path(plotly.__file__).resolve().parent / "package_data"),
]
# Uploaded import files live in MEDIA_ROOT/imports/<organization id>/. No URL serves
# MEDIA_ROOT: only the import task reads the files.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_MB", 50) * 1024 * 1024

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task whose worker died before acknowledging it (SIGKILL, lost machine)
# once it has been unacknowledged this many seconds, and only when a worker starts or
# sweeps for such tasks. A shorter value recovers sooner, but every task running longer
# than it is delivered a second time to another worker while the first still runs, so it
# must exceed the longest hard time limit (imports: 3600 s). kombu's default is 3600 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3900)}
# The result backend retries a lost Redis connection 20 times a second apart by default,
# which would hold a web request for 20 s before it can respond "broker unavailable".
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "spm")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# celery beat: nightly jobs. Times are UTC (CELERY_TIMEZONE).
CELERY_BEAT_SCHEDULE = {
    "activity-retention": {
        "task": "spm.tasks.activity_retention_apply_all",
        "schedule": crontab(hour=2, minute=30),
    },
    # Hourly, so every organization gets its daily pipeline snapshot soon after its local midnight.
    "pipeline-snapshots": {
        "task": "dashboards.tasks.pipeline_snapshot_schedule",
        "schedule": crontab(minute=5),
    },
    # Hourly, so every organization's KPI snapshots gain the new month soon after its local midnight.
    "kpi-snapshot-calendar": {
        "task": "dashboards.tasks.kpi_snapshot_calendar_extend_schedule",
        "schedule": crontab(minute=10),
    },
    # Hourly, so a KPI recompute that could not be queued while Redis was down runs within an hour after it is back.
    "kpi-recompute-pending": {
        "task": "dashboards.tasks.kpi_snapshot_recompute_pending_schedule",
        "schedule": crontab(minute=25),
    },
    # Retrains each organization's win probability model and scores its open deals.
    "win-probability": {
        "task": "pipelines.tasks.win_model_train_schedule",
        "schedule": crontab(hour=3, minute=15),
    },
    # Records the system forecast (weighted pipeline + won so far) at each period start and horizon.
    "forecast-snapshots": {
        "task": "goals.tasks.forecast_snapshot_schedule",
        "schedule": crontab(minute=20),
    },
    # Weekly coaching digest; hourly, so each organization gets it on Monday morning local time.
    "weekly-digest": {
        "task": "coaching.tasks.weekly_digest_schedule",
        "schedule": crontab(minute=0),
    },
    "mailbox-poll": {
        "task": "integrations.capture.tasks.mailbox_poll_schedule",
        "schedule": crontab(minute="*/5"),
    },
    "calendar-feed-poll": {
        "task": "integrations.capture.tasks.calendar_feed_poll_schedule",
        "schedule": crontab(minute=40),
    },
    "crm-sync": {
        "task": "integrations.sync.tasks.crm_sync_schedule",
        "schedule": crontab(minute="*/15"),
    },
}
if not CELERY_BROKER_URL:
    # Eager mode never touches the broker; an explicit host keeps kombu from warning about it.
    CELERY_BROKER_URL = "memory://localhost/"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "SPM <noreply@localhost>")

# Outgoing webhooks and calendar feeds (integrations.webhooks, integrations.capture). URLs that
# resolve to private or loopback addresses are rejected unless WEBHOOKS_ALLOW_LOOPBACK is on.
# The IMAP mailbox host and CRM sync base URLs follow the same rule. It is off unless set, also
# with DEBUG on, because a development server can still reach the host's private network.
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", default=False)
# Attempts per delivery (the first plus retries after 1, 2, 4, 8 … minutes) and the number of
# deliveries in a row that may fail before a webhook is switched off and its admins are notified.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_DISABLE_AFTER = env_int("WEBHOOK_DISABLE_AFTER", 5)

# REST API under /api/v1/ (integrations.api). Clients authenticate with an organization's
# API token, never with a login session, so the API needs no CSRF token. Rates are per
# token and counted in the cache, so with several web processes they need the Redis cache.
API_BATCH_MAX_RECORDS = env_int("API_BATCH_MAX_RECORDS", 5000)
# Maximum request body of the API in bytes, read by integrations.api.parsers instead of
# DATA_UPLOAD_MAX_MEMORY_SIZE, which stays at Django's default of 2.5 MiB for the rest of the site.
# 16 MiB lets a full batch of 5,000 records average about 3,300 bytes per record.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 16 * 1024 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["integrations.api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.api.authentication.HasApiToken"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.api.authentication.ApiTokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_token": os.environ.get("API_RATE_LIMIT", "1200/minute")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["integrations.api.parsers.JsonBodyParser"],
    # An unknown ?format= is a 400 that names the accepted formats. DRF's own negotiation returns 404.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "integrations.api.negotiation.FormatParameterNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SPM API",
    "DESCRIPTION": (
        "Read and upsert one organization's CRM data and read its KPIs. Authenticate with "
        "`Authorization: Bearer <token>` from the organization's API tokens page."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and the docs are public: they describe the API, not any organization's data.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from drf-spectacular-sidecar's static files: the CSP allows scripts from 'self' only.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "StageKindEnum": "pipelines.models.StageKind",
        "ActivityKindEnum": "pipelines.models.ActivityKind",
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# htmx sends the token from the page (hx-headers in base.html), never from the cookie, so
# the cookie can be HttpOnly too.
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp). Every script is a file under /static/ (htmx,
# Bootstrap, plotly.min.js, spm/*.js), and chart data travels in <script type="application/json">
# blocks, which are data, not scripts, so script-src needs neither 'unsafe-inline' nor
# 'unsafe-eval'. plotly.js 4.1 compiles code with Function() only for WebGL traces (regl);
# the dashboard draws SVG traces and never reaches it. style-src allows 'unsafe-inline'
# because plotly.js and htmx insert <style> elements at run time. Bootstrap's CSS loads its
# icons as data: URIs, hence img-src data:.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading binds every subdomain to HTTPS for months and is hard to undo, so it
        # is the operator's choice (SECURE_HSTS_PRELOAD=1), not a default; silence its warning.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL={os.environ['LOG_LEVEL']!r} is not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # The process runs in TIME_ZONE, so the timestamp carries its UTC offset to stay unambiguous.
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s", "datefmt": "%Y-%m-%dT%H:%M:%S%z"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
