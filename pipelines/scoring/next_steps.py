"""Next steps: the open deals with the most expected value at risk, each with its reasons.

A deal is at risk for one or more of these reasons:

- stalled: idle for longer than its stage's stall threshold (as on the pipeline page),
- slipping: its expected close date lies before today and it is still open,
- low probability: its win probability is below LOW_PROBABILITY.

The probability is the model's current score, else the deal's own override, else its
stage's default. Expected value at risk = base amount × (1 − probability) × (1 + 0.5 ×
number of reasons). Only deals with at least one reason and a positive amount are listed,
highest value at risk first.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Case, F, FloatField, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from dashboards.analytics.stages import stalled_deals
from dashboards.templatetags.spm_format import format_number, format_percent
from pipelines.models import Deal, DealScore, DealStatus
from spm.models import Organization
from spm.tenancy import visibility_digest

LOW_PROBABILITY = Decimal("0.25")
REASON_WEIGHT = Decimal("0.5")
NEXT_STEPS_LISTED = 10
# The ranking reads every visible open deal, so the deal list reuses it for this long unless
# the deals, the model or the day change first; idle days of stalled deals may lag by as much.
NEXT_STEPS_CACHE_SECONDS = 300

STALLED, SLIPPING, LOW = "stalled", "slipping", "low_probability"
SOURCE_MODEL, SOURCE_DEAL, SOURCE_STAGE = "model", "deal", "stage"


@dataclass(frozen=True)
class Reason:
    code: str
    # Facts behind the reason: idle days and threshold, days overdue, or the probability.
    details: dict


@dataclass(frozen=True)
class NextStep:
    deal: Deal
    probability: Decimal
    probability_source: str
    value_at_risk: Decimal
    reasons: list[Reason]

    @property
    def reason_texts(self) -> list[str]:
        return [reason_text(reason) for reason in self.reasons]


def next_steps_list(
    *,
    organization: Organization,
    visible_member_ids: set[int] | None,
    now: dt.datetime,
    limit: int = NEXT_STEPS_LISTED,
) -> list[NextStep]:
    """Return up to `limit` open deals of the visible members ranked by expected value at risk.

    `visible_member_ids` is spm.tenancy.membership_ids_visible (None: everyone). Ranking
    runs in the database; the listed deals' values are then recomputed in Decimal. Ties
    rank by deal id. Two queries.
    """
    today = now.astimezone(zoneinfo.ZoneInfo(organization.time_zone)).date()
    deals = Deal.objects.filter(organization=organization, status=DealStatus.OPEN, deleted_at__isnull=True, base_amount__gt=0)
    if visible_member_ids is not None:
        deals = deals.filter(owner_id__in=visible_member_ids)

    ranked = list(
        _ranked(deals, now=now, today=today)
        .select_related("owner__user", "stage", "account")
        .order_by("-value_at_risk_estimate", "pk")[:limit]
    )
    stalled = {
        pk: (idle_days, threshold)
        for pk, idle_days, threshold in stalled_deals(deals.filter(pk__in=[deal.pk for deal in ranked]), now=now)
        .values_list("pk", "idle_days", "stage__stalled_after_days")
    }
    return [_next_step(deal, stalled=stalled.get(deal.pk), today=today) for deal in ranked]


def next_steps_cached(
    *, organization: Organization, visible_member_ids: set[int] | None, now: dt.datetime, model_run_id: int | None
) -> list[NextStep]:
    """Return `next_steps_list(...)` from the cache, keyed by the deals' data version, model run, day and visibility."""
    key = next_steps_cache_key(
        organization=organization, visible_member_ids=visible_member_ids, now=now, model_run_id=model_run_id
    )
    return next_steps_from_cache(key=key, organization=organization, visible_member_ids=visible_member_ids, now=now)


def next_steps_cache_key(
    *, organization: Organization, visible_member_ids: set[int] | None, now: dt.datetime, model_run_id: int | None
) -> str:
    """Build the cache key of the ranking from the deals' data version, the model run, the local day and the visibility.

    Imports, syncs and stage moves change the organization's deal data version
    (dashboards.services.deal_data_version), and a new training run changes the scores,
    so either gives a new key at once. The deal list also caches the rendered ranking under it.
    """
    from dashboards.services import deal_cache_key

    today = now.astimezone(zoneinfo.ZoneInfo(organization.time_zone)).date()
    visible = visibility_digest(None, visible_member_ids)
    return deal_cache_key(
        organization=organization, kind="next-steps", selection=f"{model_run_id}|{today.isoformat()}|{visible}"
    )


def next_steps_from_cache(
    *, key: str, organization: Organization, visible_member_ids: set[int] | None, now: dt.datetime
) -> list[NextStep]:
    """Return the ranking stored under `key`, computing and storing it when missing.

    `key` must come from `next_steps_cache_key` with the same organization, visibility and time.
    """
    steps = cache.get(key)
    if steps is None:
        steps = next_steps_list(organization=organization, visible_member_ids=visible_member_ids, now=now)
        cache.set(key, steps, NEXT_STEPS_CACHE_SECONDS)
    return steps


def _ranked(deals: QuerySet[Deal], *, now: dt.datetime, today: dt.date) -> QuerySet[Deal]:
    """Annotate the float estimate the database ranks by, and keep deals with at least one reason."""
    score = DealScore.objects.filter(deal_id=OuterRef("pk")).values("probability")[:1]
    probability = Coalesce(
        Cast(F("model_probability"), FloatField()),
        Cast(F("probability"), FloatField()) / Value(100.0),
        Cast(F("stage__probability"), FloatField()) / Value(100.0),
    )
    stalled_ids = stalled_deals(deals, now=now).values("pk")
    annotated = deals.annotate(model_probability=Subquery(score)).annotate(probability_estimate=probability).annotate(
        is_stalled=Case(When(pk__in=stalled_ids, then=Value(1)), default=Value(0), output_field=IntegerField()),
        is_slipping=Case(When(expected_close_on__lt=today, then=Value(1)), default=Value(0), output_field=IntegerField()),
        is_low=Case(
            When(probability_estimate__lt=float(LOW_PROBABILITY), then=Value(1)), default=Value(0), output_field=IntegerField()
        ),
    )
    return annotated.filter(Q(is_stalled=1) | Q(is_slipping=1) | Q(is_low=1)).annotate(
        value_at_risk_estimate=Cast(F("base_amount"), FloatField())
        * (Value(1.0) - F("probability_estimate"))
        * (Value(1.0) + Value(float(REASON_WEIGHT)) * (F("is_stalled") + F("is_slipping") + F("is_low")))
    )


def _next_step(deal: Deal, *, stalled: tuple[int, int] | None, today: dt.date) -> NextStep:
    if deal.model_probability is not None:
        probability, source = Decimal(deal.model_probability), SOURCE_MODEL
    elif deal.probability is not None:
        probability, source = Decimal(deal.probability) / 100, SOURCE_DEAL
    else:
        probability, source = Decimal(deal.stage.probability) / 100, SOURCE_STAGE

    reasons = []
    if stalled is not None:
        reasons.append(Reason(STALLED, {"idle_days": int(stalled[0]), "threshold_days": stalled[1]}))
    if deal.expected_close_on is not None and deal.expected_close_on < today:
        reasons.append(
            Reason(SLIPPING, {"expected_close_on": deal.expected_close_on, "days": (today - deal.expected_close_on).days})
        )
    if probability < LOW_PROBABILITY:
        reasons.append(Reason(LOW, {"probability": probability, "source": source}))
    weight = 1 + REASON_WEIGHT * len(reasons)
    return NextStep(
        deal=deal,
        probability=probability,
        probability_source=source,
        value_at_risk=deal.base_amount * (1 - probability) * weight,
        reasons=reasons,
    )


def reason_text(reason: Reason) -> str:
    """Return the reason in words with the action it suggests."""
    details = reason.details
    if reason.code == STALLED:
        return ngettext(
            "Stalled: no stage change or activity for %(days)s days, the stage allows %(limit)s day. "
            "Plan the next step with the customer.",
            "Stalled: no stage change or activity for %(days)s days, the stage allows %(limit)s days. "
            "Plan the next step with the customer.",
            details["threshold_days"],
        ) % {"days": format_number(details["idle_days"]), "limit": format_number(details["threshold_days"])}
    if reason.code == SLIPPING:
        return ngettext(
            "Slipping: the expected close date %(date)s passed %(days)s day ago. Update the date or close the deal.",
            "Slipping: the expected close date %(date)s passed %(days)s days ago. Update the date or close the deal.",
            details["days"],
        ) % {"date": date_format(details["expected_close_on"], "SHORT_DATE_FORMAT"), "days": format_number(details["days"])}
    sources = {
        SOURCE_MODEL: gettext("model"),
        SOURCE_DEAL: gettext("set on the deal"),
        SOURCE_STAGE: gettext("stage default"),
    }
    return gettext("Low win probability %(probability)s (%(source)s). Check that the deal is still qualified.") % {
        "probability": format_percent(details["probability"]),
        "source": sources[details["source"]],
    }
