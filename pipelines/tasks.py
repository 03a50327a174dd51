"""Celery tasks of the pipelines app: thin wrappers around the import services."""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.db import DatabaseError, connection

from pipelines import services_imports
from pipelines.models import ImportRun, ImportRunStatus
from spm.celery import TenantTask

logger = logging.getLogger(__name__)

# Advisory lock keys share one bigint space across the database. The high 32 bits spell
# "IMP" in ASCII, apart from the KPI recompute's keys (dashboards.services).
_IMPORT_LOCK_KEY_BASE = 0x494D50 << 32


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=55 * 60, time_limit=60 * 60)
def import_run_execute(self, *, organization_id: int, import_run_id: int, dry_run: bool) -> str:
    """Run the dry run or the import of one ImportRun; see services_imports.import_run_execute.

    Not retried: the import is one transaction, so a failure changed nothing, and the run
    records it for the admin to fix the file and upload again. The task claims the run
    before it starts, so a duplicate delivery of a finished run, a delivery while another
    one runs it and a task of another id change nothing. Returns the run's status.
    """
    task_id = self.request.id or ""
    with _import_run_lock(import_run_id) as locked:
        if not locked:
            status = ImportRun.objects.values_list("status", flat=True).get(pk=import_run_id)
            logger.warning(
                "Import task skipped, another delivery is running it task_id=%s organization_id=%s import_run_id=%s status=%s",
                task_id,
                organization_id,
                import_run_id,
                status,
            )
            return status
        if not _import_run_claim(import_run_id, task_id=task_id, dry_run=dry_run):
            status = ImportRun.objects.values_list("status", flat=True).get(pk=import_run_id)
            logger.warning(
                "Import task skipped, run finished or taken by another task task_id=%s organization_id=%s "
                "import_run_id=%s status=%s",
                task_id,
                organization_id,
                import_run_id,
                status,
            )
            return status
        run = ImportRun.objects.select_related("organization", "created_by").get(pk=import_run_id)
        logger.info(
            "Import task started task_id=%s organization_id=%s import_run_id=%s dry_run=%s",
            task_id,
            organization_id,
            import_run_id,
            dry_run,
        )
        run = services_imports.import_run_execute(run=run, dry_run=dry_run)
    logger.info(
        "Import task finished task_id=%s organization_id=%s import_run_id=%s status=%s",
        task_id,
        organization_id,
        import_run_id,
        run.status,
    )
    return run.status


def _import_run_claim(import_run_id: int, *, task_id: str, dry_run: bool) -> bool:
    """Claim the run for the task `task_id` in one UPDATE; return False when it is finished or another task's.

    An import claims a QUEUED run and makes it RUNNING. A dry run claims a PREVIEWING run
    that no task has taken yet (import_run_enqueue clears the task id). A run that is
    already RUNNING or PREVIEWING under `task_id` is a redelivery of this task after its
    worker died, and runs again.
    """
    runs = ImportRun.objects.filter(pk=import_run_id)
    if dry_run:
        claimed = runs.filter(status=ImportRunStatus.PREVIEWING, task_id="").update(task_id=task_id)
        active_status = ImportRunStatus.PREVIEWING
    else:
        claimed = runs.filter(status=ImportRunStatus.QUEUED).update(status=ImportRunStatus.RUNNING, task_id=task_id)
        active_status = ImportRunStatus.RUNNING
    return bool(claimed) or (bool(task_id) and runs.filter(status=active_status, task_id=task_id).exists())


@contextmanager
def _import_run_lock(import_run_id: int) -> Iterator[bool]:
    """Hold a PostgreSQL session advisory lock on the run while the block runs; yield False when another session has it.

    Two deliveries of one message carry the same task id, so the claim cannot tell a
    redelivery after a dead worker from one that arrives while the first still runs
    (a broker visibility timeout shorter than the import). The lock can: a dead
    worker's session is gone and its lock with it. Other databases yield True.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = _IMPORT_LOCK_KEY_BASE + import_run_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError as error:
                # A lost connection took the lock with it.
                logger.warning("Import run lock not released import_run_id=%s error=%s", import_run_id, error)


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def win_model_train(self, *, organization_id: int, win_model_id: int) -> str:
    """Train one queued win-probability run and score the open deals; see pipelines.scoring.services.

    Not retried: a failure is recorded on the run and the previous model stays in use.
    Returns the run's status.
    """
    from pipelines.models import WinModel
    from pipelines.scoring.services import win_model_train as win_model_train_service

    run = WinModel.objects.select_related("organization").get(pk=win_model_id)
    WinModel.objects.filter(pk=run.pk).update(task_id=self.request.id or "")
    logger.info(
        "Win model task started task_id=%s organization_id=%s win_model_id=%s", self.request.id, organization_id, run.pk
    )
    run = win_model_train_service(run=run)
    logger.info(
        "Win model task finished task_id=%s organization_id=%s win_model_id=%s status=%s",
        self.request.id,
        organization_id,
        run.pk,
        run.status,
    )
    return run.status


@shared_task(bind=True)
def win_model_train_schedule(self) -> int:
    """Queue training and scoring for every organization with closed deals (daily beat job)."""
    from pipelines.scoring.services import win_model_train_all

    queued = win_model_train_all()
    logger.info("Win model schedule queued task_id=%s organizations=%s", self.request.id, queued)
    return queued


@shared_task(bind=True, acks_late=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def table_statistics_refresh(self, *, tables: list[str]) -> list[str]:
    """ANALYZE `tables` after a large import, so the planner's row estimates include the rows it added.

    Only the table names of pipelines.services.IMPORT_TABLES are accepted. A table the
    database user may not analyze is logged and skipped. Returns the tables analyzed.
    """
    from pipelines.services import IMPORT_TABLES

    known = {table for entity_tables in IMPORT_TABLES.values() for table in entity_tables}
    analyzed = []
    started = time.monotonic()
    for table in tables:
        if table not in known:
            logger.warning("Statistics refresh skipped unknown table task_id=%s table=%s", self.request.id, table)
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
        except DatabaseError as error:
            logger.warning("Statistics refresh failed task_id=%s table=%s error=%s", self.request.id, table, error)
            continue
        analyzed.append(table)
    logger.info(
        "Statistics refreshed task_id=%s tables=%s seconds=%.2f",
        self.request.id,
        ",".join(analyzed),
        time.monotonic() - started,
    )
    return analyzed
