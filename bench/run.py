"""Benchmark runner: measure the product on a generated tenant and write docs/benchmarks.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spm_bench python bench/run.py --size 1m
    ... python bench/run.py --size small --only recompute,engines   # a subset, no file written

Phases (each in a fresh Python process, so that its peak memory is its own):

- recompute: the product's full KPI recompute (dashboards.services.kpi_snapshot_recompute).
- engines: the same aggregates as one hand-written read-only SQL query per grain (the
  floor), in DuckDB and in pandas over the deal columns exported from PostgreSQL; checks
  that all four give the same numbers as the stored snapshot rows.
- import: `manage.py import_crm` of a generated 100,000-deal Maven folder into a new
  organization, deals per second from the importer's own duration.
- http: median and p95 of the dashboard (full page and htmx fragment) and the deal list,
  over repeated requests on one kept-open connection to gunicorn on 127.0.0.1.
- change: one deal moved to Won through `deal_move_stage`; a real Celery worker on the
  loopback Redis runs the incremental recompute; the time until the dashboard fragment
  served by gunicorn shows the changed number.

Every figure is written with the machine, the data size, the date, the load average at
the time and the command that reproduces it.
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spm.settings")

PHASES = ("recompute", "engines", "import", "http", "change")
IMPORT_DEALS = 100_000
HTTP_REQUESTS = 200
# Broker and cache of the measured servers; BENCH_REDIS_URL picks another database.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
# Shared by gunicorn and the phase process that signs the session (the auth hash uses it).
SECRET_KEY = "bench-only-" + uuid.uuid4().hex


def _setup():
    import django

    django.setup()


def _organization(size: str):
    from django_scopes import scopes_disabled

    from bench.generate import organization_slug
    from spm.models import Organization

    with scopes_disabled():
        return Organization.objects.get(slug=organization_slug(size))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


# --- phases run in a child process ---------------------------------------------------------------


def phase_recompute(size: str) -> dict:
    _setup()
    from dashboards.services import kpi_snapshot_recompute

    organization = _organization(size)
    load = _load()
    started = time.monotonic()
    result = kpi_snapshot_recompute(organization=organization)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "rows": result["rows_written"], "peak_rss_mb": _peak_rss_mb(), "load": load}


def phase_engines(size: str) -> dict:
    _setup()
    import duckdb
    from django.db import connection
    from django_scopes import scopes_disabled

    from bench import engines
    from dashboards.models import KpiSnapshot

    organization = _organization(size)
    calendar = engines.calendar_of(organization)
    load = _load()
    with connection.cursor() as cursor:
        floor = engines.floor_rows(cursor.cursor, organization.pk, calendar)

    export = Path(tempfile.mkdtemp(prefix="spm-bench-")) / "deals.csv"
    started = time.monotonic()
    with connection.cursor() as cursor, export.open("wb") as handle:
        with cursor.cursor.copy(engines.EXPORT_SQL.format(organization_id=int(organization.pk))) as copy:
            for block in copy:
                handle.write(block)
    export_seconds = time.monotonic() - started

    started = time.monotonic()
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck.execute(
        "CREATE TABLE deals AS SELECT * FROM read_csv($1, header = true, columns = {"
        "'owner_id': 'BIGINT', 'team_id': 'BIGINT', 'territory_id': 'BIGINT', 'status': 'VARCHAR',"
        " 'base_amount': 'DECIMAL(18,2)', 'created_at': 'TIMESTAMPTZ', 'closed_at': 'TIMESTAMPTZ'})",
        [str(export)],
    )
    duck_load_seconds = time.monotonic() - started
    duck_result = engines.duckdb_rows(duck, calendar)
    duck.close()

    started = time.monotonic()
    frame = engines.pandas_load(str(export))
    pandas_load_seconds = time.monotonic() - started
    pandas_result = engines.pandas_rows(frame, calendar)
    del frame
    shutil.rmtree(export.parent)

    with scopes_disabled():
        stored = {
            (s.grain, s.period_kind, s.period_start, s.subject_id): engines.Values(
                s.won_count, s.lost_count, float(s.won_amount), float(s.lost_amount), float(s.cycle_days_sum),
                None if s.cycle_days_median is None else float(s.cycle_days_median), s.open_count, float(s.open_amount),
            )
            for s in KpiSnapshot.objects.filter(organization=organization).iterator(chunk_size=5000)
        }
    checks = {
        name: engines.rows_compare(stored, result["rows"])
        for name, result in (("floor", floor), ("duckdb", duck_result), ("pandas", pandas_result))
    }
    return {
        "load": load,
        "rows": len(stored),
        "floor_seconds": sum(floor["seconds"].values()),
        "floor_by_grain": floor["seconds"],
        "export_seconds": export_seconds,
        "duckdb_load_seconds": duck_load_seconds,
        "duckdb_seconds": sum(duck_result["seconds"].values()),
        "pandas_load_seconds": pandas_load_seconds,
        "pandas_seconds": sum(pandas_result["seconds"].values()),
        "differences": {name: len(problems) for name, problems in checks.items()},
        "difference_examples": {name: problems[:5] for name, problems in checks.items()},
        "peak_rss_mb": _peak_rss_mb(),
    }


def maven_folder_write(folder: Path, deals: int, seed: int = 7, first_id: int = 0) -> None:
    """Write a Maven-format export with `deals` opportunities (sales_pipeline.csv) and its people, accounts, products.

    The opportunity ids count up from `first_id`, so a second folder can add new deals to the first one's.
    """
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    # Letters only: the importer derives each person's e-mail address from the name.
    first = ["Alma", "Bruno", "Clara", "Dario", "Emma", "Felix", "Greta", "Hanno", "Ida", "Jonas",
             "Karla", "Lenz", "Mila", "Nils", "Olga", "Paul", "Rosa", "Sven", "Tilda", "Uwe"]  # fmt: skip
    last = ["Acker", "Bauer", "Conrad", "Dorn", "Eckert", "Fink", "Graf", "Hahn", "Imhof", "Jung",
            "Kraus", "Lorenz", "Mohr", "Nagel", "Ott"]  # fmt: skip
    agents = [f"{given} {family}" for family in last for given in first]
    managers = [f"{given} {family}son" for family in last[:3] for given in first[:10]]
    offices = ["Central", "East", "West", "North", "South", "Alpine"]
    with (folder / "sales_teams.csv").open("w") as handle:
        handle.write("sales_agent,manager,regional_office\n")
        for index, agent in enumerate(agents):
            handle.write(f"{agent},{managers[index % 30]},{offices[index % len(offices)]}\n")
    with (folder / "accounts.csv").open("w") as handle:
        handle.write("account,sector,year_established,revenue,employees,office_location,subsidiary_of\n")
        for index in range(2_000):
            handle.write(f"Account {index:04d},technology,{1950 + index % 70},{100 + index}.50,{10 + index},Germany,\n")
    products = [("GTX Basic", "GTX", 550), ("GTX Pro", "GTX", 4821), ("MG Special", "MG", 55), ("GTK 500", "GTK", 26768)]
    with (folder / "products.csv").open("w") as handle:
        handle.write("product,series,sales_price\n")
        for name, series, price in products:
            handle.write(f"{name},{series},{price}\n")
    start = dt.date(2024, 1, 1)
    with (folder / "sales_pipeline.csv").open("w") as handle:
        handle.write("opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n")
        for index in range(deals):
            stage = rng.choices(("Prospecting", "Engaging", "Won", "Lost"), weights=(5, 10, 45, 40))[0]
            product = products[rng.randrange(len(products))]
            engage = start + dt.timedelta(days=rng.randrange(0, 900))
            close = engage + dt.timedelta(days=rng.randrange(1, 120))
            engage_text = "" if stage == "Prospecting" else engage.isoformat()
            close_text = close.isoformat() if stage in ("Won", "Lost") else ""
            value = str(int(product[2] * rng.uniform(0.8, 1.1))) if stage == "Won" else ("0" if stage == "Lost" else "")
            handle.write(
                f"O{first_id + index:07d},{agents[rng.randrange(300)]},{product[0]},Account {rng.randrange(2_000):04d},"
                f"{stage},{engage_text},{close_text},{value}\n"
            )


def _import_command(slug: str, folder: Path, *, create: bool) -> dict:
    """Run `manage.py import_crm` on `folder` for the organization `slug`; return its durations and peak memory."""
    command = [
        sys.executable, str(ROOT / "manage.py"), "import_crm", "--org", slug, "--source", "maven", str(folder),
        "--currency", "EUR", *(["--create"] if create else []),
    ]  # fmt: skip
    # The recompute that the import schedules goes to a queue no worker reads, and is
    # dropped afterwards, so the figure is the import alone.
    environment = {**os.environ, "CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_DEFAULT_QUEUE": f"bench-discard-{slug}"}
    started = time.monotonic()
    process = subprocess.run(
        ["/usr/bin/time", "-f", "PEAK_RSS_KB=%M", *command], env=environment, capture_output=True, text=True, cwd=ROOT
    )
    wall = time.monotonic() - started
    output = process.stdout + process.stderr
    subprocess.run(["redis-cli", "-u", REDIS_URL, "DEL", f"bench-discard-{slug}"], capture_output=True)
    if process.returncode != 0:
        return {"error": output[-3000:]}
    import_seconds = committed_seconds = tasks_sent_seconds = None
    for line in output.splitlines():
        fields = dict(re.findall(r"\b(\w+)=(\S+)", line))
        if "Import finished" in line:
            import_seconds = float(fields["seconds"])
        if "Import committed" in line:
            committed_seconds = float(fields["seconds"])
            tasks_sent_seconds = float(fields["tasks_sent_seconds"])
    peak = next((int(line.split("=")[1]) / 1024 for line in output.splitlines() if line.startswith("PEAK_RSS_KB=")), None)
    return {
        "import_seconds": import_seconds,
        "committed_seconds": committed_seconds,
        # After the commit: sending the recompute and the other scheduled tasks to the broker.
        "tasks_sent_seconds": tasks_sent_seconds,
        "command_seconds": wall,
        "peak_rss_mb": peak,
    }


def _import_run(deals: int) -> dict:
    """Import `deals` generated deals into a new organization with `manage.py import_crm --create`, then drop it.

    For the full size, a second folder of as many new deals is then imported into the
    same organization, which now exists and takes the merge path of
    pipelines.importers.bulk, and the COPY floor is measured before the drop.
    """
    folder = Path(tempfile.mkdtemp(prefix="spm-bench-maven-"))
    maven_folder_write(folder, deals)
    slug = f"bench-import-{uuid.uuid4().hex[:6]}"
    result = _import_command(slug, folder, create=True)
    shutil.rmtree(folder)
    if "error" not in result and deals >= IMPORT_DEALS:
        folder = Path(tempfile.mkdtemp(prefix="spm-bench-maven-"))
        maven_folder_write(folder, deals, seed=8, first_id=deals)
        result["existing"] = _import_command(slug, folder, create=False)
        shutil.rmtree(folder)
    _setup()
    from bench.generate import organization_drop

    if "error" not in result and deals >= IMPORT_DEALS:
        result["copy_floor"] = _copy_floor(slug)
    organization_drop(slug)
    _vacuum()
    return result


def _vacuum() -> None:
    """Vacuum the tables an import run filled and emptied, so the phases after it measure no dead rows.

    Without it, the next phases read indexes full of the dropped organization's entries
    and heap pages that index-only scans must visit again, until autovacuum comes by.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("pipelines_deal", "pipelines_dealstagechange", "pipelines_account", "spm_membership"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        # The imports also added users, stages, territories and teams. With pipelines_stage's
        # statistics still counting 6 rows instead of 62, the deal list's plan joined all
        # 4,951 memberships to the page's 50 deals: 24 ms instead of 0.6 ms per page.
        cursor.execute("ANALYZE")


def _copy_floor(slug: str) -> dict:
    """Time COPY of the first import's deals and stage changes into the same tables, and the commit.

    This is the floor of an import into an existing organization: the same number of
    rows with the same values, through the partitions' indexes and reference checks,
    with no parsing, lookup or merge. A new organization's first import builds the
    indexes after loading and can beat it. The deals get another source and the moves a time one second later, so
    no unique key collides; the moves point at the imported deals. The rows are
    deleted afterwards.
    """
    import io

    from django.db import connection, transaction
    from django_scopes import scopes_disabled

    from spm.models import Organization

    deal_columns = (
        "organization_id, source, external_id, name, owner_id, account_id, product_id, pipeline_id, stage_id,"
        " territory_id, currency, amount, base_amount, probability, status, created_at, expected_close_on,"
        " closed_at, lost_reason, deal_source, custom_fields, updated_at"
    )
    move_columns = "organization_id, deal_id, from_stage_id, to_stage_id, changed_at, is_implied"
    with scopes_disabled():
        organization_id = Organization.objects.get(slug=slug).pk
    deals, moves = io.BytesIO(), io.BytesIO()
    with connection.cursor() as cursor:
        selected = deal_columns.replace("source,", "'copy-floor',", 1)
        # The first import's deals: their ids come before the second import's.
        first_deals = f"SELECT id FROM pipelines_deal WHERE organization_id = {organization_id} ORDER BY id LIMIT {IMPORT_DEALS}"
        with cursor.cursor.copy(
            f"COPY (SELECT {selected} FROM pipelines_deal WHERE organization_id = {organization_id}"
            f" AND id IN ({first_deals})) TO STDOUT"
        ) as copy:
            for chunk in copy:
                deals.write(chunk)
        selected = move_columns.replace("changed_at", "changed_at + interval '1 second'")
        with cursor.cursor.copy(
            f"COPY (SELECT {selected} FROM pipelines_dealstagechange WHERE organization_id = {organization_id}"
            f" AND deal_id IN ({first_deals})) TO STDOUT"
        ) as copy:
            for chunk in copy:
                moves.write(chunk)

    with connection.cursor() as cursor:
        last_move_id = cursor.execute("SELECT coalesce(max(id), 0) FROM pipelines_dealstagechange").fetchone()[0]
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY pipelines_deal ({deal_columns}) FROM STDIN") as copy:
            copy.write(deals.getvalue())
        deals_seconds = time.monotonic() - started
        with cursor.cursor.copy(f"COPY pipelines_dealstagechange ({move_columns}) FROM STDIN") as copy:
            copy.write(moves.getvalue())
    seconds = time.monotonic() - started

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM pipelines_dealstagechange WHERE organization_id = %s AND id > %s", [organization_id, last_move_id]
        )
        moves_copied = cursor.rowcount
        cursor.execute("DELETE FROM pipelines_deal WHERE organization_id = %s AND source = 'copy-floor'", [organization_id])
        deals_copied = cursor.rowcount
    return {"seconds": seconds, "deals_seconds": deals_seconds, "deals": deals_copied, "moves": moves_copied}


def phase_import(size: str) -> dict:
    """Import IMPORT_DEALS deals with `manage.py import_crm` and read the importer's own duration.

    The figure is the import into a new organization (`--create`); the second import of
    as many new deals into that organization is reported beside it. A 1,000-deal import first gives the command's memory without the file: its
    peak is mostly the modules loaded at start-up, so the difference between the
    two peaks is what the 100,000 deals cost.
    """
    load = _load()
    baseline = _import_run(1_000)
    result = _import_run(IMPORT_DEALS)
    existing = result.get("existing", {})
    errors = [part["error"] for part in (baseline, result, existing) if "error" in part]
    if errors:
        return {"error": "".join(errors), "load": load}
    return {
        "load": load,
        "deals": IMPORT_DEALS,
        "import_seconds": result["import_seconds"],
        "committed_seconds": result["committed_seconds"],
        "tasks_sent_seconds": result["tasks_sent_seconds"],
        "command_seconds": result["command_seconds"],
        # From the command's start of the import to its commit.
        "deals_per_second": IMPORT_DEALS / result["committed_seconds"] if result["committed_seconds"] else None,
        "copy_floor": result["copy_floor"],
        "existing_committed_seconds": existing["committed_seconds"],
        "existing_deals_per_second": IMPORT_DEALS / existing["committed_seconds"] if existing["committed_seconds"] else None,
        "peak_rss_mb": result["peak_rss_mb"],
        "baseline_peak_rss_mb": baseline["peak_rss_mb"],
    }


class Server:
    """gunicorn (gthread, keep-alive) and optionally a Celery worker, on loopback, for one phase."""

    def __init__(self, *, with_worker: bool):
        self.with_worker = with_worker
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.environment = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.processes = []
        # A free port, so that no other server on this machine responds in our place.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def __enter__(self):
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "collectstatic", "--no-input", "-v0"],
            env=self.environment, check=True, cwd=ROOT,
        )  # fmt: skip
        self.processes.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "gunicorn", "spm.wsgi", "--bind", f"127.0.0.1:{self.port}",
                    "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--keep-alive", "30",
                ],
                env=self.environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        if self.with_worker:
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "celery", "-A", "spm", "worker", "--pool=solo", "--loglevel=WARNING",
                        f"--queues={self.queue}", f"--hostname={self.queue}@localhost",
                        "--without-gossip", "--without-mingle", "--without-heartbeat",
                    ],
                    env=self.environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        if self.with_worker:
            time.sleep(3)  # the worker connects to the broker
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        subprocess.run(["redis-cli", "-u", REDIS_URL, "DEL", self.queue], capture_output=True)


def _session_cookie(email: str) -> str:
    """A logged-in session for `email`, made the way django.contrib.auth.login stores one."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from spm.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


class Client:
    """One kept-open HTTP/1.1 connection to the local gunicorn."""

    def __init__(self, cookie: str, port: int):
        import http.client

        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = cookie

    def get(self, path: str, *, htmx: bool = False) -> tuple[int, bytes, float]:
        headers = {"Cookie": self.cookie, "Host": "127.0.0.1"}
        if htmx:
            headers["HX-Request"] = "true"
        started = time.perf_counter()
        self.connection.request("GET", path, headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started


def _quantiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "requests": len(ordered),
    }


def phase_http(size: str) -> dict:
    os.environ["SECRET_KEY"] = SECRET_KEY
    _setup()
    from bench.generate import organization_slug

    slug = organization_slug(size)
    cookie = _session_cookie(f"admin@{slug}.example")
    load = _load()
    results = {"load": load}
    with Server(with_worker=False) as server:
        client = Client(cookie, server.port)
        targets = {
            "dashboard_fragment": (f"/o/{slug}/dashboard/", True),
            "dashboard_page": (f"/o/{slug}/dashboard/", False),
            "deal_list": (f"/o/{slug}/deals/", False),
            "deal_list_page_100": (f"/o/{slug}/deals/?page=100", False),
        }
        for name, (path, htmx) in targets.items():
            status, body, _seconds = client.get(path, htmx=htmx)  # warm-up, fills the fragment cache
            if status != 200:
                raise RuntimeError(f"GET {path} returned {status}; the bench session was not accepted")
            times = []
            for _ in range(HTTP_REQUESTS if name.startswith("dashboard") else HTTP_REQUESTS // 4):
                status, body, seconds = client.get(path, htmx=htmx)
                times.append(seconds)
            results[name] = {**_quantiles(times), "status": status, "bytes": len(body)}
    results["load_after"] = _load()
    return results


def phase_change(size: str) -> dict:
    os.environ["SECRET_KEY"] = SECRET_KEY
    _setup()
    from django_scopes import scope, scopes_disabled

    from bench.generate import organization_slug
    from pipelines.models import Deal, DealStageChange, Stage
    from pipelines.services import deal_move_stage

    slug = organization_slug(size)
    organization = _organization(size)
    cookie = _session_cookie(f"admin@{slug}.example")
    results = {"load": _load(), "runs": []}
    with Server(with_worker=True) as server, scope(organization=organization):
        # This process enqueues through the same broker and queue as the server.
        from django.conf import settings

        from spm.celery import app as celery_app

        celery_app.conf.broker_url = REDIS_URL
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_default_queue = server.queue
        settings.CELERY_TASK_ALWAYS_EAGER = False

        client = Client(cookie, server.port)
        path = f"/o/{slug}/dashboard/"
        won = Stage.objects.get(organization=organization, kind="won")
        with scopes_disabled():
            last_instant = Deal.objects.filter(organization=organization).order_by("-created_at").values_list(
                "created_at", flat=True
            )[0]
        # Run 0 warms this process and the freshly started worker (connections, first query plans),
        # as the GET before each run warms the server. A running installation's worker is warm, so
        # run 0 is reported apart and left out of the median and maximum.
        for run in range(6):
            _status, before, _seconds = client.get(path, htmx=True)
            deal = (
                Deal.objects.filter(organization=organization, status="open", created_at__lt=last_instant - dt.timedelta(days=30))
                .order_by("?")
                .first()
            )
            latest = DealStageChange.objects.filter(deal=deal).order_by("-changed_at").values_list("changed_at", flat=True)[0]
            moved_at = max(latest, last_instant - dt.timedelta(hours=2)) + dt.timedelta(seconds=run + 1)
            started = time.perf_counter()
            deal_move_stage(deal=deal, to_stage=won, changed_at=moved_at)
            committed = time.perf_counter()
            seen = None
            while time.perf_counter() - started < 30:
                _status, body, _seconds = client.get(path, htmx=True)
                if body != before:
                    seen = time.perf_counter()
                    break
                time.sleep(0.01)
            measured = {
                "deal_id": deal.pk,
                "move_seconds": committed - started,
                "visible_seconds": None if seen is None else seen - started,
            }
            if run == 0:
                results["warmup"] = measured
            else:
                results["runs"].append(measured)
    visible = [run["visible_seconds"] for run in results["runs"] if run["visible_seconds"] is not None]
    results["median_seconds"] = statistics.median(visible) if visible else None
    results["max_seconds"] = max(visible) if visible else None
    results["load_after"] = _load()
    return results


# --- parent: run phases, print and write the report -----------------------------------------------


def _run_phase(phase: str, size: str) -> dict:
    process = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--size", size], capture_output=True, text=True, cwd=ROOT
    )
    for line in reversed(process.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": (process.stdout + process.stderr)[-3000:]}


def _machine() -> dict:
    _setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "postgresql": postgres,
        "python": platform.python_version(),
    }


def _data_size(size: str) -> dict:
    _setup()
    from django.db import connection

    organization = _organization(size)
    counts = {}
    with connection.cursor() as cursor:
        for name, table in (
            ("deals", "pipelines_deal"),
            ("stage changes", "pipelines_dealstagechange"),
            ("activities", "pipelines_activity"),
            ("KPI snapshot rows", "dashboards_kpisnapshot"),
        ):
            cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE organization_id = %s", [organization.pk])
            counts[name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COUNT(*) FROM spm_membership WHERE organization_id = %s AND role = 'rep'", [organization.pk]
        )
        counts["reps"] = cursor.fetchone()[0]
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1m")
    parser.add_argument("--only", default=",".join(PHASES), help="comma-separated phases: " + ", ".join(PHASES))
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--from-json", help="render a saved run (the JSON file a run leaves in /tmp) instead of measuring")
    parser.add_argument("--write", default=str(ROOT / "docs" / "benchmarks.md"), help="report file ('' to skip)")
    args = parser.parse_args(argv)

    if args.phase:
        result = globals()[f"phase_{args.phase}"](args.size)
        print("RESULT " + json.dumps(result, default=str))
        return 0

    if args.from_json:
        from bench.report import report_markdown

        report = json.loads(Path(args.from_json).read_text())
        text = report_markdown(report)
        if args.write and set(report["results"]) == set(PHASES):
            report_write(Path(args.write), text, size=report["size"])
        print(text)
        return 0

    phases = [phase for phase in args.only.split(",") if phase]
    results = {}
    for phase in phases:
        print(f"== {phase} (load {_load()})", file=sys.stderr, flush=True)
        results[phase] = _run_phase(phase, args.size)
        print(json.dumps(results[phase], indent=1, default=str), file=sys.stderr, flush=True)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": _environment_text(),
        "size": args.size,
        "machine": _machine(),
        "data": _data_size(args.size),
        "results": results,
    }
    Path(tempfile.gettempdir(), f"spm-bench-{args.size}.json").write_text(json.dumps(report, indent=1, default=str))
    from bench.report import report_markdown

    text = report_markdown(report)
    print(text)
    if args.write and set(phases) == set(PHASES):
        report_write(Path(args.write), text, size=args.size)
    return 0


def _environment_text() -> str:
    """Return the variables the report's commands need, without any password in DATABASE_URL."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(os.environ.get("DATABASE_URL", ""))
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    text = f"DATABASE_URL={urlunsplit(parts._replace(netloc=netloc))}"
    if os.environ.get("BENCH_REDIS_URL"):
        text += f" BENCH_REDIS_URL={os.environ['BENCH_REDIS_URL']}"
    return text


HEADER = "# Benchmarks\n"


def report_write(path: Path, text: str, *, size: str) -> None:
    """Replace the section of `size` in `path` (between its marks), or add it after the title; other sections stay."""
    start_mark = f"<!-- bench/run.py --size {size}: start -->"
    end_mark = f"<!-- bench/run.py --size {size}: end -->"
    section = f"{start_mark}\n{text}{end_mark}\n"
    existing = path.read_text() if path.exists() else HEADER
    if start_mark in existing and end_mark in existing:
        before, rest = existing.split(start_mark, 1)
        after = rest.split(end_mark, 1)[1].lstrip("\n")
        path.write_text(before + section + ("\n" + after if after else ""))
        return
    if not existing.startswith(HEADER):
        existing = HEADER + "\n" + existing
    title, rest = existing.split("\n", 1)
    path.write_text(f"{title}\n\n{section}\n{rest.lstrip()}")


if __name__ == "__main__":
    sys.exit(main())
