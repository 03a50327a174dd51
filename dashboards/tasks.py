"""Celery tasks of the dashboards app: thin wrappers around dashboards.services."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from dashboards import services
from spm.celery import TenantTask
from spm.models import Organization

logger = logging.getLogger(__name__)


@shared_task(
    base=TenantTask,
    bind=True,
    acks_late=True,
    soft_time_limit=15 * 60,
    time_limit=16 * 60,
    # Lost connections, deadlocks and "database is locked" are transient; a retry
    # recomputes from scratch because the recompute is idempotent.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=3,
)
def kpi_snapshot_recompute(self, *, organization_id: int) -> dict:
    """Recompute all KPI snapshot rows of one organization; see services.kpi_snapshot_recompute.

    Safe to run twice or concurrently. Callers enqueue it after their
    transaction commits: `kpi_snapshot_recompute.delay(organization_id=...)`.
    """
    organization = Organization.objects.get(pk=organization_id)
    logger.info("KPI snapshot recompute task started task_id=%s organization_id=%s", self.request.id, organization_id)
    try:
        result = services.kpi_snapshot_recompute(organization=organization)
    except SoftTimeLimitExceeded:
        # The transaction was rolled back, so the previous rows are still in place.
        logger.warning(
            "KPI snapshot recompute hit the soft time limit task_id=%s organization_id=%s",
            self.request.id,
            organization_id,
        )
        raise
    logger.info(
        "KPI snapshot recompute task finished task_id=%s organization_id=%s rows_written=%s rows_deleted=%s",
        self.request.id,
        organization_id,
        result["rows_written"],
        result["rows_deleted"],
    )
    return result
