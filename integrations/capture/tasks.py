"""Celery tasks of activity capture: the beat schedulers and one poll per calendar feed or mailbox."""

import logging

from celery import shared_task
from django_scopes import scopes_disabled

from integrations.capture import services
from integrations.capture.models import CalendarFeed, Mailbox
from spm.celery import TenantTask

logger = logging.getLogger(__name__)

POLL_TASK_OPTIONS = {"base": TenantTask, "bind": True, "acks_late": True, "soft_time_limit": 5 * 60, "time_limit": 6 * 60}


@shared_task(**POLL_TASK_OPTIONS)
def calendar_feed_poll(self, *, organization_id: int, feed_id: int) -> dict | None:
    """Fetch one calendar feed and capture its meetings; returns the counts, or None when the feed failed."""
    feed = CalendarFeed.objects.select_related("member__user", "member__organization").filter(pk=feed_id).first()
    # Deleted or switched off since it was queued.
    if feed is None or not feed.is_active:
        return None
    result = services.calendar_feed_poll(feed=feed)
    logger.info(
        "Calendar feed task finished task_id=%s organization_id=%s feed_id=%s ok=%s",
        self.request.id,
        organization_id,
        feed_id,
        result is not None,
    )
    return result.as_dict() if result else None


@shared_task(**POLL_TASK_OPTIONS)
def mailbox_poll(self, *, organization_id: int, mailbox_id: int) -> dict | None:
    """Read new messages of the organization's mailbox; returns the counts, or None when the poll failed."""
    mailbox = Mailbox.objects.select_related("organization").filter(pk=mailbox_id).first()
    if mailbox is None or not mailbox.is_active:
        return None
    result = services.mailbox_poll(mailbox=mailbox)
    logger.info(
        "Mailbox task finished task_id=%s organization_id=%s mailbox_id=%s ok=%s",
        self.request.id,
        organization_id,
        mailbox_id,
        result is not None,
    )
    return result.as_dict() if result else None


@shared_task(bind=True)
def calendar_feed_poll_schedule(self) -> int:
    """Enqueue `calendar_feed_poll` for every active feed; celery beat runs it every hour. Returns the number enqueued."""
    # Cross-tenant on purpose: the scheduler only reads ids; each poll runs in its organization's scope.
    with scopes_disabled():
        feeds = list(CalendarFeed.objects.filter(is_active=True).values_list("organization_id", "pk"))
    for organization_id, feed_id in feeds:
        calendar_feed_poll.delay(organization_id=organization_id, feed_id=feed_id)
    logger.info("Calendar feed polls enqueued task_id=%s feeds=%s", self.request.id, len(feeds))
    return len(feeds)


@shared_task(bind=True)
def mailbox_poll_schedule(self) -> int:
    """Enqueue `mailbox_poll` for every active mailbox; celery beat runs it every five minutes. Returns the number enqueued."""
    # Cross-tenant on purpose, like calendar_feed_poll_schedule.
    with scopes_disabled():
        mailboxes = list(Mailbox.objects.filter(is_active=True).values_list("organization_id", "pk"))
    for organization_id, mailbox_id in mailboxes:
        mailbox_poll.delay(organization_id=organization_id, mailbox_id=mailbox_id)
    logger.info("Mailbox polls enqueued task_id=%s mailboxes=%s", self.request.id, len(mailboxes))
    return len(mailboxes)
