"""Celery tasks of the pipelines app: thin wrappers around the import services."""

import logging
import time

from celery import shared_task
from django.db import DatabaseError, connection

from pipelines import services_imports
from pipelines.models import ImportRun, ImportRunStatus
from spm.celery import TenantTask

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=55 * 60, time_limit=60 * 60)
def import_run_execute(self, *, organization_id: int, import_run_id: int, dry_run: bool) -> str:
    """Run the dry run or the import of one ImportRun; see services_imports.import_run_execute.

    Not retried: the import is one transaction, so a failure changed nothing, and the run
    records it for the admin to fix the file and upload again. A duplicate delivery of a
    finished run changes nothing. Returns the run's status.
    """
    run = ImportRun.objects.select_related("organization", "created_by").get(pk=import_run_id)
    # A second delivery of a finished run (the broker redelivers when the ack was lost)
    # would import again and overwrite the run's summary; only a queued run, or one whose
    # worker died while it ran (RUNNING, PREVIEWING), is executed.
    # NOTE: two deliveries running at the same time both pass this check and both import;
    # that needs a broker visibility timeout shorter than the import (see settings).
    expected = (ImportRunStatus.PREVIEWING,) if dry_run else (ImportRunStatus.QUEUED, ImportRunStatus.RUNNING)
    if run.status not in expected:
        logger.warning(
            "Import task skipped, run already finished task_id=%s organization_id=%s import_run_id=%s status=%s",
            self.request.id,
            organization_id,
            import_run_id,
            run.status,
        )
        return run.status
    ImportRun.objects.filter(pk=run.pk).update(task_id=self.request.id or "")
    logger.info(
        "Import task started task_id=%s organization_id=%s import_run_id=%s dry_run=%s",
        self.request.id,
        organization_id,
        import_run_id,
        dry_run,
    )
    run = services_imports.import_run_execute(run=run, dry_run=dry_run)
    logger.info(
        "Import task finished task_id=%s organization_id=%s import_run_id=%s status=%s",
        self.request.id,
        organization_id,
        import_run_id,
        run.status,
    )
    return run.status


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
