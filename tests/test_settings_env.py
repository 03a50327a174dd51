"""Settings read from environment variables: strict parsing and the embedded default.

Each case imports spm.settings in a fresh interpreter with a controlled environment,
because settings are read once per process and the test process already has its own.
"""

import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Prints the settings the cases look at as JSON on stdout.
_SETTINGS_PROBE = """
import json
import django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ENGINE": db["ENGINE"],
    "NAME": str(db["NAME"]),
    "CONN_MAX_AGE": db.get("CONN_MAX_AGE"),
    "CONN_HEALTH_CHECKS": db.get("CONN_HEALTH_CHECKS"),
    "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
    "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "LOG_LEVEL": settings.LOGGING["root"]["level"],
    "WEBHOOKS_ALLOW_LOOPBACK": settings.WEBHOOKS_ALLOW_LOOPBACK,
}))
"""


def load_settings(**variables: str) -> subprocess.CompletedProcess:
    """Run the probe with only PATH, DJANGO_SETTINGS_MODULE and `variables` in the environment."""
    environment = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "spm.settings", **variables}
    return subprocess.run(
        [sys.executable, "-c", _SETTINGS_PROBE],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def loaded_settings(**variables: str) -> dict:
    result = load_settings(**variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def configuration_error(**variables: str) -> str:
    """Return the last stderr line of a settings import that must fail."""
    result = load_settings(**variables)
    assert result.returncode != 0, result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr
    return last_line


def test_no_variables_gives_sqlite_and_eager_celery():
    values = loaded_settings()

    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(PROJECT_ROOT / "db.sqlite3")
    assert values["DEBUG"] is True
    assert values["CELERY_TASK_ALWAYS_EAGER"] is True
    assert values["CELERY_BROKER_URL"] == "memory://localhost/"
    assert values["CELERY_RESULT_BACKEND"] is None
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert values["LOG_LEVEL"] == "INFO"
    assert values["WEBHOOKS_ALLOW_LOOPBACK"] is False


def test_loopback_stays_off_with_debug_on():
    values = loaded_settings(DEBUG="1")

    assert values["DEBUG"] is True
    assert values["WEBHOOKS_ALLOW_LOOPBACK"] is False


def test_loopback_variable_turns_it_on():
    values = loaded_settings(WEBHOOKS_ALLOW_LOOPBACK="1")

    assert values["WEBHOOKS_ALLOW_LOOPBACK"] is True


def test_loopback_off_in_production():
    values = loaded_settings(DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="spm.example")

    assert values["WEBHOOKS_ALLOW_LOOPBACK"] is False


def dockerfile_environment() -> dict[str, str]:
    """Return the variables set by the Dockerfile's ENV instructions, with continuation lines joined."""
    text = (PROJECT_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    variables = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for assignment in line.removeprefix("ENV ").split():
                name, _, value = assignment.partition("=")
                variables[name] = value
    return variables


def test_docker_image_runs_without_debug():
    environment = dockerfile_environment()

    assert environment["DEBUG"] == "0"
    assert "SECRET_KEY" not in environment
    assert "WEBHOOKS_ALLOW_LOOPBACK" not in environment


def test_redis_url_sets_broker_and_disables_eager():
    values = loaded_settings(REDIS_URL="redis://127.0.0.1:6379/5")

    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/5"
    assert values["CELERY_RESULT_BACKEND"] == "redis://127.0.0.1:6379/5"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False


def test_celery_broker_url_wins_over_redis_url():
    values = loaded_settings(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/7", REDIS_URL="redis://127.0.0.1:6379/5"
    )

    assert values["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/7"
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False


def test_database_url_selects_postgresql_with_kept_connections():
    values = loaded_settings(DATABASE_URL="postgres://spm@db.internal:5432/spm")

    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert values["NAME"] == "spm"
    assert values["CONN_MAX_AGE"] == 600
    assert values["CONN_HEALTH_CHECKS"] is True


def test_conn_max_age_zero_closes_connections():
    values = loaded_settings(DATABASE_URL="postgres://spm@db.internal:5432/spm", CONN_MAX_AGE="0")

    assert values["CONN_MAX_AGE"] == 0


def test_debug_maybe_is_rejected_with_its_value():
    message = configuration_error(DEBUG="maybe")

    assert "DEBUG='maybe'" in message
    assert "not a boolean" in message


def test_debug_off_without_secret_key_is_rejected():
    message = configuration_error(DEBUG="0", ALLOWED_HOSTS="spm.example")

    assert "SECRET_KEY is missing" in message
    assert "set DEBUG=1 for a development server" in message


def test_debug_off_without_allowed_hosts_is_rejected():
    message = configuration_error(DEBUG="0", SECRET_KEY="x" * 50)

    assert "ALLOWED_HOSTS is missing" in message


def test_debug_off_with_secret_and_hosts_loads():
    values = loaded_settings(DEBUG="false", SECRET_KEY="x" * 50, ALLOWED_HOSTS="spm.example, www.spm.example")

    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["spm.example", "www.spm.example"]


def test_empty_allowed_hosts_is_rejected():
    message = configuration_error(ALLOWED_HOSTS=" , ")

    assert "ALLOWED_HOSTS is set but empty" in message


def test_unknown_database_scheme_is_rejected():
    message = configuration_error(DATABASE_URL="postgress://spm@db.internal/spm")

    assert "DATABASE_URL is invalid" in message
    assert "postgress://" in message


def test_conn_max_age_text_is_rejected():
    message = configuration_error(DATABASE_URL="postgres://spm@db.internal:5432/spm", CONN_MAX_AGE="abc")

    assert "CONN_MAX_AGE='abc'" in message
    assert "not an integer" in message


def test_conn_max_age_checked_on_sqlite():
    message = configuration_error(CONN_MAX_AGE="abc")

    assert "CONN_MAX_AGE='abc'" in message


def test_log_level_is_case_insensitive():
    values = loaded_settings(LOG_LEVEL="debug")

    assert values["LOG_LEVEL"] == "DEBUG"


def test_unknown_log_level_is_rejected_with_its_value():
    message = configuration_error(LOG_LEVEL="verbose")

    assert "LOG_LEVEL='verbose'" in message
