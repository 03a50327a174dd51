"""Stage-to-stage velocity, and the monthly pipeline velocity trend from the KPI snapshots.

Stage-to-stage velocity of an open stage s is the mean number of days from a
deal's first entry into s to its first later entry into a stage further on
(an open stage of higher order, or a won stage), over the deals whose later
entry falls in the period. Moves into a lost stage or backwards are not
progress and do not end the measurement.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count, DateTimeField, Exists, OuterRef, Q, QuerySet, Subquery

from dashboards.analytics.base import Window, open_stages
from dashboards.analytics.stages import _decimal
from dashboards.kpis import KpiRow
from dashboards.models import Grain
from pipelines.models import Deal, DealStageChange, Pipeline, Stage, StageKind
from spm.db_functions import DaysBetween
from spm.fiscal import MONTH, Period, add_months, period_containing, periods_covering
from spm.models import Membership, Organization, Role


@dataclass(frozen=True)
class StageVelocityRow:
    stage: Stage
    deal_count: int
    days_mean: Decimal | None


def _first_entries(deals: QuerySet[Deal], *, pipeline: Pipeline) -> QuerySet:
    """Each deal's first entry into each open stage of `pipeline`, with `advanced_at`: its next forward entry."""
    # The outer rows are already scoped to one organization, so the subqueries filter on the deal alone.
    history = DealStageChange._base_manager.filter(deal_id=OuterRef("deal_id"))
    earlier_same_stage = history.filter(to_stage_id=OuterRef("to_stage_id")).filter(
        Q(changed_at__lt=OuterRef("changed_at")) | Q(changed_at=OuterRef("changed_at"), id__lt=OuterRef("id"))
    )
    forward = (
        history.filter(changed_at__gt=OuterRef("changed_at"), to_stage__pipeline=pipeline)
        .filter(
            Q(to_stage__kind=StageKind.OPEN, to_stage__order__gt=OuterRef("to_stage__order"))
            | Q(to_stage__kind=StageKind.WON)
        )
        .order_by("changed_at", "id")
        .values("changed_at")[:1]
    )
    return (
        DealStageChange.objects.filter(
            deal__in=deals.values("pk"), to_stage__pipeline=pipeline, to_stage__kind=StageKind.OPEN
        )
        .filter(~Exists(earlier_same_stage))
        .annotate(advanced_at=Subquery(forward, output_field=DateTimeField()))
    )


def _advanced_in(entries: QuerySet, window: Window) -> QuerySet:
    return entries.filter(advanced_at__gte=window.start_utc, advanced_at__lt=window.end_utc)


def stage_velocity_rows(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline) -> list[StageVelocityRow]:
    """Return per open stage the deals that moved on from it in the window and their mean days; two queries."""
    stages = open_stages(pipeline)
    # NOTE: `advanced_at` is a correlated subquery that the SQL repeats in WHERE and in AVG, so
    # each first entry of the pipeline's history is probed twice; not measured at a million deals.
    rows = (
        _advanced_in(_first_entries(deals, pipeline=pipeline), window)
        .values("to_stage_id")
        .annotate(deal_count=Count("deal_id"), days_mean=Avg(DaysBetween("changed_at", "advanced_at")))
        .order_by()
    )
    by_stage = {row["to_stage_id"]: row for row in rows}
    return [
        StageVelocityRow(
            stage=stage,
            deal_count=by_stage[stage.pk]["deal_count"] if stage.pk in by_stage else 0,
            days_mean=_decimal(by_stage[stage.pk]["days_mean"]) if stage.pk in by_stage else None,
        )
        for stage in stages
    ]


def stage_velocity_deals(deals: QuerySet[Deal], *, window: Window, stage: Stage) -> QuerySet[Deal]:
    """Return the deals that moved on from `stage` in the window; the drill-down of a velocity row's count."""
    entries = _advanced_in(_first_entries(deals, pipeline=stage.pipeline), window).filter(to_stage=stage)
    return deals.filter(pk__in=entries.values("deal_id"))


def velocity_trend_months(period: Period, count: int = 12) -> list[Period]:
    """Return the `count` calendar months ending with the month that contains the period's last day."""
    last = period_containing(period.last_day, MONTH, 1)
    first = add_months(last.start, -(count - 1))
    return periods_covering(first, last.start, MONTH, 1)


def velocity_trend(
    *, organization: Organization, membership: Membership, months: list[Period]
) -> list[tuple[Period, KpiRow | None]]:
    """Return the member's headline KPI row per month, for the pipeline velocity trend.

    An admin reads the organization row, a manager the sum of the teams they
    lead (as on the dashboard), a rep their own row. One query per subject.
    """
    # Imported here because dashboards.scorecards imports the forms, which import the drill-down.
    from dashboards.scorecards import Headline, dashboard_headline, headline_monthly_series

    if membership.role == Role.REP:
        headline = Headline(row=None, title=membership.display_name, subjects=((Grain.REP, membership.pk),))
    else:
        from pipelines.selectors import team_list_visible

        headline = dashboard_headline(
            organization=organization,
            membership=membership,
            period=months[-1],
            teams=team_list_visible(membership=membership),
            team=None,
        )
    return headline_monthly_series(organization=organization, headline=headline, months=months)
