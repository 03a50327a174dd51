"""The weekly coaching digest: who gets it, what it contains, and sending it once per recipient and week.

Managers get, per rep they lead, the rep's coaching signals in the current
fiscal quarter (concerns first) and the change between the rep's latest and
previous forecast submission for the current forecast period, plus their own
open action items. Reps get their won-revenue attainment in the current
quarter, their open action items and their open training items. Every text is
rendered in the recipient's language: the user's choice, else the
organization's default.

A `DigestSend` row per (organization, member, week) is written before the
e-mail goes out, so a second run in the same week skips the member even when
two runs overlap; a failed send deletes its row so the next hourly run
retries it.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from coaching.skills.models import DigestSend, TrainingItem
from dashboards.templatetags.spm_format import format_money, format_percent, format_value, period_name
from goals.attainment import attainment_get
from goals.models import ForecastPeriodKind, ForecastSettings, ForecastSubmission, QuotaLevel, QuotaMetric
from spm.fiscal import QUARTER, Period, period_containing
from spm.models import Membership, Organization, Role
from spm.tenancy import membership_ids_visible

logger = logging.getLogger(__name__)

# Signals listed per rep in a manager's digest; the rest are counted.
SIGNALS_PER_REP = 3
# Local time on Monday from which the digest of the week goes out.
SEND_WEEKDAY = 0
SEND_HOUR = 7


@dataclass(frozen=True)
class SignalLine:
    label: str
    rep_value: str
    team_median: str
    is_concern: bool
    deal_count: int


@dataclass(frozen=True)
class ForecastChange:
    """The latest and the previous forecast submission of a rep for one period, as display text."""

    period_label: str
    latest_commit: str
    latest_best_case: str
    latest_on: str
    previous_commit: str = ""
    previous_best_case: str = ""
    previous_on: str = ""
    commit_change: str = ""


@dataclass
class RepSection:
    name: str
    signals: list[SignalLine] = field(default_factory=list)
    more_signals: int = 0
    forecast: ForecastChange | None = None


@dataclass(frozen=True)
class OpenItem:
    title: str
    due_on: str
    is_overdue: bool


@dataclass(frozen=True)
class AttainmentLine:
    period_label: str
    credited: str
    quota: str
    attainment: str
    pacing: str
    # Why there is no attainment, e.g. no quota; empty when `attainment` is shown.
    reason: str = ""


@dataclass
class Digest:
    """Everything one e-mail shows, already formatted in the recipient's language."""

    recipient: Membership
    language: str
    is_manager: bool
    week_label: str
    period_label: str
    reps: list[RepSection] = field(default_factory=list)
    attainment: AttainmentLine | None = None
    action_items: list[OpenItem] = field(default_factory=list)
    training_items: list[OpenItem] = field(default_factory=list)


def recipient_language(membership: Membership) -> str:
    """Return the user's chosen language, else the organization's default."""
    return membership.user.language or membership.organization.language


def digest_recipients(*, organization: Organization, today: dt.date) -> list[Membership]:
    """Return the managers and reps active on `today` with an active login and an e-mail address, by id.

    Admins get no digest: they see everyone, and the digest is about the
    people one leads or one's own numbers.
    """
    active = (Q(active_from__isnull=True) | Q(active_from__lte=today)) & (
        Q(active_to__isnull=True) | Q(active_to__gte=today)
    )
    return list(
        Membership.objects.filter(active, role__in=(Role.MANAGER, Role.REP), user__is_active=True)
        .exclude(user__email="")
        .select_related("user", "organization")
        .order_by("pk")
    )


def _reps_led_by(manager: Membership) -> list[Membership]:
    visible = membership_ids_visible(manager) or set()
    return list(
        Membership.objects.filter(pk__in=visible - {manager.pk}, role=Role.REP)
        .select_related("user")
        .order_by("user__name", "user__email", "pk")
    )


def _short_date(day: dt.date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def _open_items(queryset, today: dt.date) -> list[OpenItem]:
    return [
        OpenItem(
            title=item.title,
            due_on=_short_date(item.due_on) if item.due_on else "",
            is_overdue=item.due_on is not None and item.due_on < today,
        )
        for item in queryset
    ]


def _action_items(member: Membership, today: dt.date) -> list[OpenItem]:
    from coaching.models import ActionItem

    return _open_items(ActionItem.objects.filter(owner=member, done_at__isnull=True).order_by("due_on", "pk"), today)


def _training_items(member: Membership, today: dt.date) -> list[OpenItem]:
    items = TrainingItem.objects.filter(plan__member=member, done_at__isnull=True).order_by("due_on", "pk")
    return _open_items(items, today)


def _signal_sections(
    *, organization: Organization, reps: list[Membership], period: Period, now: dt.datetime
) -> dict[int, tuple[list[SignalLine], int]]:
    from coaching.signals import signals_for_members

    currency = organization.currency
    signals = signals_for_members(organization=organization, memberships=reps, period=period, now=now)
    sections = {}
    for rep in reps:
        rep_signals = signals.get(rep.pk, [])
        lines = [
            SignalLine(
                label=signal.label,
                rep_value=format_value(signal.rep_value, signal.value_format, currency),
                team_median=format_value(signal.team_median, signal.value_format, currency),
                is_concern=signal.is_concern,
                deal_count=len(signal.deal_ids),
            )
            for signal in rep_signals[:SIGNALS_PER_REP]
        ]
        sections[rep.pk] = (lines, max(len(rep_signals) - SIGNALS_PER_REP, 0))
    return sections


def forecast_period(organization: Organization, today: dt.date) -> Period:
    """Return the forecast period containing `today`: a fiscal quarter unless the admin chose months."""
    settings_row = ForecastSettings.objects.filter(organization=organization).first()
    kind = settings_row.period_kind if settings_row is not None else ForecastPeriodKind.QUARTER
    return period_containing(today, kind, organization.fiscal_year_start_month)


def _signed_money(amount: Decimal, currency: str) -> str:
    """Format a change of money with its sign: +1.500,00 €, −200,00 € or ±0,00 €."""
    if amount > 0:
        sign = "+"
    elif amount < 0:
        sign = "\u2212"
    else:
        sign = "\u00b1"
    return sign + format_money(abs(amount), currency)


def forecast_changes(*, organization: Organization, reps: list[Membership], period: Period) -> dict[int, ForecastChange]:
    """Return rep id → their latest and previous commit and best case for `period`; reps without a call are left out."""
    currency = organization.currency
    by_subject: dict[int, list[ForecastSubmission]] = {}
    submissions = ForecastSubmission.objects.filter(
        period_kind=period.kind, period_start=period.start, subject_id__in=[rep.pk for rep in reps]
    ).order_by("-submitted_at", "-pk")
    for submission in submissions:
        calls = by_subject.setdefault(submission.subject_id, [])
        if len(calls) < 2:
            calls.append(submission)

    tz = organization.tzinfo
    changes = {}
    for subject_id, calls in by_subject.items():
        latest = calls[0]
        change = ForecastChange(
            period_label=period_name(period),
            latest_commit=format_money(latest.commit_amount, currency),
            latest_best_case=format_money(latest.best_case_amount, currency),
            latest_on=_short_date(latest.submitted_at.astimezone(tz).date()),
        )
        if len(calls) == 2:
            previous = calls[1]
            difference = latest.commit_amount - previous.commit_amount
            change = ForecastChange(
                period_label=period_name(period),
                latest_commit=change.latest_commit,
                latest_best_case=change.latest_best_case,
                latest_on=change.latest_on,
                previous_commit=format_money(previous.commit_amount, currency),
                previous_best_case=format_money(previous.best_case_amount, currency),
                previous_on=_short_date(previous.submitted_at.astimezone(tz).date()),
                commit_change=_signed_money(difference, currency),
            )
        changes[subject_id] = change
    return changes


def _attainment_line(*, organization: Organization, member: Membership, period: Period, today: dt.date) -> AttainmentLine:
    row = attainment_get(
        organization=organization,
        period=period,
        metric=QuotaMetric.WON_REVENUE,
        level=QuotaLevel.REP,
        subject_id=member.pk,
        today=today,
    )
    currency = organization.currency
    credited = row.credited if row is not None else Decimal(0)
    if row is None or row.attainment is None:
        return AttainmentLine(
            period_label=period_name(period),
            credited=format_money(credited, currency),
            quota="–",
            attainment="–",
            pacing="–",
            reason=_("No revenue quota is set for you in %(period)s.") % {"period": period_name(period)},
        )
    return AttainmentLine(
        period_label=period_name(period),
        credited=format_money(row.credited, currency),
        quota=format_money(row.quota, currency),
        attainment=format_percent(row.attainment),
        pacing=format_percent(row.pacing) if row.pacing is not None else "–",
    )


def digest_build(*, organization: Organization, recipient: Membership, now: dt.datetime) -> Digest:
    """Collect one recipient's digest; call it inside the organization's scope with the recipient's language active."""
    today = timezone.localdate(now, timezone=organization.tzinfo)
    quarter = period_containing(today, QUARTER, organization.fiscal_year_start_month)
    monday = today - dt.timedelta(days=today.weekday())
    digest = Digest(
        recipient=recipient,
        language=recipient_language(recipient),
        is_manager=recipient.role == Role.MANAGER,
        week_label=_short_date(monday),
        period_label=period_name(quarter),
    )
    digest.action_items = _action_items(recipient, today)

    if digest.is_manager:
        reps = _reps_led_by(recipient)
        signals = _signal_sections(organization=organization, reps=reps, period=quarter, now=now)
        changes = forecast_changes(organization=organization, reps=reps, period=forecast_period(organization, today))
        for rep in reps:
            lines, more = signals.get(rep.pk, ([], 0))
            digest.reps.append(
                RepSection(name=rep.display_name, signals=lines, more_signals=more, forecast=changes.get(rep.pk))
            )
        return digest

    digest.attainment = _attainment_line(organization=organization, member=recipient, period=quarter, today=today)
    digest.training_items = _training_items(recipient, today)
    return digest


def digest_render(digest: Digest) -> tuple[str, str, str]:
    """Return (subject, plain text, HTML) of a digest in the active language."""
    subject = _("SPM weekly digest for the week of %(date)s") % {"date": digest.week_label}
    context = {"digest": digest, "subject": subject}
    text = render_to_string("coaching/email/digest.txt", context)
    html = render_to_string("coaching/email/digest.html", context)
    return subject, text, html


def digest_send(*, organization: Organization, recipient: Membership, week_start_on: dt.date, now: dt.datetime) -> bool:
    """Send one recipient's digest for the week starting `week_start_on`; return False when it was already sent.

    The send record is committed first, so an overlapping run hits the unique
    key and skips. If building or sending fails, the record is removed and
    the error is raised, so the next run tries again.
    """
    try:
        with transaction.atomic():
            record = DigestSend.objects.create(organization=organization, membership=recipient, week_start_on=week_start_on)
    except IntegrityError:
        # Already sent this week (or being sent by an overlapping run).
        return False

    try:
        with translation.override(recipient_language(recipient)):
            digest = digest_build(organization=organization, recipient=recipient, now=now)
            subject, text, html = digest_render(digest)
        message = EmailMultiAlternatives(
            subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[recipient.user.email]
        )
        message.attach_alternative(html, "text/html")
        message.send()
    except Exception:
        logger.exception(
            "Weekly digest failed organization_id=%s membership_id=%s week=%s",
            organization.pk,
            recipient.pk,
            week_start_on.isoformat(),
        )
        DigestSend.objects.filter(pk=record.pk).delete()
        raise
    logger.info(
        "Weekly digest sent organization_id=%s membership_id=%s week=%s",
        organization.pk,
        recipient.pk,
        week_start_on.isoformat(),
    )
    return True


def digest_send_week(*, organization: Organization, now: dt.datetime) -> int:
    """Send the digest of the current local week to every recipient who has not had it; return how many were sent.

    A failure for one recipient is logged and does not stop the others.
    """
    today = timezone.localdate(now, timezone=organization.tzinfo)
    week_start_on = today - dt.timedelta(days=today.weekday())
    already = set(DigestSend.objects.filter(week_start_on=week_start_on).values_list("membership_id", flat=True))
    sent = 0
    for recipient in digest_recipients(organization=organization, today=today):
        if recipient.pk in already:
            continue
        if recipient.role == Role.MANAGER and not _reps_led_by(recipient):
            # A manager without reps has nothing to read about.
            continue
        try:
            sent += digest_send(organization=organization, recipient=recipient, week_start_on=week_start_on, now=now)
        except Exception:  # noqa: BLE001 - logged in digest_send; the other recipients still get theirs.
            continue
    return sent


def is_send_time(organization: Organization, now: dt.datetime) -> bool:
    """Return True on Monday from 07:00 local time to midnight, the window in which the hourly job sends."""
    local = now.astimezone(organization.tzinfo)
    return local.weekday() == SEND_WEEKDAY and local.hour >= SEND_HOUR
