"""Weighted pipeline and category totals of a forecast period, from the deals as they are now.

Definitions, for a period P of the organization's fiscal calendar:
- the period's open deals: status open, not deleted in the CRM, expected close date in P.
  An open deal without an expected close date belongs to no period.
- weighted pipeline = Σ base amount × probability over the period's open deals, where the
  probability is the deal's own override, else its stage's default (stage-based figure).
  The model-based figure uses the win probability model's score in place of the stage
  default for deals that have a score; the deal's own override still wins.
- won in P: won deals whose `closed_at` local date lies in P (the dashboards' rule).
- a deal without a base amount adds nothing.

Amounts are Decimal in the organization's base currency. Each read is one query over the
period's deals (plus one for overrides), summed in Python so that products of amounts
and probabilities stay exact Decimals on SQLite too.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from dashboards.selectors import METRIC_WON, deal_filter_for_metric
from goals.forecasts.categories import deal_category, stage_categories
from goals.models import DealForecastCategory, ForecastCategory
from pipelines.models import Deal, DealStatus
from spm.fiscal import Period
from spm.models import Organization

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass
class ForecastDeal:
    """One open deal of the period with what the forecast needs from it."""

    deal: Deal
    amount: Decimal
    stage_probability: Decimal
    probability: Decimal
    category: str
    has_override: bool
    model_probability: Decimal | None = None


@dataclass
class CategoryTotals:
    """Base-currency sums per forecast category; `closed` is the won amount in the period."""

    closed: Decimal = ZERO
    commit: Decimal = ZERO
    best_case: Decimal = ZERO
    pipeline: Decimal = ZERO
    omitted: Decimal = ZERO
    weighted: Decimal = ZERO
    deal_count: int = 0

    @property
    def suggested_commit(self) -> Decimal:
        """Won so far plus the open commit deals, which the categories predict will close."""
        return self.closed + self.commit

    @property
    def suggested_best_case(self) -> Decimal:
        """Commit plus the open best-case deals."""
        return self.closed + self.commit + self.best_case

    @property
    def system_forecast(self) -> Decimal:
        """Weighted pipeline plus won so far, the figure the snapshots record."""
        return self.weighted + self.closed

    def add(self, other: "CategoryTotals") -> None:
        for name in ("closed", "commit", "best_case", "pipeline", "omitted", "weighted", "deal_count"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def probability_ratio(override: int | None, default: int | Decimal) -> Decimal:
    """Return the deal's probability as a ratio from 0 to 1: its override in percent, else `default` percent."""
    return Decimal(override if override is not None else default) / HUNDRED


def period_open_deals(*, period: Period, owner_ids: set[int] | None = None) -> list[ForecastDeal]:
    """Return the open deals whose expected close date lies in `period`, with probability and category.

    `owner_ids=None` means every owner. Runs in the current organization's scope.
    """
    deals = Deal.objects.filter(
        status=DealStatus.OPEN,
        deleted_at__isnull=True,
        expected_close_on__gte=period.start,
        expected_close_on__lt=period.end,
    ).select_related("stage", "owner__user")
    if owner_ids is not None:
        deals = deals.filter(owner_id__in=owner_ids)
    deals = list(deals.order_by("expected_close_on", "pk"))
    overrides = dict(
        DealForecastCategory.objects.filter(deal_id__in=[deal.pk for deal in deals]).values_list("deal_id", "category")
    )
    categories = stage_categories()
    lines = []
    for deal in deals:
        override = overrides.get(deal.pk)
        lines.append(
            ForecastDeal(
                deal=deal,
                amount=deal.base_amount or ZERO,
                stage_probability=probability_ratio(None, deal.stage.probability),
                probability=probability_ratio(deal.probability, deal.stage.probability),
                category=deal_category(deal=deal, stage_category=categories[deal.stage_id], override=override),
                has_override=override is not None,
            )
        )
    return lines


def weighted_pipeline(deals: list[ForecastDeal]) -> Decimal:
    """Σ amount × probability (override, else stage default)."""
    return sum((line.amount * line.probability for line in deals), ZERO)


def model_probabilities(*, organization: Organization, deal_ids: list[int]) -> dict[int, Decimal] | None:
    """Return the win probability model's scores (0 to 1) by deal id, or None when no model is installed.

    Deals without a score (too little history) are missing from the result.
    """
    try:
        from pipelines.scoring import win_probabilities
    except ImportError:
        return None
    if not deal_ids:
        return {}
    return win_probabilities(organization=organization, deal_ids=deal_ids)


def weighted_pipeline_model(deals: list[ForecastDeal], scores: dict[int, Decimal]) -> tuple[Decimal, int]:
    """Return (Σ amount × probability, deals scored), the model's score standing in for the stage default.

    A deal's own override still wins, and a deal without a score keeps its stage default.
    """
    total = ZERO
    scored = 0
    for line in deals:
        score = scores.get(line.deal.pk)
        if score is not None:
            line.model_probability = Decimal(score)
            scored += 1
        if line.deal.probability is not None:
            probability = line.probability
        elif score is not None:
            probability = Decimal(score)
        else:
            probability = line.stage_probability
        total += line.amount * probability
    return total, scored


def won_amounts(*, organization: Organization, period: Period) -> dict[int, Decimal]:
    """Return owner id → base amount won in `period` (closed_at local date in the period)."""
    start_utc, end_utc = period.utc_bounds(organization.tzinfo)
    rows = (
        Deal.objects.filter(deal_filter_for_metric(metric=METRIC_WON, start_utc=start_utc, end_utc=end_utc))
        .values("owner_id")
        .annotate(amount=Sum("base_amount"))
    )
    return {row["owner_id"]: row["amount"] or ZERO for row in rows}


def category_totals_by_owner(
    *, organization: Organization, period: Period, deals: list[ForecastDeal] | None = None
) -> dict[int, CategoryTotals]:
    """Return owner id → CategoryTotals of `period`: won amount as closed, open deals by category.

    Pass `deals` when the caller has already loaded the period's open deals.
    """
    if deals is None:
        deals = period_open_deals(period=period)
    totals: dict[int, CategoryTotals] = defaultdict(CategoryTotals)
    for line in deals:
        owner_totals = totals[line.deal.owner_id]
        owner_totals.deal_count += 1
        owner_totals.weighted += line.amount * line.probability
        if line.category == ForecastCategory.COMMIT:
            owner_totals.commit += line.amount
        elif line.category == ForecastCategory.BEST_CASE:
            owner_totals.best_case += line.amount
        elif line.category == ForecastCategory.PIPELINE:
            owner_totals.pipeline += line.amount
        else:
            owner_totals.omitted += line.amount
    for owner_id, amount in won_amounts(organization=organization, period=period).items():
        totals[owner_id].closed += amount
    return dict(totals)


def open_deals_without_close_date(*, owner_ids: set[int] | None = None) -> int:
    """Count open deals with no expected close date, which no period's forecast includes."""
    deals = Deal.objects.filter(status=DealStatus.OPEN, deleted_at__isnull=True, expected_close_on__isnull=True)
    if owner_ids is not None:
        deals = deals.filter(owner_id__in=owner_ids)
    return deals.count()
