"""Load test: 50 logged-in users browse dashboards, the leaderboard and deal lists while an import runs.

Not part of the test suite. Needs PostgreSQL on 127.0.0.1 (the --database-url
server) and Debian's `wrk`. Steps:

1. Recreate the database named in --database-url, migrate, import the Maven
   demo data (`import_crm`) and run `demo_setup --quotas`.
2. Create one database session per user: every member of the demo organization,
   plus extra admins `load-NN@demo.example` until there are --users. Sessions
   are written directly (no login requests), so the test measures browsing only.
3. Start gunicorn with --workers sync workers on 127.0.0.1 with DEBUG=0.
4. Start `import_crm` on a copy of the Maven files in which every fifth deal
   has a changed close value, then run wrk with one connection per user for
   --duration seconds. Managers and admins rotate through the dashboard,
   leaderboard and deal list, reps through /me/, the leaderboard and the deal list.
5. Print p50/p95/p99, the request count and every non-200 response or socket
   error, and append a section to docs/benchmarks.md (--no-report skips it).

Everything started here is stopped at the end; --keep-database keeps the data.
"""

import argparse
import csv
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LUA_SCRIPT = Path(__file__).resolve().parent / "browse.lua"
MAVEN_FOLDER = PROJECT_ROOT / "demo" / "data" / "maven-crm"
REPORT = PROJECT_ROOT / "docs" / "benchmarks.md"
ORGANIZATION = "demo"
START_TIMEOUT_SECONDS = 60

# Runs inside `manage.py shell`: writes "<session key> <path>" lines for --users sessions.
SESSIONS_SCRIPT = """
import sys
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django_scopes import scopes_disabled
from spm.models import Membership, Organization, Role, User

users, slug, output = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with scopes_disabled():
    organization = Organization.objects.get(slug=slug)
    members = list(Membership.objects.filter(organization=organization).select_related("user").order_by("pk"))
    number = 1
    while len(members) < users:
        user, _created = User.objects.get_or_create(email=f"load-{number:02d}@{slug}.example", defaults={"name": f"Load {number:02d}"})
        member, _created = Membership.objects.get_or_create(organization=organization, user=user, defaults={"role": Role.ADMIN})
        if member not in members:
            members.append(member)
        number += 1
    lines = []
    for member in members[:users]:
        session = SessionStore()
        session[SESSION_KEY] = str(member.user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = member.user.get_session_auth_hash()
        session.create()
        first = "me/" if member.role == Role.REP else "dashboard/"
        for page in (first, "leaderboard/", "deals/"):
            lines.append(f"{session.session_key} /o/{slug}/{page}")
with open(output, "w") as handle:
    handle.write("\\n".join(lines) + "\\n")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def database_recreate(database_url: str) -> None:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def database_drop(database_url: str) -> None:
    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def manage(environment: dict, *arguments: str) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed.stdout


def maven_copy_changed(target: Path) -> int:
    """Copy the Maven files to `target` with the close value of every fifth closed deal raised by 10; return the count."""
    shutil.copytree(MAVEN_FOLDER, target)
    pipeline = target / "sales_pipeline.csv"
    with pipeline.open(newline="") as handle:
        rows = list(csv.reader(handle))
    changed = 0
    for index, row in enumerate(rows[1:]):
        if index % 5 == 0 and row[7]:
            row[7] = str(int(row[7]) + 10)
            changed += 1
    with pipeline.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return changed


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with code {process.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not listen on port {port} within {START_TIMEOUT_SECONDS} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk_result(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line.removeprefix("WRK_RESULT "))
            statuses: dict[int, int] = {}
            for status, count in result["statuses"]:
                statuses[status] = statuses.get(status, 0) + count
            result["statuses"] = statuses
            return result
    raise SystemExit(f"wrk printed no result line:\n{output}")


def machine_facts(database_url: str) -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    with psycopg.connect(database_url) as connection:
        server = connection.execute("SHOW server_version").fetchone()[0]
        deals = connection.execute("SELECT count(*) FROM pipelines_deal").fetchone()[0]
        changes = connection.execute("SELECT count(*) FROM pipelines_dealstagechange").fetchone()[0]
        snapshots = connection.execute("SELECT count(*) FROM dashboards_kpisnapshot").fetchone()[0]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cpu": f"{cpu}, {os.cpu_count()} CPUs",
        "memory": f"{memory_kb / 1024 / 1024:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": server,
        "wrk": wrk_version.split(" [")[0],
        "deals": deals,
        "stage_changes": changes,
        "snapshots": snapshots,
    }


def report_section(
    arguments, facts: dict, result: dict, import_seconds: float, changed: int, command: str, load_average: float
) -> str:
    errors = sum(result["errors"].values()) - result["errors"]["status"]
    non_200 = sum(count for status, count in result["statuses"].items() if status != 200)
    statuses = ", ".join(f"{status}: {count:,}" for status, count in sorted(result["statuses"].items()))
    seconds = result["duration_us"] / 1e6
    return textwrap.dedent(
        f"""
        ## Load test: {arguments.users} users browsing during an import

        Run on {dt.date.today().isoformat()} with `bench/load/run.py`. {arguments.users} wrk connections,
        one per logged-in user, send requests back to back for {arguments.duration} s.
        Managers and admins rotate through the dashboard, the leaderboard and the deal list,
        reps through /me/, the leaderboard and the deal list, all with default filters.
        Meanwhile `import_crm` re-imports the Maven demo data with {changed:,} changed close
        values; the import, with its KPI recompute run in-process, took {import_seconds:.1f} s from the start of the load. Web server: gunicorn with
        {arguments.workers} sync workers, DEBUG=0, CONN_MAX_AGE=600; database and web server on one machine.

        | | |
        | --- | --- |
        | machine | {facts['cpu']}, {facts['memory']} RAM; {facts['os']}; 1-minute load average {load_average:.1f} when the load started |
        | software | Python {facts['python']}, PostgreSQL {facts['postgresql']}, {facts['wrk']} |
        | data | organization `demo`: {facts['deals']:,} deals, {facts['stage_changes']:,} stage changes, {facts['snapshots']:,} KPI snapshot rows, {arguments.users} users |
        | requests | {result['requests']:,} in {seconds:.1f} s ({result['requests'] / seconds:.1f} per second) |
        | latency p50 / p95 / p99 / max | {result['p50_us'] / 1000:.0f} ms / {result['p95_us'] / 1000:.0f} ms / {result['p99_us'] / 1000:.0f} ms / {result['max_us'] / 1000:.0f} ms |
        | responses | {statuses} |
        | errors | {non_200} responses other than 200, {errors} socket errors and timeouts |

        Command: `{command}`

        Latency is wrk's, measured from the client: it includes the queueing of
        {arguments.users} connections on {arguments.workers} workers, so it is larger than the server time of one request.
        """
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/spm_load",
                        help="PostgreSQL database to recreate and fill (it is dropped first).")  # fmt: skip
    parser.add_argument("--users", type=int, default=50, help="Concurrent users, one wrk connection each.")
    parser.add_argument("--duration", type=int, default=60, help="Seconds of load.")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers.")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads.")
    parser.add_argument("--no-report", action="store_true", help="Print the results without appending to docs/benchmarks.md.")
    parser.add_argument("--keep-database", action="store_true", help="Leave the database in place at the end.")
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing; install it with `apt-get install wrk`.")
    command = " ".join(["python bench/load/run.py", *sys.argv[1:]])
    work = Path(tempfile.mkdtemp(prefix="spm-load-"))
    # DEBUG=0 serves static files from a manifest, so collectstatic writes to a folder of this run.
    (work / "load_settings.py").write_text(
        f"from spm.settings import *  # noqa: F403\nSTATIC_ROOT = {str(work / 'static')!r}\n"
    )
    environment = {
        key: value for key, value in os.environ.items()
        if key not in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER")
    }  # fmt: skip
    environment.update(
        DATABASE_URL=arguments.database_url,
        DJANGO_SETTINGS_MODULE="load_settings",
        PYTHONPATH=f"{work}{os.pathsep}{PROJECT_ROOT}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        CONN_MAX_AGE="600",
        LOG_LEVEL="WARNING",
        MEDIA_ROOT=str(work / "media"),
    )
    server = importer = None
    try:
        log(f"Recreating {arguments.database_url} and importing the demo data")
        database_recreate(arguments.database_url)
        manage(environment, "migrate", "--no-input")
        manage(environment, "collectstatic", "--no-input")
        manage(environment, "import_crm", "--org", ORGANIZATION, "--source", "maven", str(MAVEN_FOLDER), "--currency", "USD", "--create")
        manage(environment, "demo_setup", "--org", ORGANIZATION, "--quotas")
        sessions_file = work / "sessions.txt"
        manage(environment, "shell", "-c", f"import sys; sys.argv = ['', '{arguments.users}', '{ORGANIZATION}', '{sessions_file}']\n{SESSIONS_SCRIPT}")
        changed_folder = work / "maven-changed"
        changed = maven_copy_changed(changed_folder)

        port = free_port()
        log(f"Starting gunicorn with {arguments.workers} workers on 127.0.0.1:{port}")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "spm.wsgi:application", f"--bind=127.0.0.1:{port}",
             f"--workers={arguments.workers}", "--timeout=120", "--log-level=warning"],
            cwd=PROJECT_ROOT, env=environment, stdout=open(work / "gunicorn.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(port, server)
        # One short pass opens every worker's database connection and fills Django's caches.
        subprocess.run(["wrk", "-t1", f"-c{arguments.workers}", "-d3s", "-s", str(LUA_SCRIPT), f"http://127.0.0.1:{port}", "--", str(sessions_file)],
                       capture_output=True, check=True)  # fmt: skip

        log(f"Starting the import and {arguments.duration} s of load")
        # Other processes on the machine compete for the same CPUs; the report states how busy it was.
        load_average = os.getloadavg()[0]
        import_started = time.monotonic()
        importer = subprocess.Popen(
            [sys.executable, "manage.py", "import_crm", "--org", ORGANIZATION, "--source", "maven", str(changed_folder), "--currency", "USD"],
            cwd=PROJECT_ROOT, env=environment, stdout=open(work / "import.log", "wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        import_finished: list[float] = []
        watcher = threading.Thread(target=lambda: (importer.wait(), import_finished.append(time.monotonic())), daemon=True)
        watcher.start()
        load = subprocess.run(
            ["wrk", f"-t{arguments.threads}", f"-c{arguments.users}", f"-d{arguments.duration}s", "--timeout", "30s",
             "-s", str(LUA_SCRIPT), f"http://127.0.0.1:{port}", "--", str(sessions_file)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        load_seconds = time.monotonic() - import_started
        watcher.join()
        import_seconds = import_finished[0] - import_started
        if importer.returncode != 0:
            raise SystemExit(f"the import failed; see {work / 'import.log'}")
        if import_seconds > load_seconds:
            log(f"The import took {import_seconds:.1f} s, longer than the load; raise --duration to cover it")
        result = wrk_result(load.stdout)
        facts = machine_facts(arguments.database_url)
        section = report_section(arguments, facts, result, import_seconds, changed, command, load_average)
        print(load.stdout)
        print(section)
        if not arguments.no_report:
            with REPORT.open("a") as handle:
                handle.write(section)
            log(f"Appended the results to {REPORT}")
    finally:
        stop(importer)
        stop(server)
        if not arguments.keep_database:
            database_drop(arguments.database_url)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
