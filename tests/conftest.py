"""Shared fixtures: two organizations with members of every role."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery import _state as celery_state
from django.db import connections
from django_scopes import scopes_disabled

from spm.celery import app as celery_app
from spm.models import Role
from tests.attainment_data import stages_create
from tests.factories import MembershipFactory, OrganizationFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _english_by_default(settings):
    # Tests assert English strings unless they switch language themselves.
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs about 0.3 s per hash; tests that log in would take seconds each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _close_connections_before_test_database_teardown(django_db_setup):
    # The import progress alias mirrors the test database on PostgreSQL. Its open
    # connection would keep pytest-django from dropping the test database.
    yield
    connections.close_all()


@pytest.fixture
def org(db):
    with scopes_disabled():
        return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def org_in_english(org):
    """The `org` fixture with English as its language, for tests that read messages written in it (task logs, command output)."""
    org.language = "en"
    org.save(update_fields=["language"])
    return org


@pytest.fixture
def other_org(db):
    with scopes_disabled():
        return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def admin_member(org):
    with scopes_disabled():
        return MembershipFactory(organization=org, role=Role.ADMIN, user=UserFactory(email="admin@acme.example"))


@pytest.fixture
def team(org):
    with scopes_disabled():
        return TeamFactory(organization=org, name="North")


@pytest.fixture
def manager_member(org, team):
    with scopes_disabled():
        manager = MembershipFactory(
            organization=org, role=Role.MANAGER, team=team, user=UserFactory(email="manager@acme.example")
        )
        team.manager = manager
        team.save(update_fields=["manager"])
        return manager


@pytest.fixture
def member(org, team, manager_member):
    """A rep in the manager's team."""
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.REP, team=team, manager=manager_member, user=UserFactory(email="rep@acme.example")
        )


@pytest.fixture
def other_rep(org, team, manager_member):
    with scopes_disabled():
        return MembershipFactory(
            organization=org, role=Role.REP, team=team, manager=manager_member, user=UserFactory(email="rep2@acme.example")
        )


@pytest.fixture
def south_rep(org):
    """A rep of another team, South, with no manager: outside the manager's reports."""
    with scopes_disabled():
        south = TeamFactory(organization=org, name="South")
        return MembershipFactory(
            organization=org, role=Role.REP, team=south, user=UserFactory(email="south@acme.example", name="Sue South")
        )


@pytest.fixture
def stages(org):
    """The pipeline Qualify (open) → Won → Lost, keyed by deal status."""
    with scopes_disabled():
        return stages_create(org)


@pytest.fixture
def other_org_admin(other_org):
    with scopes_disabled():
        return MembershipFactory(
            organization=other_org, role=Role.ADMIN, user=UserFactory(email="admin@globex.example")
        )


@pytest.fixture
def globex_boss(other_org):
    """An admin of another organization who logs in with a password, for the rule that imports never attach such users."""
    with scopes_disabled():
        return MembershipFactory(
            organization=other_org, role=Role.ADMIN, user=UserFactory(email="boss@globex.example", name="Globex Boss")
        )


@pytest.fixture
def admin_client(client, admin_member):
    """The test client logged in as `admin_member`; it replaces pytest-django's superuser client of the same name."""
    client.force_login(admin_member.user)
    return client


@pytest.fixture
def import_storage(settings, tmp_path):
    """Store uploaded import files below the test's tmp_path and write import progress through the default connection."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # Test databases block a second connection alias, so progress goes through the default one.
    settings.IMPORT_PROGRESS_DATABASE = ""


# --- Celery: eager by default, a real worker for tests marked `worker` ---------------------------

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER_START_TIMEOUT_SECONDS = 60
WORKER_STOP_TIMEOUT_SECONDS = 30


@pytest.fixture(autouse=True)
def _celery_eager_unless_worker_test(request):
    """Run tasks in-process in every test that is not marked `worker`.

    With REDIS_URL set the settings switch eager mode off for the whole process, but
    ordinary tests expect a task's effect right after `.delay()` and no worker would
    consume their messages. Only `worker` tests send through the broker.
    """
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = request.node.get_closest_marker("worker") is None
    yield
    celery_app.conf.task_always_eager = previous


def _skip_or_fail(reason: str, required_by: str) -> None:
    """Skip with `reason`, or fail when the environment variable `required_by` is 1 (CI sets it)."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1 turns this skip into a failure)", pytrace=False)
    pytest.skip(reason)


def _worker_unavailable_reason() -> str | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return "needs PostgreSQL (DATABASE_URL): a worker process cannot open the in-memory SQLite test database"
    if celery_app.conf.broker_url.startswith("memory://"):
        return "needs a broker: set REDIS_URL or CELERY_BROKER_URL"
    broker = celery_app.connection_for_write()
    try:
        broker.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:  # kombu raises transport-specific errors for a missing broker
        return f"broker {broker.as_uri()} did not respond: {error}"
    finally:
        broker.release()
    return None


def _test_database_url(test_database_name: str) -> str:
    """Return DATABASE_URL with its database name replaced by the test database's."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{test_database_name}"))


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start one `celery -A spm worker` subprocess for the session and stop it at the end.

    Design: pytest-django creates the test database (`test_<name>` on PostgreSQL) and
    this fixture, which depends on that setup, starts the worker with DATABASE_URL
    pointing at it, so the same code runs locally and in CI with nothing started by
    hand. The worker gets CONN_MAX_AGE=0, so it keeps no connection open between
    tasks, and a queue of its own (`spm-test-<random>`), so neither a developer's
    worker on the same Redis nor stale messages from earlier runs interfere. Tests
    reach it through the `celery_worker` fixture, which needs `transactional_db`
    because the worker only sees committed rows.

    Skips unless the database is PostgreSQL and the broker answers; with
    SPM_REQUIRE_WORKER=1 those skips fail instead. SIGTERM asks the worker for a warm
    shutdown; after WORKER_STOP_TIMEOUT_SECONDS it is killed.
    """
    with django_db_blocker.unblock():
        reason = _worker_unavailable_reason()
    if reason:
        _skip_or_fail(reason, "SPM_REQUIRE_WORKER")

    from django.db import connection

    queue = f"spm-test-{uuid.uuid4().hex[:12]}"
    node_name = f"{queue}@localhost"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "DATABASE_URL": _test_database_url(connection.settings_dict["NAME"]),
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": celery_app.conf.broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        # Fake CRM and webhook servers of worker tests listen on 127.0.0.1.
        "WEBHOOKS_ALLOW_LOOPBACK": "1",
    }
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "spm", "worker",
        "--pool=solo", "--loglevel=INFO", f"--hostname={node_name}", f"--queues={queue}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT)

    def log_tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])

    deadline = time.monotonic() + WORKER_START_TIMEOUT_SECONDS
    while not celery_app.control.ping(destination=[node_name], timeout=0.5):
        if process.poll() is not None:
            pytest.fail(f"Celery worker exited with code {process.returncode} during start-up:\n{log_tail()}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"Celery worker did not answer a ping within {WORKER_START_TIMEOUT_SECONDS} s:\n{log_tail()}")

    yield {"queue": queue, "node_name": node_name, "log_path": log_path}

    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def celery_worker(celery_worker_process, transactional_db):
    """Send this test's `.delay()` calls to the session's real worker instead of running them eagerly."""
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = celery_worker_process["queue"]
    # Celery sets one process-wide "inside a task" flag around each eager task and restores
    # it afterwards, so eager tasks that overlap in two threads (a live server's requests,
    # an import racing an API batch) can leave it set. In a full PostgreSQL run the worker
    # tests' `result.get()` then raised "Never call result.get() within a task!". No task
    # runs in this thread now, so the flag is cleared.
    celery_state._set_task_join_will_block(False)
    yield celery_worker_process
    celery_app.conf.task_default_queue = previous_queue
