"""Celery tasks of the dashboards app: thin wrappers around dashboards.services."""

import datetime as dt
import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from dashboards import services
from integrations.webhooks.events import attainment_check_schedule
from spm.celery import TenantTask
from spm.models import Organization

logger = logging.getLogger(__name__)


# Options of both recompute tasks. Lost connections, deadlocks and "database is locked"
# are transient, and a retry recomputes from scratch because the recompute is idempotent.
RECOMPUTE_TASK_OPTIONS = {
    "base": TenantTask,
    "bind": True,
    "acks_late": True,
    "soft_time_limit": 15 * 60,
    "time_limit": 16 * 60,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 3,
}


@shared_task(**RECOMPUTE_TASK_OPTIONS)
def kpi_snapshot_recompute(self, *, organization_id: int) -> dict:
    """Recompute all KPI snapshot rows of one organization; see services.kpi_snapshot_recompute.

    Safe to run twice or concurrently. Callers enqueue it after their
    transaction commits: `kpi_snapshot_recompute.delay(organization_id=...)`.
    """
    organization = Organization.objects.get(pk=organization_id)
    # Read before the recompute reads any deal, so every change deferred up to this mark is included.
    deferred_at = organization.kpi_recompute_deferred_at
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
    if deferred_at is not None:
        # A deferral during the recompute wrote a later time, so its change stays pending.
        cleared = Organization.objects.filter(pk=organization_id, kpi_recompute_deferred_at=deferred_at).update(
            kpi_recompute_deferred_at=None
        )
        logger.info(
            "KPI recompute pending mark task_id=%s organization_id=%s deferred_at=%s cleared=%s",
            self.request.id,
            organization_id,
            deferred_at.isoformat(),
            bool(cleared),
        )
    attainment_check_schedule(organization_id=organization_id)
    logger.info(
        "KPI snapshot recompute task finished task_id=%s organization_id=%s rows_written=%s rows_deleted=%s",
        self.request.id,
        organization_id,
        result["rows_written"],
        result["rows_deleted"],
    )
    return result


@shared_task(**RECOMPUTE_TASK_OPTIONS)
def kpi_snapshot_recompute_deals(self, *, organization_id: int, deal_ids: list[int], since: str) -> dict:
    """Recompute the snapshot rows that a change of `deal_ids` at or after `since` (ISO 8601) touches.

    See services.kpi_snapshot_recompute_deals; idempotent like the full recompute.
    """
    organization = Organization.objects.get(pk=organization_id)
    result = services.kpi_snapshot_recompute_deals(
        organization=organization, deal_ids=deal_ids, since=dt.datetime.fromisoformat(since)
    )
    attainment_check_schedule(organization_id=organization_id)
    logger.info(
        "KPI snapshot incremental recompute task finished task_id=%s organization_id=%s mode=%s rows_written=%s",
        self.request.id,
        organization_id,
        result["mode"],
        result["rows_written"],
    )
    return result


@shared_task(**RECOMPUTE_TASK_OPTIONS)
def kpi_snapshot_calendar_extend(self, *, organization_id: int) -> dict | None:
    """Add the snapshot rows of periods begun since the last recompute; see services.kpi_snapshot_calendar_extend."""
    organization = Organization.objects.get(pk=organization_id)
    result = services.kpi_snapshot_calendar_extend(organization=organization)
    if result is not None:
        logger.info(
            "KPI snapshot calendar extended task_id=%s organization_id=%s mode=%s rows_written=%s",
            self.request.id,
            organization_id,
            result["mode"],
            result["rows_written"],
        )
    return result


@shared_task(bind=True)
def kpi_snapshot_calendar_extend_schedule(self) -> int:
    """Enqueue `kpi_snapshot_calendar_extend` for every organization; celery beat runs this every hour.

    Hourly, so that each organization's new month, quarter and year get their
    rows soon after its own local midnight. Returns the number of tasks enqueued.
    """
    organization_ids = list(Organization.objects.values_list("pk", flat=True))
    for organization_id in organization_ids:
        kpi_snapshot_calendar_extend.delay(organization_id=organization_id)
    logger.info("KPI snapshot calendar tasks enqueued task_id=%s organizations=%s", self.request.id, len(organization_ids))
    return len(organization_ids)


@shared_task(bind=True)
def kpi_snapshot_recompute_pending_schedule(self) -> int:
    """Enqueue the full recompute of every organization whose recompute could not be queued; beat runs this hourly.

    pipelines.services.kpi_recompute_defer marks such organizations while the broker is
    unreachable, and `kpi_snapshot_recompute` clears the mark. Returns the number of
    recomputes enqueued.
    """
    organization_ids = list(
        Organization.objects.filter(kpi_recompute_deferred_at__isnull=False).order_by("pk").values_list("pk", flat=True)
    )
    for organization_id in organization_ids:
        kpi_snapshot_recompute_enqueue(organization_id=organization_id)
    logger.info(
        "Pending KPI recomputes enqueued task_id=%s organizations=%s organization_ids=%s",
        self.request.id,
        len(organization_ids),
        ",".join(str(organization_id) for organization_id in organization_ids),
    )
    return len(organization_ids)


def kpi_snapshot_recompute_enqueue(*, organization_id: int) -> None:
    """Bump the organization's deal data version and enqueue its full recompute; call after the change commits.

    The bump retires the cached deal-list totals at once, before the recompute
    has run. The dashboards change when the recompute bumps the KPI data version.
    """
    services.deal_data_version_bump(organization_id=organization_id)
    kpi_snapshot_recompute.delay(organization_id=organization_id)


def kpi_snapshot_recompute_deals_enqueue(*, organization_id: int, deal_ids: list[int], since: dt.datetime) -> None:
    """Bump the deal data version and enqueue the incremental recompute of `deal_ids` from `since` on; call after commit."""
    services.deal_data_version_bump(organization_id=organization_id)
    kpi_snapshot_recompute_deals.delay(organization_id=organization_id, deal_ids=list(deal_ids), since=since.isoformat())


@shared_task(
    base=TenantTask,
    bind=True,
    acks_late=True,
    soft_time_limit=10 * 60,
    time_limit=11 * 60,
    # The insert skips rows already present, so a retry after a lost connection is safe.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=3,
)
def pipeline_snapshot_take(self, *, organization_id: int, day: str | None = None) -> int:
    """Insert the organization's pipeline snapshot of `day` (ISO date; default: its local today).

    Without `day`, returns 0 without a query on the deals when today's
    snapshot already has rows, so the hourly schedule costs one lookup per
    organization after the first run of a day.
    """
    from datetime import date

    from django.utils import timezone

    from dashboards.analytics.snapshots import snapshot_exists, snapshot_take

    organization = Organization.objects.get(pk=organization_id)
    if day is None:
        snapshot_on = timezone.localdate(timezone=organization.tzinfo)
        # Today's rows exist: the day's insert has run.
        if snapshot_exists(snapshot_on):
            return 0
    else:
        snapshot_on = date.fromisoformat(day)
    inserted = snapshot_take(organization=organization, day=snapshot_on)
    logger.info(
        "Pipeline snapshot task finished task_id=%s organization_id=%s snapshot_on=%s rows_inserted=%s",
        self.request.id,
        organization_id,
        snapshot_on.isoformat(),
        inserted,
    )
    return inserted


@shared_task(bind=True)
def pipeline_snapshot_schedule(self) -> int:
    """Enqueue `pipeline_snapshot_take` for every organization; celery beat runs this every hour.

    Hourly, so each organization gets its snapshot soon after its own local
    midnight whatever its time zone. Returns the number of tasks enqueued.
    """
    organization_ids = list(Organization.objects.values_list("pk", flat=True))
    for organization_id in organization_ids:
        pipeline_snapshot_take.delay(organization_id=organization_id)
    logger.info("Pipeline snapshot tasks enqueued task_id=%s organizations=%s", self.request.id, len(organization_ids))
    return len(organization_ids)
