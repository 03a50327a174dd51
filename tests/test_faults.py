"""Faults against real services: a killed worker, a duplicate delivery, Redis down, a PostgreSQL restart.

The shared PostgreSQL and Redis servers stay untouched. The module starts its
own disposable servers: a PostgreSQL 15 cluster (initdb + pg_ctl in a temporary
folder, run as the `postgres` OS user when the tests run as root) and a
`redis-server` without persistence, each on a free loopback port. Celery workers
and gunicorn run as subprocesses against them, and the test process reaches the
private database by pointing Django's default connection at it for each test.

Only processes this module started are signalled, and finalizers stop all of them.
The module skips on SQLite and when the server binaries are missing;
SPM_REQUIRE_WORKER=1 (CI) turns those skips into failures.

Workers run with CELERY_VISIBILITY_TIMEOUT=2, so Redis redelivers an
unacknowledged task two seconds after delivery to the next worker that starts.
"""

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from celery import Celery
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import connections
from django_scopes import scopes_disabled
from kombu import pools as kombu_pools

from pipelines.models import Deal, DealStatus, ImportRun, ImportRunStatus, ImportSource, StageKind
from spm.models import Role
from tests.conftest import PROJECT_ROOT, _skip_or_fail
from tests.factories import DealFactory, MembershipFactory, OrganizationFactory, PipelineFactory, StageFactory, UserFactory

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
VISIBILITY_TIMEOUT_SECONDS = 2
START_TIMEOUT_SECONDS = 30
WAIT_TIMEOUT_SECONDS = 20
DATABASE_NAME = "spm_faults"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, what: str, timeout: float = WAIT_TIMEOUT_SECONDS):
    """Poll `condition` every 0.1 s until it returns a truthy value; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a subprocess this module started: SIGTERM, then SIGKILL after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- Private servers -----------------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL 15 cluster in a temporary folder, listening on 127.0.0.1:`port` with trust authentication."""

    def __init__(self, folder: Path, port: int):
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.log = folder / "server.log"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        completed = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=60)
        if completed.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {completed.stdout}{completed.stderr}")

    def init(self) -> None:
        self._run(str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-m", "fast", "-w", action)

    def url(self, database: str = DATABASE_NAME) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=DATABASE_NAME, autocommit=autocommit)


class PrivateRedis:
    """A redis-server subprocess on 127.0.0.1:`port` with persistence off; `stop` and `start` simulate an outage."""

    def __init__(self, port: int, log_path: Path):
        self.port = port
        self.log_path = log_path
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        wait_until(self.answers, f"redis-server on port {self.port}", START_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@pytest.fixture(scope="module")
def private_postgres(django_db_blocker):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("fault tests need PostgreSQL (DATABASE_URL): the worker and gunicorn are separate processes")
    if not (POSTGRES_BIN / "initdb").exists() or shutil.which("redis-server") is None:
        _skip_or_fail(f"fault tests need {POSTGRES_BIN}/initdb and redis-server", "SPM_REQUIRE_WORKER")

    folder = Path(tempfile.mkdtemp(prefix="spm-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, user="postgres", group="postgres")
    server = PrivatePostgres(folder, free_port())
    started = False
    try:
        server.init()
        server.pg_ctl("start")
        started = True
        with psycopg.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE_NAME}")
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": server.url()}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if migrate.returncode != 0:
            pytest.fail(f"migrate on the private cluster failed:\n{migrate.stdout}{migrate.stderr}")
        yield server
    finally:
        if started:
            server._run(str(POSTGRES_BIN / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private_redis(private_postgres, tmp_path_factory):
    server = PrivateRedis(free_port(), tmp_path_factory.mktemp("redis") / "redis.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_db(private_postgres, private_redis, django_db_blocker, settings, tmp_path):
    """Point Django's default connection at the private cluster for one test, then back at the test database.

    The progress alias mirrors the default one in tests and shares its settings
    dictionary, so it follows. Caches go to local memory, so a KPI data version
    bump of the test process reaches no shared Redis.
    """
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "faults"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_PROGRESS_DATABASE = ""
    default = connections["default"]
    saved = dict(default.settings_dict)
    with django_db_blocker.unblock():
        connections.close_all()
        default.settings_dict.update(
            NAME=DATABASE_NAME, HOST="127.0.0.1", PORT=str(private_postgres.port), USER="postgres", PASSWORD="",
            CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=True,
        )  # fmt: skip
        try:
            yield private_postgres
        finally:
            connections.close_all()
            default.settings_dict.clear()
            default.settings_dict.update(saved)


# --- Processes under test --------------------------------------------------------------------------


def service_environment(private_postgres, private_redis, media_root: Path, **extra: str) -> dict:
    """Environment of a worker or gunicorn that talks only to the private servers."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spm.settings",
        "DEBUG": "1",
        "DATABASE_URL": private_postgres.url(),
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_redis.url,
        "CELERY_RESULT_BACKEND": private_redis.url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
        "MEDIA_ROOT": str(media_root),
        **extra,
    }


class Workers:
    """Start `celery -A spm worker` subprocesses on one private queue and send tasks to them."""

    def __init__(self, private_postgres, private_redis, media_root: Path, log_folder: Path):
        self.queue = f"spm-faults-{uuid.uuid4().hex[:12]}"
        self.environment = service_environment(
            private_postgres, private_redis, media_root, CONN_MAX_AGE="0", CELERY_TASK_DEFAULT_QUEUE=self.queue
        )
        self.log_folder = log_folder
        self.app = Celery("spm-faults", broker=private_redis.url, backend=private_redis.url)
        self.app.conf.task_default_queue = self.queue
        self.processes: list[subprocess.Popen] = []

    def start(self, pool: str = "solo", concurrency: int = 1) -> subprocess.Popen:
        node_name = f"{self.queue}-{len(self.processes)}@localhost"
        command = [
            sys.executable, "-m", "celery", "-A", "spm", "worker", f"--pool={pool}", f"--concurrency={concurrency}",
            "--loglevel=INFO", f"--hostname={node_name}", f"--queues={self.queue}",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        log_path = self.log_folder / f"worker-{len(self.processes)}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.environment, stdout=log_file, stderr=subprocess.STDOUT)
        process.log_path = log_path
        self.processes.append(process)
        wait_until(lambda: self.app.control.ping(destination=[node_name], timeout=0.5), f"worker {node_name}", START_TIMEOUT_SECONDS)
        return process

    def send(self, name: str, **kwargs):
        return self.app.send_task(name, kwargs=kwargs, queue=self.queue)

    def stop_all(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.app.close()


@pytest.fixture
def workers(private_db, private_redis, settings, tmp_path):
    started = Workers(private_db, private_redis, settings.MEDIA_ROOT, tmp_path)
    yield started
    started.stop_all()


def backends_waiting(connection: psycopg.Connection, lock_type: str) -> int:
    """Count other sessions of the private database that wait for a lock of `lock_type` (`transactionid`, `advisory`)."""
    row = connection.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE NOT l.granted AND l.locktype = %s AND a.datname = %s AND a.pid <> pg_backend_pid()",
        [lock_type, DATABASE_NAME],
    ).fetchone()
    return row[0]


def backends_busy(connection: psycopg.Connection) -> int:
    """Count other sessions of the private database that run a statement or sit in a transaction."""
    row = connection.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend' AND state <> 'idle'",
        [DATABASE_NAME],
    ).fetchone()
    return row[0]


# --- Data --------------------------------------------------------------------------------------------


def utc(year, month, day):
    return dt.datetime(year, month, day, 12, tzinfo=dt.timezone.utc)


def organization_with_deals(slug: str):
    """An organization whose rep owns A (won Feb 14, 1000.00), B (lost Feb 10, 400.00) and D (open, 750.25).

    D is still open, so the recompute writes every month, quarter and fiscal year
    from January 2017 to today's for the organization and rep grains
    (`keys_while_open`).
    """
    with scopes_disabled():
        organization = OrganizationFactory(name=slug.title(), slug=slug)
        admin = MembershipFactory(organization=organization, role=Role.ADMIN, user=UserFactory(email=f"admin@{slug}.example"))
        rep = MembershipFactory(organization=organization, role=Role.REP, user=UserFactory(email=f"rep@{slug}.example"))
        pipeline = PipelineFactory(organization=organization)
        open_stage = StageFactory(pipeline=pipeline, name="Engaging", order=1, kind=StageKind.OPEN)
        won = StageFactory(pipeline=pipeline, name="Won", order=2, kind=StageKind.WON, probability=100)
        lost = StageFactory(pipeline=pipeline, name="Lost", order=3, kind=StageKind.LOST, probability=0)
        common = {"owner": rep, "source": "faults"}
        DealFactory(**common, stage=won, status=DealStatus.WON, amount=Decimal("1000.00"), created_at=utc(2017, 1, 10), closed_at=utc(2017, 2, 14))
        DealFactory(**common, stage=lost, status=DealStatus.LOST, amount=Decimal("400.00"), created_at=utc(2017, 1, 5), closed_at=utc(2017, 2, 10))
        open_deal = DealFactory(**common, stage=open_stage, status=DealStatus.OPEN, amount=Decimal("750.25"), created_at=utc(2017, 2, 1))
    return organization, admin, open_deal, won


def keys_while_open(organization) -> set:
    """Return the snapshot keys of `organization_with_deals` while D is open: January 2017 to today's periods."""
    from django.utils import timezone

    from spm.fiscal import periods_covering

    today = timezone.localdate(timezone=organization.tzinfo)
    return {
        (grain, kind, period.start)
        for grain in ("organization", "rep")
        for kind in ("month", "quarter", "year")
        for period in periods_covering(dt.date(2017, 1, 1), today, kind, organization.fiscal_year_start_month)
    }


def recompute_in_process(organization) -> None:
    from dashboards.services import kpi_snapshot_recompute

    kpi_snapshot_recompute(organization=organization)


def snapshot_values(connection: psycopg.Connection, organization_id: int) -> dict:
    """Map (grain, period kind, period start) to (id, won count, won amount, open count, computed_at)."""
    rows = connection.execute(
        "SELECT grain, period_kind, period_start, id, won_count, won_amount, open_count, computed_at"
        " FROM dashboards_kpisnapshot WHERE organization_id = %s",
        [organization_id],
    ).fetchall()
    return {(grain, kind, start): tuple(values) for grain, kind, start, *values in rows}


def values_without_time(snapshots: dict) -> dict:
    return {key: tuple(values[:-1]) for key, values in snapshots.items()}


def deal_won_on_february_21(deal, won_stage) -> None:
    with scopes_disabled():
        deal.status, deal.stage, deal.closed_at = DealStatus.WON, won_stage, utc(2017, 2, 21)
        deal.save(update_fields=["status", "stage", "closed_at"])


FEBRUARY_ORGANIZATION = ("organization", "month", dt.date(2017, 2, 1))


# --- 1. SIGKILL during a KPI recompute -------------------------------------------------------------


def test_killed_recompute_keeps_old_rows_then_reruns(private_db, workers):
    organization, _admin, open_deal, won_stage = organization_with_deals("faults-recompute")
    recompute_in_process(organization)
    observer = private_db.connect()
    old = snapshot_values(observer, organization.pk)
    deal_won_on_february_21(open_deal, won_stage)

    # Hold a lock on one rep row: the worker writes the organization grain, then waits on the rep grain.
    blocker = private_db.connect(autocommit=False)
    blocker.execute(
        "SELECT id FROM dashboards_kpisnapshot WHERE organization_id = %s AND grain = 'rep' AND period_kind = 'month'"
        " AND period_start = '2017-02-01' FOR UPDATE",
        [organization.pk],
    )
    worker = workers.start()
    result = workers.send("dashboards.tasks.kpi_snapshot_recompute", organization_id=organization.pk)
    sent_at = time.monotonic()
    wait_until(lambda: backends_waiting(observer, "transactionid"), "the recompute to wait on the locked row")
    during = snapshot_values(observer, organization.pk)

    worker.kill()
    worker.wait()
    blocker.rollback()
    wait_until(lambda: backends_busy(observer) == 0, "the killed worker's session to end")
    after_kill = snapshot_values(observer, organization.pk)
    # Redis hands the unacknowledged task to a worker that starts once the visibility timeout has passed.
    time.sleep(max(0.0, sent_at + VISIBILITY_TIMEOUT_SECONDS + 0.5 - time.monotonic()))
    workers.start()
    result.get(timeout=WAIT_TIMEOUT_SECONDS)
    new = snapshot_values(observer, organization.pk)

    assert old.keys() == keys_while_open(organization)
    assert during == old
    assert after_kill == old
    assert old[FEBRUARY_ORGANIZATION][1:4] == (1, Decimal("1000.00"), 1)
    assert new[FEBRUARY_ORGANIZATION][1:4] == (2, Decimal("1750.25"), 0)
    assert len({values[-1] for values in new.values()}) == 1
    # With D won on 21 February nothing is open after it: only January, February, Q1 and FY2017 keep rows.
    assert new.keys() == {
        (grain, kind, start)
        for grain in ("organization", "rep")
        for kind, start in (
            ("month", dt.date(2017, 1, 1)),
            ("month", dt.date(2017, 2, 1)),
            ("quarter", dt.date(2017, 1, 1)),
            ("year", dt.date(2017, 1, 1)),
        )
    }


# --- 2. SIGKILL during an import -------------------------------------------------------------------

IMPORT_HEADER = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
)
IMPORT_FIRST = IMPORT_HEADER + (
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.000,00;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
)
# Deal 12 gets a new amount and deal 14 is new.
IMPORT_SECOND = IMPORT_HEADER + (
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.500,00;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
    "14;Wärmepumpe Kühn;900,00;Angebot;Jörg Weiß;open;;;04.02.2025 09:00;31.05.2025\n"
)


def import_run_prepared(organization, admin, content: str, status: str) -> ImportRun:
    """An ImportRun of a Pipedrive CSV in `status`, with its file stored under MEDIA_ROOT."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from pipelines.services_imports import import_run_create

    with scopes_disabled():
        run = import_run_create(
            organization=organization,
            source=ImportSource.PIPEDRIVE,
            files=[SimpleUploadedFile("deals.csv", content.encode("cp1252"))],
            actor=admin.user,
            language="en",
        )
        ImportRun.objects.filter(pk=run.pk).update(status=status)
        run.refresh_from_db()
    return run


def deal_amounts(organization) -> dict[str, Decimal]:
    """Map the external id of each imported deal to its amount."""
    with scopes_disabled():
        deals = Deal.objects.filter(organization=organization, source=ImportSource.PIPEDRIVE)
        return dict(deals.values_list("external_id", "amount"))


def run_state(run: ImportRun) -> tuple[str, str]:
    """Return the stored (status, task id) of `run`."""
    run.refresh_from_db(fields=["status", "task_id"])
    return run.status, run.task_id


def import_in_process(organization, admin, content: str) -> None:
    from pipelines.services_imports import import_run_execute

    run = import_run_prepared(organization, admin, content, ImportRunStatus.QUEUED)
    with scopes_disabled():
        assert import_run_execute(run=run, dry_run=False).status == ImportRunStatus.SUCCEEDED


def test_killed_import_keeps_previous_data_then_reruns(private_db, workers):
    organization, admin, _open_deal, _won = organization_with_deals("faults-import")
    import_in_process(organization, admin, IMPORT_FIRST)
    previous = deal_amounts(organization)
    run = import_run_prepared(organization, admin, IMPORT_SECOND, ImportRunStatus.QUEUED)
    observer = private_db.connect()
    with scopes_disabled():
        locked_id = Deal.objects.get(organization=organization, source=ImportSource.PIPEDRIVE, external_id="12").pk
    blocker = private_db.connect(autocommit=False)
    blocker.execute("SELECT id FROM pipelines_deal WHERE id = %s FOR UPDATE", [locked_id])

    # A prefork worker: SIGKILL of its pool process makes the main process reject the task, which requeues it.
    worker = workers.start(pool="prefork", concurrency=1)
    result = workers.send(
        "pipelines.tasks.import_run_execute", organization_id=organization.pk, import_run_id=run.pk, dry_run=False
    )
    wait_until(lambda: backends_waiting(observer, "transactionid"), "the import to wait on the locked deal")
    during = deal_amounts(organization)
    pool_process = int(subprocess.check_output(["pgrep", "-P", str(worker.pid)], text=True).split()[0])
    os.kill(pool_process, signal.SIGKILL)
    wait_until(lambda: "WorkerLostError" in Path(worker.log_path).read_text(errors="replace"), "the worker to see its pool process die")
    after_kill = deal_amounts(organization)
    blocker.rollback()
    # The lost pool process may have stored a failure under the task id, so the run's row, not the result, is checked.
    wait_until(lambda: run_state(run)[0] == ImportRunStatus.SUCCEEDED, "the requeued import")

    assert previous == {"11": Decimal("1234.56"), "12": Decimal("2000.00")}
    assert during == previous
    assert after_kill == previous
    assert deal_amounts(organization) == {"11": Decimal("1234.56"), "12": Decimal("2500.00"), "14": Decimal("900.00")}
    assert run_state(run)[1] == result.id


# --- 3. A task delivered twice ---------------------------------------------------------------------


def test_recompute_delivered_twice_concurrently_leaves_same_rows(private_db, workers):
    from dashboards.services import _LOCK_KEY_BASE

    organization, _admin, open_deal, won_stage = organization_with_deals("faults-twice")
    deal_won_on_february_21(open_deal, won_stage)
    recompute_in_process(organization)
    observer = private_db.connect()
    expected = values_without_time(snapshot_values(observer, organization.pk))

    # Both deliveries wait on the recompute's advisory lock until the test releases it.
    blocker = private_db.connect(autocommit=False)
    blocker.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY_BASE + organization.pk])
    workers.start(pool="prefork", concurrency=2)
    first = workers.send("dashboards.tasks.kpi_snapshot_recompute", organization_id=organization.pk)
    second = workers.send("dashboards.tasks.kpi_snapshot_recompute", organization_id=organization.pk)
    wait_until(lambda: backends_waiting(observer, "advisory") == 2, "both deliveries to wait on the lock")
    blocker.rollback()
    first_summary = first.get(timeout=WAIT_TIMEOUT_SECONDS)
    second_summary = second.get(timeout=WAIT_TIMEOUT_SECONDS)

    assert first_summary["rows_written"] == 8
    assert second_summary["rows_written"] == 8
    assert first_summary["rows_deleted"] == 0
    assert second_summary["rows_deleted"] == 0
    assert values_without_time(snapshot_values(observer, organization.pk)) == expected


def test_import_delivered_twice_changes_nothing_second_time(private_db, workers):
    organization, admin, _open_deal, _won = organization_with_deals("faults-import-twice")
    run = import_run_prepared(organization, admin, IMPORT_FIRST, ImportRunStatus.QUEUED)
    workers.start()
    arguments = {"organization_id": organization.pk, "import_run_id": run.pk, "dry_run": False}

    first = workers.send("pipelines.tasks.import_run_execute", **arguments).get(timeout=WAIT_TIMEOUT_SECONDS)
    run.refresh_from_db()
    first_state = (run.status, run.summary, run.finished_at, deal_amounts(organization))
    second = workers.send("pipelines.tasks.import_run_execute", **arguments).get(timeout=WAIT_TIMEOUT_SECONDS)
    run.refresh_from_db()

    assert first == ImportRunStatus.SUCCEEDED
    assert second == ImportRunStatus.SUCCEEDED
    assert first_state[1]["counts"]["deals"]["created"] == 2
    assert (run.status, run.summary, run.finished_at, deal_amounts(organization)) == first_state


# --- 4 and 5. Redis down and a PostgreSQL restart, seen through gunicorn ---------------------------


class Gunicorn:
    """One `gunicorn spm.wsgi` with one sync worker on a free loopback port, logged in through a session cookie."""

    def __init__(self, environment: dict, log_path: Path):
        self.port = free_port()
        command = [
            sys.executable, "-m", "gunicorn", "spm.wsgi:application", f"--bind=127.0.0.1:{self.port}",
            "--workers=1", "--timeout=60", "--access-logfile=-",
        ]  # fmt: skip
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT)
        wait_until(self._answers, f"gunicorn on port {self.port}", START_TIMEOUT_SECONDS)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        return sorted(int(pid) for pid in subprocess.check_output(["pgrep", "-P", str(self.process.pid)], text=True).split())

    def request(self, path: str, session_key: str, data: dict | None = None, language: str = "en", cookies: str = ""):
        """Send GET (or POST with `data`) and return (status, body); CSRF is satisfied with a fixed token pair.

        `cookies` ("name=value; ...") are sent besides the session and CSRF cookies.
        """
        cookie = f"sessionid={session_key}; csrftoken={CSRF_TOKEN}" + (f"; {cookies}" if cookies else "")
        headers = {"Cookie": cookie, "Accept-Language": language}
        body = None
        if data is not None:
            from urllib.parse import urlencode

            body = urlencode({**data, "csrfmiddlewaretoken": CSRF_TOKEN}).encode()
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{self.port}/"})
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, headers=headers)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> None:
        stop_process(self.process)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


CSRF_TOKEN = "f" * 32


def session_for(user) -> str:
    """Create a logged-in database session for `user` and return its key."""
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


@pytest.fixture
def gunicorn(private_db, private_redis, settings, tmp_path):
    environment = service_environment(
        private_db, private_redis, settings.MEDIA_ROOT, CONN_MAX_AGE="600", SECRET_KEY=settings.SECRET_KEY
    )
    server = Gunicorn(environment, tmp_path / "gunicorn.log")
    yield server
    server.stop()


def response_containing(response: tuple[int, str], text: str) -> tuple[int, str] | None:
    """Return the (status, body) pair when the body contains `text`, else None."""
    return response if text in response[1] else None


OUT_OF_DATE_EN = "The background service is unavailable, so the numbers may be out of date."
OUT_OF_DATE_DE = "Der Hintergrunddienst ist nicht erreichbar, daher sind die Zahlen möglicherweise nicht aktuell."


def test_redis_down_dashboard_renders_and_write_is_refused(private_db, private_redis, gunicorn):
    organization, admin, _open_deal, _won = organization_with_deals("faults-redis")
    recompute_in_process(organization)
    run = import_run_prepared(organization, admin, IMPORT_FIRST, ImportRunStatus.PREVIEWED)
    session_key = session_for(admin.user)
    dashboard = f"/o/{organization.slug}/dashboard/"
    healthy_status, healthy_page = gunicorn.request(dashboard, session_key)

    private_redis.stop()
    try:
        # Each web process reuses its last broker check for a few seconds (spm.middleware).
        english_status, english_page = wait_until(
            lambda: response_containing(gunicorn.request(dashboard, session_key), OUT_OF_DATE_EN), "the out-of-date warning"
        )
        german_status, german_page = gunicorn.request(dashboard, session_key, language="de")
        start_status, start_page = gunicorn.request(f"/o/{organization.slug}/imports/{run.pk}/", session_key, data={"action": "start"})
        run.refresh_from_db()
    finally:
        private_redis.start()

    assert healthy_status == 200
    assert OUT_OF_DATE_EN not in healthy_page
    assert english_status == 200
    assert OUT_OF_DATE_EN in english_page
    assert "Faults-Redis" in english_page
    assert german_status == 200
    assert OUT_OF_DATE_DE in german_page
    assert start_status == 503
    assert "could not be queued" in start_page
    assert run.status == ImportRunStatus.PREVIEWED


def upload_through(gunicorn: Gunicorn, path: str, session_key: str, file_name: str, content: bytes) -> tuple[int, str]:
    """POST `content` as the multipart field `file` named `file_name`; return the status and the cookies set.

    The cookies are returned as "name=value; ...", so a next request can send the messages cookie on.
    """
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{CSRF_TOKEN}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n"
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {
        "Cookie": f"sessionid={session_key}; csrftoken={CSRF_TOKEN}",
        "Accept-Language": "en",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Referer": f"http://127.0.0.1:{gunicorn.port}/",
    }
    request = urllib.request.Request(f"http://127.0.0.1:{gunicorn.port}{path}", data=body, headers=headers)
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    cookies = [header.split(";", 1)[0] for header in headers.get_all("Set-Cookie") or []]
    return status, "; ".join(cookies)


DEFERRED_EN = "Your change is saved. The background service is unavailable, so the figures are updated within an hour"


def deferred_at(organization) -> dt.datetime | None:
    from spm.models import Organization

    return Organization.objects.values_list("kpi_recompute_deferred_at", flat=True).get(pk=organization.pk)


def test_redis_down_saved_change_recomputed_later(private_db, private_redis, gunicorn, workers):
    organization, admin, _open_deal, _won = organization_with_deals("faults-deferred")
    with scopes_disabled():
        Deal.objects.filter(organization=organization, status=DealStatus.WON).update(currency="USD", base_amount=None)
    recompute_in_process(organization)
    observer = private_db.connect()
    before = snapshot_values(observer, organization.pk)
    session_key = session_for(admin.user)
    imports = f"/o/{organization.slug}/imports/"

    private_redis.stop()
    try:
        upload_status, cookies = upload_through(
            gunicorn, f"{imports}rates/", session_key, "rates.csv", b"currency,date,rate\nUSD,2017-01-01,0.5\n"
        )
        page_status, page = gunicorn.request(imports, session_key, cookies=cookies)
    finally:
        private_redis.start()
    marked = deferred_at(organization)
    stale = snapshot_values(observer, organization.pk)

    # kombu keeps its connection pools per broker URL for the whole process, and the restart closed their connections.
    kombu_pools.reset()
    workers.start()
    enqueued = workers.send("dashboards.tasks.kpi_snapshot_recompute_pending_schedule").get(timeout=WAIT_TIMEOUT_SECONDS)
    wait_until(lambda: deferred_at(organization) is None, "the pending recompute to clear the mark")
    after = snapshot_values(observer, organization.pk)

    assert upload_status == 302
    assert page_status == 200
    assert DEFERRED_EN in page
    assert marked is not None
    assert stale == before
    # Without a rate the USD deal has no amount in the base currency, so it adds nothing to the won amount.
    assert before[FEBRUARY_ORGANIZATION][1:3] == (1, Decimal("0.00"))
    assert enqueued == 1
    assert after[FEBRUARY_ORGANIZATION][1:3] == (1, Decimal("500.00"))


def test_postgresql_restart_survived_without_process_restart(private_db, gunicorn):
    organization, admin, _open_deal, _won = organization_with_deals("faults-restart")
    recompute_in_process(organization)
    session_key = session_for(admin.user)
    dashboard = f"/o/{organization.slug}/dashboard/"
    connections.close_all()
    before_status, _page = gunicorn.request(dashboard, session_key)
    pids_before = gunicorn.worker_pids()

    private_db.pg_ctl("restart")
    after_status, after_page = gunicorn.request(dashboard, session_key)
    again_status, _page = gunicorn.request(dashboard, session_key)

    assert before_status == 200
    assert after_status == 200
    assert "Faults-Restart" in after_page
    assert again_status == 200
    assert gunicorn.worker_pids() == pids_before
