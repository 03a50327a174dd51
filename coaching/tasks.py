"""Celery tasks of the coaching app: the weekly digest e-mail."""

import datetime as dt
import logging

from celery import shared_task
from django.utils import timezone

from coaching.digest import digest_send_week, is_send_time
from spm.celery import TenantTask
from spm.models import Organization

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, bind=True, acks_late=True)
def weekly_digest_send(self, *, organization_id: int, now: str | None = None) -> int:
    """Send this week's digest to every manager and rep of one organization who has not had it yet.

    `now` (ISO 8601, default the current time) fixes the week; a rerun in the
    same week sends nothing twice. Returns the number of e-mails sent.
    """
    moment = dt.datetime.fromisoformat(now) if now else timezone.now()
    organization = Organization.objects.get(pk=organization_id)
    sent = digest_send_week(organization=organization, now=moment)
    logger.info("Weekly digest task finished task_id=%s organization_id=%s sent=%s", self.request.id, organization_id, sent)
    return sent


@shared_task(bind=True)
def weekly_digest_schedule(self, now: str | None = None) -> int:
    """Queue `weekly_digest_send` for every organization where it is Monday, 07:00 or later, local time.

    Celery beat runs this every hour, so each organization gets its digest
    soon after 07:00 in its own time zone, and the later runs on that Monday
    only retry recipients whose send failed. Returns the number of tasks queued.
    """
    moment = dt.datetime.fromisoformat(now) if now else timezone.now()
    # Organization is the tenant itself and not scoped; this reads only ids and time zones.
    organizations = list(Organization.objects.only("pk", "time_zone"))
    due = [organization.pk for organization in organizations if is_send_time(organization, moment)]
    for organization_id in due:
        weekly_digest_send.delay(organization_id=organization_id, now=moment.isoformat())
    logger.info("Weekly digest tasks queued task_id=%s organizations=%s", self.request.id, len(due))
    return len(due)
