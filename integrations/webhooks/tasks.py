"""Celery task of the webhooks app: one delivery attempt, re-enqueued with a countdown while it may retry."""

import logging

from celery import shared_task

from integrations.webhooks import services
from integrations.webhooks.models import WebhookDelivery
from spm.celery import TenantTask

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=60, time_limit=90)
def webhook_deliver(self, *, organization_id: int, delivery_id: int) -> str:
    """Make the next attempt of a delivery and schedule the one after it; return the delivery's status.

    The retry is a new task with a countdown rather than Celery's retry, so the delay comes
    from `services.retry_delay_seconds` and is stored on the attempt row. In eager mode
    (no broker) the countdown is ignored and the attempts run back to back.
    """
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    # Deleted together with its webhook after the task was queued.
    if delivery is None:
        return "missing"
    retry_in = services.delivery_attempt(delivery=delivery)
    if retry_in is not None:
        webhook_deliver.apply_async(
            kwargs={"organization_id": organization_id, "delivery_id": delivery_id}, countdown=retry_in
        )
    logger.info(
        "Webhook delivery task finished task_id=%s organization_id=%s delivery_id=%s status=%s",
        self.request.id,
        organization_id,
        delivery_id,
        delivery.status,
    )
    return delivery.status


@shared_task(base=TenantTask, bind=True, acks_late=True, soft_time_limit=5 * 60, time_limit=6 * 60)
def attainment_levels_check(self, *, organization_id: int) -> int:
    """Emit quota.attainment_crossed for subjects that rose past a threshold; see webhooks.attainment."""
    from integrations.webhooks.attainment import attainment_levels_check as check
    from spm.models import Organization

    organization = Organization.objects.get(pk=organization_id)
    emitted = check(organization=organization)
    logger.info(
        "Attainment check task finished task_id=%s organization_id=%s events=%s", self.request.id, organization_id, emitted
    )
    return emitted
