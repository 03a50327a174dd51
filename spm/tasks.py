"""Celery tasks of the spm app: the nightly retention jobs (activities and the audit log)."""

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


@shared_task(base=TenantTask, bind=True, acks_late=True)
def audit_retention_apply(self, *, organization_id: int) -> int:
    """Delete one organization's audit rows older than its audit retention; see privacy.audit_retention_apply."""
    organization = Organization.objects.get(pk=organization_id)
    deleted = privacy.audit_retention_apply(organization=organization)
    logger.info(
        "Audit retention task finished task_id=%s organization_id=%s deleted=%s", self.request.id, organization_id, deleted
    )
    return deleted


@shared_task(bind=True)
def activity_retention_apply_all(self) -> int:
    """Queue the activity and audit retention tasks of every organization that set a period; beat runs it nightly.

    Returns the number of tasks queued.
    """
    # Cross-tenant scheduler: it reads only organization ids and queues one scoped task each.
    with scopes_disabled():
        activity_ids = list(Organization.objects.filter(activity_retention_days__isnull=False).values_list("pk", flat=True))
        audit_ids = list(Organization.objects.filter(audit_retention_days__isnull=False).values_list("pk", flat=True))
    for organization_id in activity_ids:
        activity_retention_apply.delay(organization_id=organization_id)
    for organization_id in audit_ids:
        audit_retention_apply.delay(organization_id=organization_id)
    logger.info(
        "Retention queued task_id=%s activity_organizations=%s audit_organizations=%s",
        self.request.id,
        len(activity_ids),
        len(audit_ids),
    )
    return len(activity_ids) + len(audit_ids)
