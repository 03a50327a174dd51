"""Stage funnel of a cohort: how many deals created in a period reached each open stage, and the conversions.

reached(s) counts the cohort's deals whose highest open-stage order ever
entered is at least order(s). A won deal reached every open stage. A skipped
stage counts as reached, and a move backwards does not undo "reached".
conversion(s → next) = reached(next) ÷ reached(s), and None when nobody
reached s. The last open stage converts into the won row (deals of the cohort
won by now).
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, Count, F, IntegerField, Max, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from dashboards.analytics.base import Window, open_stages
from dashboards.kpis import ratio
from pipelines.models import Deal, DealStageChange, DealStatus, Pipeline, Stage, StageKind

# Higher than any stage order (a PositiveSmallIntegerField), so a won deal passes every "≥ order" test.
WON_REACH = 100_000


@dataclass(frozen=True)
class FunnelRow:
    """One funnel step: an open stage, or the final won step (`stage` None)."""

    stage: Stage | None
    label: str
    reached: int
    # reached(next step) ÷ reached(this step); None without a next step or when nobody reached this one.
    conversion: Decimal | None

    @property
    def is_won(self) -> bool:
        return self.stage is None


def funnel_cohort(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline) -> QuerySet[Deal]:
    """Return the deals of `pipeline` created in the window: the funnel's cohort."""
    return deals.filter(pipeline=pipeline, created_at__gte=window.start_utc, created_at__lt=window.end_utc)


def deals_with_highest_open_order(deals: QuerySet[Deal], *, pipeline: Pipeline) -> QuerySet[Deal]:
    """Annotate `highest_open_order`: the highest order of an open stage of `pipeline` the deal ever entered.

    It is the maximum over the deal's stage history and its current stage (so
    a deal without history counts its current stage), 0 when it never entered
    an open stage, and WON_REACH for a deal that is won now.
    """
    # The outer queryset is already scoped to one organization, so the subquery filters on the deal alone.
    entered = (
        DealStageChange._base_manager.filter(
            deal_id=OuterRef("pk"), to_stage__kind=StageKind.OPEN, to_stage__pipeline=pipeline
        )
        .values("deal_id")
        .annotate(top=Max("to_stage__order"))
        .values("top")
    )
    current = Case(
        When(stage__kind=StageKind.OPEN, stage__pipeline=pipeline, then=F("stage__order")),
        default=Value(0),
        output_field=IntegerField(),
    )
    highest = Case(
        When(status=DealStatus.WON, then=Value(WON_REACH)),
        default=Greatest(Coalesce(Subquery(entered, output_field=IntegerField()), Value(0)), current),
        output_field=IntegerField(),
    )
    return deals.annotate(highest_open_order=highest)


def funnel_rows(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline, won_label: str) -> list[FunnelRow]:
    """Return one row per open stage of `pipeline` in stage order, then the won row; two queries.

    The cohort is grouped by its highest open order in one aggregate, so the
    work is one pass over the cohort however many stages there are.
    """
    stages = open_stages(pipeline)
    cohort = deals_with_highest_open_order(funnel_cohort(deals, window=window, pipeline=pipeline), pipeline=pipeline)
    counts = {
        row["highest_open_order"]: row["deal_count"]
        for row in cohort.values("highest_open_order").annotate(deal_count=Count("id")).order_by()
    }

    reached = [sum(count for order, count in counts.items() if order >= stage.order) for stage in stages]
    reached.append(counts.get(WON_REACH, 0))
    rows = []
    for index, stage in enumerate(stages):
        conversion = ratio(reached[index + 1], reached[index])
        rows.append(FunnelRow(stage=stage, label=stage.name, reached=reached[index], conversion=conversion))
    rows.append(FunnelRow(stage=None, label=won_label, reached=reached[-1], conversion=None))
    return rows


def funnel_deals_reached(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline, stage: Stage | None) -> QuerySet[Deal]:
    """Return the cohort's deals that reached `stage` (None: the won step); the drill-down of one funnel number."""
    cohort = funnel_cohort(deals, window=window, pipeline=pipeline)
    if stage is None:
        return cohort.filter(status=DealStatus.WON)
    return deals_with_highest_open_order(cohort, pipeline=pipeline).filter(highest_open_order__gte=stage.order)
