"""Celery tasks of the goals app: the forecast snapshots at each period's horizons."""

import logging

from celery import shared_task
from django.db import OperationalError

from goals.forecasts.categories import forecast_period_kind
from goals.forecasts.snapshots import forecast_snapshots_due_record
from spm.celery import TenantTask
from spm.models import Organization

logger = logging.getLogger(__name__)


@shared_task(
    base=TenantTask,
    bind=True,
    acks_late=True,
    soft_time_limit=10 * 60,
    time_limit=11 * 60,
    # Rows are inserted once per key and existing keys are skipped, so a retry is safe.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=3,
)
def forecast_snapshot_take(self, *, organization_id: int) -> int:
    """Record the organization's forecast snapshots whose horizon has come; return the rows inserted.

    After the first run of a horizon this costs one existence check per horizon.
    """
    organization = Organization.objects.get(pk=organization_id)
    inserted = forecast_snapshots_due_record(organization=organization, kind=forecast_period_kind(organization))
    logger.info(
        "Forecast snapshot task finished task_id=%s organization_id=%s rows_inserted=%s",
        self.request.id,
        organization_id,
        inserted,
    )
    return inserted


@shared_task(bind=True)
def forecast_snapshot_schedule(self) -> int:
    """Enqueue `forecast_snapshot_take` for every organization; celery beat runs this every hour.

    Hourly, so a horizon's snapshot is recorded within an hour of its local midnight
    whatever the organization's time zone. Returns the number of tasks enqueued.
    """
    organization_ids = list(Organization.objects.values_list("pk", flat=True))
    for organization_id in organization_ids:
        forecast_snapshot_take.delay(organization_id=organization_id)
    logger.info("Forecast snapshot tasks enqueued task_id=%s organizations=%s", self.request.id, len(organization_ids))
    return len(organization_ids)
