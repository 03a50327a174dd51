"""Writes of activity capture: meetings from calendars and messages from the mailbox become activities.

Both paths match the people involved to an account through AccountDomain, pick the open
deal with `matching.deal_for`, and upsert Activity rows by (source, external id) with the
importers' `bulk_upsert`, so reading the same calendar or message again changes nothing.
Captured activities carry `is_captured=True`. Meetings are keyed by the member, the UID and
the RECURRENCE-ID of the occurrence, and e-mails by their Message-ID.
"""

import datetime as dt
import hashlib
import logging
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone, translation
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from integrations.capture import ics
from integrations.capture.matching import AccountMatcher, deal_for, domain_of
from integrations.capture.models import AccountDomain, CalendarFeed, Mailbox
from integrations.webhooks import outbound
from pipelines.importers.base import bulk_upsert, fetch_by_keys
from pipelines.models import Account, Activity, ActivityKind
from spm.audit import audit_record
from spm.models import Membership, Organization, User

logger = logging.getLogger(__name__)

CALENDAR_SOURCE = "calendar"
EMAIL_SOURCE = "email"
# Meetings this far back and ahead of now are read from a calendar; older ones are left alone.
CALENDAR_PAST_DAYS = 180
CALENDAR_FUTURE_DAYS = 60
CALENDAR_MAX_BYTES = 5 * 1024 * 1024
CALENDAR_FETCH_TIMEOUT_SECONDS = 20
EXTERNAL_ID_MAX_LENGTH = 200


@dataclass
class CaptureResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Read, but no attendee or correspondent belongs to a known account.
    unmatched: int = 0
    # Read, but no member of the organization sent or received it (e-mail only).
    without_member: int = 0
    # Read, but older than the organization's activity retention (e-mail only; calendars are not read that far back).
    too_old: int = 0
    # Calendar events left out by the expansion limits of ics.calendar_parse, one message each.
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the counts, with `skipped` only when an event was skipped."""
        counts = asdict(self)
        if not counts["skipped"]:
            del counts["skipped"]
        return counts


def _external_id(*parts: str) -> str:
    """Join `parts` with ":"; a key longer than the column is replaced by a SHA-256 digest of it."""
    key = ":".join(parts)
    if len(key) <= EXTERNAL_ID_MAX_LENGTH:
        return key
    return f"{parts[0]}:sha256:{hashlib.sha256(key.encode('utf-8')).hexdigest()}"


def _activities_upsert(organization: Organization, source: str, desired: dict[str, dict], result: CaptureResult) -> None:
    if not desired:
        return
    outcome = bulk_upsert(
        model=Activity,
        existing=fetch_by_keys(Activity.objects.filter(organization=organization, source=source), "external_id", desired),
        desired=desired,
        build=lambda key, values: Activity(organization=organization, source=source, external_id=key, **values),
    )
    result.created += len(outcome.created)
    result.updated += len(outcome.updated)
    result.unchanged += len(outcome.unchanged)


class _DealCache:
    def __init__(self):
        self.deals = {}

    def get(self, account: Account, owner: Membership):
        key = (account.pk, owner.pk)
        if key not in self.deals:
            self.deals[key] = deal_for(account=account, owner=owner)
        return self.deals[key]


def _after_capture(organization: Organization, result: CaptureResult) -> None:
    # Activities and meetings quotas read the Activity table live, so only the attainment event needs a nudge.
    if result.created or result.updated:
        from integrations.webhooks.events import attainment_check_schedule

        attainment_check_schedule(organization_id=organization.pk)


# --- account domains -------------------------------------------------------------------------------


def _stored_label(organization: Organization, message: str) -> str:
    """Translate `message` into the organization's language, whichever member or task starts the capture.

    The activity type name is stored data: a poll in the organization's language and an
    upload by a member who reads English must write the same value, or every re-read of
    the same meetings would count as an update.
    """
    with translation.override(organization.language):
        return _(message)


def account_domain_add(*, organization: Organization, actor: User | None, account: Account, domain: str) -> AccountDomain:
    with transaction.atomic():
        row = AccountDomain.objects.create(organization=organization, account=account, domain=domain)
        audit_record(
            organization=organization,
            actor=actor,
            action="capture.domain_added",
            object_type="account",
            object_id=account.pk,
            after={"domain": domain},
        )
    return row


def account_domain_delete(*, row: AccountDomain, actor: User | None) -> None:
    with transaction.atomic():
        audit_record(
            organization=row.organization_id,
            actor=actor,
            action="capture.domain_deleted",
            object_type="account",
            object_id=row.account_id,
            before={"domain": row.domain},
        )
        row.delete()


# --- calendar ---------------------------------------------------------------------------------------


def calendar_meetings_capture(
    *, member: Membership, meetings: list[ics.Meeting], now: dt.datetime | None = None
) -> CaptureResult:
    """Upsert meeting activities of `member` for the meetings with an attendee from a known account.

    A meeting the member declined is skipped. A meeting still in the future is stored as
    not done, and a later read marks it done. Returns the counts.
    """
    organization = member.organization
    now = now or timezone.now()
    matcher = AccountMatcher()
    deals = _DealCache()
    own_email = member.user.email.lower()
    result = CaptureResult()
    desired: dict[str, dict] = {}
    for meeting in meetings:
        if own_email in meeting.declined:
            continue
        account = matcher.account_for(meeting.attendees)
        if account is None:
            result.unmatched += 1
            continue
        deal = deals.get(account, member)
        key = _external_id(str(member.pk), meeting.uid, meeting.recurrence_id)
        duration = meeting.ends_at - meeting.starts_at if meeting.ends_at and meeting.ends_at > meeting.starts_at else None
        desired[key] = {
            "kind": ActivityKind.MEETING,
            "type_name": _stored_label(organization, gettext_noop("Calendar")),
            "subject": meeting.summary[:300],
            "is_done": meeting.starts_at <= now,
            "owner_id": member.pk,
            "deal_id": deal.pk if deal else None,
            "account_id": account.pk,
            "occurred_at": meeting.starts_at,
            "duration": duration,
            "is_captured": True,
        }
    with transaction.atomic():
        _activities_upsert(organization, CALENDAR_SOURCE, desired, result)
        _after_capture(organization, result)
    logger.info(
        "Calendar captured organization_id=%s member_id=%s created=%s updated=%s unchanged=%s unmatched=%s",
        organization.pk,
        member.pk,
        result.created,
        result.updated,
        result.unchanged,
        result.unmatched,
    )
    return result


def _retention_cutoff(organization: Organization, now: dt.datetime) -> dt.datetime | None:
    """Return the time before which the nightly retention job deletes activities, or None without retention.

    Capture skips older meetings and messages; otherwise every poll would bring back what
    the retention job deleted the night before.
    """
    if organization.activity_retention_days is None:
        return None
    return now - dt.timedelta(days=organization.activity_retention_days)


def _window(organization: Organization, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = now - dt.timedelta(days=CALENDAR_PAST_DAYS)
    cutoff = _retention_cutoff(organization, now)
    if cutoff is not None and cutoff > start:
        start = cutoff
    return start, now + dt.timedelta(days=CALENDAR_FUTURE_DAYS)


def calendar_file_capture(
    *, member: Membership, data: bytes, now: dt.datetime | None = None, require_events: bool = False
) -> CaptureResult:
    """Capture the meetings of an .ics file; raises ics.CalendarFileError for a bad file.

    `require_events` makes a calendar without any event an error too, as for an upload;
    a feed may well be empty.
    """
    now = now or timezone.now()
    start, end = _window(member.organization, now)
    parsed = ics.calendar_parse(
        data, start=start, end=end, floating_zone=member.organization.tzinfo, require_events=require_events
    )
    result = calendar_meetings_capture(member=member, meetings=parsed.meetings, now=now)
    result.skipped = parsed.skipped
    return result


def calendar_feed_url_validate(url: str) -> str:
    """Return the feed URL to store, or raise OutboundURLError naming what is wrong.

    A webcal:// address, which calendar apps offer for subscriptions, becomes https://. A private
    feed address is a secret, so plain http:// is accepted only with WEBHOOKS_ALLOW_LOOPBACK
    (development and tests), like a private or loopback host.
    """
    schemes = _feed_schemes()
    if urlsplit(url.strip()).scheme.lower() not in ("webcal", *schemes):
        # outbound.url_check would name only the schemes left after the webcal:// rewrite.
        prefixes = get_text_list([f"{scheme}://" for scheme in (*schemes, "webcal")])
        raise outbound.OutboundURLError(_("%(url)s must start with %(schemes)s.") % {"url": url.strip(), "schemes": prefixes})
    url = webcal_to_https(url)
    outbound.url_check(url, schemes=schemes)
    return outbound.url_validate(url)


def _feed_schemes() -> tuple[str, ...]:
    return ("http", "https") if outbound.loopback_allowed() else ("https",)


def calendar_feed_save(*, member: Membership, url: str) -> CalendarFeed:
    """Create or replace the member's feed URL and switch it on; see calendar_feed_url_validate for the rules."""
    url = calendar_feed_url_validate(url)
    feed, _created = CalendarFeed.objects.update_or_create(
        organization=member.organization,
        member=member,
        defaults={"url": url, "is_active": True, "last_error": ""},
    )
    return feed


def webcal_to_https(url: str) -> str:
    """Return `url` with the webcal:// scheme replaced by https://, the transport that webcal feeds use."""
    url = url.strip()
    if url.lower().startswith("webcal://"):
        return "https://" + url[len("webcal://") :]
    return url


def calendar_feed_poll(*, feed: CalendarFeed, now: dt.datetime | None = None) -> CaptureResult | None:
    """Fetch the feed and capture its meetings; on failure store the error on the feed and return None."""
    now = now or timezone.now()
    try:
        # The schemes are checked on every read and redirect, because WEBHOOKS_ALLOW_LOOPBACK
        # may have been switched off since an http:// feed was saved.
        response = outbound.http_get(
            feed.url,
            schemes=_feed_schemes(),
            headers={"Accept": "text/calendar"},
            timeout=CALENDAR_FETCH_TIMEOUT_SECONDS,
            max_bytes=CALENDAR_MAX_BYTES,
            fail_on_oversize=True,
        )
        if response.status != 200:
            raise ics.CalendarFileError(
                _("The calendar server returned HTTP status %(status)s instead of 200.") % {"status": response.status}
            )
        result = calendar_file_capture(member=feed.member, data=response.body, now=now)
    except (outbound.OutboundURLError, outbound.OutboundRequestError, ics.CalendarFileError) as error:
        feed.last_error = str(error)
        feed.last_polled_at = now
        feed.save(update_fields=["last_error", "last_polled_at"])
        logger.warning("Calendar feed failed organization_id=%s feed_id=%s", feed.organization_id, feed.pk)
        return None
    feed.last_error = ""
    feed.last_polled_at = now
    feed.last_counts = result.as_dict()
    feed.save(update_fields=["last_error", "last_polled_at", "last_counts"])
    return result


# --- mailbox ----------------------------------------------------------------------------------------


def mailbox_save(*, organization: Organization, actor: User | None, values: dict) -> Mailbox:
    """Create or change the organization's mailbox; an empty password keeps the stored one.

    A new host, user or folder restarts reading from the first message (Message-IDs
    keep that from doubling activities).
    """
    mailbox = Mailbox.objects.filter(organization=organization).first() or Mailbox(organization=organization)
    password = values.pop("password", "")
    restart = mailbox.pk is None or any(
        getattr(mailbox, name) != values[name] for name in ("host", "port", "username", "folder")
    )
    for name, value in values.items():
        setattr(mailbox, name, value)
    if password:
        mailbox.password = password
    if restart:
        mailbox.uid_validity = None
        mailbox.last_uid = 0
    mailbox.last_error = ""
    with transaction.atomic():
        mailbox.save()
        audit_record(
            organization=organization,
            actor=actor,
            action="capture.mailbox_saved",
            object_type="mailbox",
            object_id=mailbox.pk,
            # The password never goes into the audit log.
            after={**values, "password_changed": bool(password)},
        )
    return mailbox


def email_messages_capture(*, organization: Organization, messages: list, now: dt.datetime | None = None) -> CaptureResult:
    """Upsert e-mail activities for parsed messages (`mail.ParsedMessage`), keyed by Message-ID.

    The owner is the member who sent the message, else the first member among its
    recipients. The account comes from the other addresses' domains. A message without a
    member, without a known account or older than the activity retention is counted and skipped.
    """
    matcher = AccountMatcher()
    deals = _DealCache()
    cutoff = _retention_cutoff(organization, now or timezone.now())
    result = CaptureResult()
    desired: dict[str, dict] = {}
    for message in messages:
        # Older than the retention period: the nightly job would delete it again.
        if cutoff is not None and message.sent_at < cutoff:
            result.too_old += 1
            continue
        owner = matcher.members.get(message.sender)
        is_sent = owner is not None
        if owner is None:
            owner = next((matcher.members[address] for address in message.recipients if address in matcher.members), None)
        if owner is None:
            result.without_member += 1
            continue
        account = matcher.account_for([message.sender, *message.recipients])
        if account is None:
            result.unmatched += 1
            continue
        deal = deals.get(account, owner)
        desired[_external_id(message.message_id)] = {
            "kind": ActivityKind.EMAIL,
            "type_name": _stored_label(
                organization, gettext_noop("E-mail sent") if is_sent else gettext_noop("E-mail received")
            ),
            "subject": message.subject[:300],
            "is_done": True,
            "owner_id": owner.pk,
            "deal_id": deal.pk if deal else None,
            "account_id": account.pk,
            "occurred_at": message.sent_at,
            "duration": None,
            "is_captured": True,
        }
    with transaction.atomic():
        _activities_upsert(organization, EMAIL_SOURCE, desired, result)
        _after_capture(organization, result)
    return result


def mailbox_poll(*, mailbox: Mailbox, now: dt.datetime | None = None) -> CaptureResult | None:
    """Read the messages after the last UID read, capture them and remember the new last UID.

    On a connection, login or protocol failure it stores the error on the mailbox and
    returns None. The next poll then starts again from the same UID.
    """
    from integrations.capture import mail

    now = now or timezone.now()
    try:
        batch = mail.messages_fetch(mailbox)
    except mail.MailboxError as error:
        mailbox.last_error = str(error)
        mailbox.last_polled_at = now
        mailbox.save(update_fields=["last_error", "last_polled_at"])
        logger.warning("Mailbox poll failed organization_id=%s mailbox_id=%s", mailbox.organization_id, mailbox.pk)
        return None
    result = email_messages_capture(organization=mailbox.organization, messages=batch.messages, now=now)
    mailbox.uid_validity = batch.uid_validity
    mailbox.last_uid = batch.last_uid
    mailbox.last_error = ""
    mailbox.last_polled_at = now
    mailbox.last_counts = {**result.as_dict(), "messages": len(batch.messages)}
    mailbox.save(update_fields=["uid_validity", "last_uid", "last_error", "last_polled_at", "last_counts"])
    logger.info(
        "Mailbox polled organization_id=%s mailbox_id=%s messages=%s created=%s unchanged=%s last_uid=%s",
        mailbox.organization_id,
        mailbox.pk,
        len(batch.messages),
        result.created,
        result.unchanged,
        batch.last_uid,
    )
    return result


def domain_normalize(value: str) -> str:
    """Return a bare lower-case domain from input like "@Customer.example" or "anna@customer.example"."""
    value = value.strip().lower()
    if "@" in value:
        value = domain_of(value)
    return value.strip(".")
