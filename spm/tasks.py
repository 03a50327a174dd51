"""Celery tasks of the spm app: the nightly retention job."""

import logging

from celery import shared_task
from django_scopes import scopes_disabled

from spm import privacy
from spm.celery import TenantTask
from spm.models import Organization

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, acks_late=True)
def activity_retention_apply(self, *, organization_id: int) -> int:
    """Delete one organization's activities older than its retention; see privacy.activity_retention_apply."""
    organization = Organization.objects.get(pk=organization_id)
    deleted = privacy.activity_retention_apply(organization=organization)
    logger.info(
        "Activity retention task finished task_id=%s organization_id=%s deleted=%s", self.request.id, organization_id, deleted
    )
    return deleted


@shared_task(bind=True)
def activity_retention_apply_all(self) -> int:
    """Queue `activity_retention_apply` for every organization with a retention period; celery beat runs it nightly.

    Returns the number of organizations queued.
    """
    # Cross-tenant scheduler: it reads only organization ids and queues one scoped task each.
    with scopes_disabled():
        organization_ids = list(
            Organization.objects.filter(activity_retention_days__isnull=False).values_list("pk", flat=True)
        )
    for organization_id in organization_ids:
        activity_retention_apply.delay(organization_id=organization_id)
    logger.info("Activity retention queued task_id=%s organizations=%s", self.request.id, len(organization_ids))
    return len(organization_ids)
