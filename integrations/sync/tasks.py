"""Celery tasks of the CRM sync: the 15-minute schedule and one run of one connection."""

import logging

from celery import shared_task

from integrations.sync import services
from integrations.sync.models import CrmSyncRun, SyncStatus
from spm.celery import TenantTask

logger = logging.getLogger(__name__)


@shared_task(bind=True)
def crm_sync_schedule(self) -> int:
    """Queue a sync run for every enabled connection; celery beat runs this every 15 minutes.

    A connection whose previous run is still queued or running is skipped. Returns the
    number of runs queued.
    """
    queued = services.crm_sync_schedule_all()
    logger.info("CRM sync runs queued task_id=%s runs=%s", self.request.id, queued)
    return queued


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=25 * 60, time_limit=30 * 60)
def crm_sync_run(self, *, organization_id: int, run_id: int) -> str:
    """Run one queued sync run; see services.crm_sync_run. Returns the run's status.

    Not retried by Celery: a failed run records its error, and the next scheduled run
    starts from the same cursor. A second delivery of a finished run does nothing.
    """
    run = CrmSyncRun.objects.select_related("connection", "connection__organization").filter(pk=run_id).first()
    # The connection, and its runs with it, was removed while the run waited in the queue.
    if run is None:
        logger.warning(
            "CRM sync task skipped, run not found task_id=%s organization_id=%s run_id=%s",
            self.request.id,
            organization_id,
            run_id,
        )
        return "missing"
    # A redelivered message of a finished run must not import again under that run's name.
    if run.status not in (SyncStatus.QUEUED, SyncStatus.RUNNING):
        logger.warning(
            "CRM sync task skipped, run already finished task_id=%s organization_id=%s run_id=%s status=%s",
            self.request.id,
            organization_id,
            run_id,
            run.status,
        )
        return run.status
    CrmSyncRun.objects.filter(pk=run.pk).update(task_id=self.request.id or "")
    run = services.crm_sync_run(run=run)
    return run.status
