"""The quota.attainment_crossed event: compare each subject's attainment with the level seen last time.

Checked periods are the fiscal year, quarter and month containing today (organization time
zone), for every level and metric that has an explicit quota in that period. A subject
fires once per period and threshold, and only when its attainment rises from below the
threshold to at or above it. The first check of a subject records its level without firing.
"""

import logging
from decimal import Decimal

from django.db import transaction

from goals.attainment import attainment_list, organization_today
from goals.models import Quota, QuotaMetric
from integrations.webhooks.events import event_uuid
from integrations.webhooks.models import AttainmentLevel, WebhookEvent, WebhookSubscription
from spm import fiscal
from spm.models import Organization
from spm.rounding import round_half_up

logger = logging.getLogger(__name__)

PERIOD_KINDS = (fiscal.YEAR, fiscal.QUARTER, fiscal.MONTH)


def _thresholds(organization: Organization) -> list[Decimal]:
    subscriptions = WebhookSubscription.objects.filter(organization=organization, is_active=True)
    return sorted(
        {
            subscription.attainment_threshold_percent
            for subscription in subscriptions
            if WebhookEvent.ATTAINMENT_CROSSED in subscription.events
        }
    )


def _percent_key(percent: Decimal) -> str:
    return format(percent.normalize(), "f")


def attainment_levels_check(*, organization: Organization, emit: bool = True, today=None) -> int:
    """Record today's attainment of every subject with a quota and emit the upward threshold crossings.

    With `emit=False` only the levels are recorded (used when a subscription is created).
    Returns the number of events emitted. Runs inside the organization's scope.
    """
    from integrations.webhooks.services import event_emit

    thresholds = _thresholds(organization)
    # No subscription wants the event, and no starting point is to be recorded.
    if emit and not thresholds:
        return 0
    today = today or organization_today(organization)
    emitted = 0
    for kind in PERIOD_KINDS:
        period = fiscal.period_containing(today, kind, organization.fiscal_year_start_month)
        combinations = set(
            Quota.objects.filter(period_kind=kind, period_start=period.start).values_list("level", "metric")
        )
        for level, metric in sorted(combinations):
            emitted += _check_one(organization, period, level, metric, today, thresholds, emit, event_emit)
    logger.info("Attainment levels checked organization_id=%s events=%s", organization.pk, emitted)
    return emitted


def _check_one(organization, period, level, metric, today, thresholds, emit, event_emit) -> int:
    rows = [
        row
        for row in attainment_list(organization=organization, period=period, metric=metric, level=level, today=today)
        if row.attainment is not None
    ]
    seen = {
        state.subject_id: state
        for state in AttainmentLevel.objects.filter(
            level=level, metric=metric, period_kind=period.kind, period_start=period.start
        )
    }
    emitted = 0
    for row in rows:
        ratio = row.attainment
        state = seen.get(row.subject_id)
        if state is None:
            AttainmentLevel.objects.create(
                organization=organization,
                level=level,
                subject_id=row.subject_id,
                metric=metric,
                period_kind=period.kind,
                period_start=period.start,
                last_ratio=ratio,
                crossed_percents=[_percent_key(t) for t in thresholds if ratio >= t / 100],
            )
            continue

        previous = state.last_ratio or Decimal(0)
        crossed = list(state.crossed_percents)
        for threshold in thresholds:
            key = _percent_key(threshold)
            if key in crossed or not (previous < threshold / 100 <= ratio):
                continue
            crossed.append(key)
            if emit:
                _emit(event_emit, organization, period, row, threshold)
                emitted += 1
        state.last_ratio = ratio
        state.crossed_percents = crossed
        with transaction.atomic():
            state.save(update_fields=["last_ratio", "crossed_percents", "updated_at"])
    return emitted


def _emit(event_emit, organization, period, row, threshold: Decimal) -> None:
    is_count = row.metric in (QuotaMetric.WON_DEALS, QuotaMetric.ACTIVITIES, QuotaMetric.MEETINGS)
    data = {
        "attainment": {
            "level": row.level,
            "subject": {"id": row.subject_id, "name": row.subject},
            "metric": row.metric,
            "period": {"label": period.label, "kind": period.kind, "start": period.start, "end": period.end},
            "quota": str(row.quota),
            "credited": str(row.credited if is_count else round_half_up(row.credited, 2)),
            "attainment": str(round_half_up(row.attainment, 4)),
            "threshold_percent": _percent_key(threshold),
        }
    }
    event_emit(
        organization_id=organization.pk,
        event=WebhookEvent.ATTAINMENT_CROSSED,
        payload=data,
        event_id=event_uuid(organization.pk, "attainment", row.level, row.subject_id, row.metric, period.label, threshold),
        threshold_percent=threshold,
    )
