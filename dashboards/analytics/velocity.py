"""Stage-to-stage velocity, and the monthly pipeline velocity trend from the KPI snapshots.

Stage-to-stage velocity of an open stage s is the mean number of days from a
deal's first entry into s to its first later entry into a stage further on
(an open stage of higher order, or a won stage), over the deals whose later
entry falls in the period. Moves into a lost stage or backwards are not
progress and do not end the measurement.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby
from operator import itemgetter

from django.db.models import QuerySet

from dashboards.analytics.base import Window, open_stages
from dashboards.kpis import KpiRow
from dashboards.models import Grain
from pipelines.models import Deal, DealStageChange, Pipeline, Stage, StageKind
from spm.fiscal import MONTH, Period, add_months, period_containing, periods_covering
from spm.models import Membership, Organization, Role

_DAY = dt.timedelta(days=1)
# Rows fetched per round trip while streaming the stage changes.
_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class StageVelocityRow:
    stage: Stage
    deal_count: int
    days_mean: Decimal | None


@dataclass(frozen=True)
class _Advance:
    """One deal's first entry into an open stage and its first later entry into a stage further on."""

    deal_id: int
    stage_id: int
    entered_at: dt.datetime
    advanced_at: dt.datetime


def _deal_advances(deal_id: int, changes: list[tuple]) -> Iterator[_Advance]:
    """Yield the advances of deal `deal_id` from its moves, given as (deal id, stage id, kind, order, changed_at).

    `changes` contains the deal's moves into open and won stages of one
    pipeline, ordered by (changed_at, id). An open stage with no later forward
    move yields nothing.
    """
    first_entries: dict[int, tuple[dt.datetime, int]] = {}
    for _deal_id, stage_id, kind, order, changed_at in changes:
        if kind == StageKind.OPEN and stage_id not in first_entries:
            first_entries[stage_id] = (changed_at, order)

    for stage_id, (entered_at, entered_order) in first_entries.items():
        # The moves are in time order, so the first match is the earliest forward move.
        advanced_at = next(
            (
                changed_at
                for _deal_id, _stage_id, kind, order, changed_at in changes
                if changed_at > entered_at and (kind == StageKind.WON or order > entered_order)
            ),
            None,
        )
        if advanced_at is not None:
            yield _Advance(deal_id, stage_id, entered_at, advanced_at)


def _advances_in(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline) -> Iterator[_Advance]:
    """Yield every advance in `pipeline` of a deal of `deals` whose forward move falls in `window`, in one query.

    Only deals with a move into an open or won stage of the pipeline inside
    the window can have such an advance, so only their histories are read,
    ordered by (deal, changed_at, id) and streamed. Moves into lost stages and
    other pipelines neither start nor end a measurement and are left out.
    """
    kinds = (StageKind.OPEN, StageKind.WON)
    moved_in_window = DealStageChange.objects.filter(
        changed_at__gte=window.start_utc,
        changed_at__lt=window.end_utc,
        to_stage__pipeline=pipeline,
        to_stage__kind__in=kinds,
    ).values("deal_id")
    changes = (
        DealStageChange.objects.filter(
            deal__in=deals.filter(pk__in=moved_in_window).values("pk"),
            to_stage__pipeline=pipeline,
            to_stage__kind__in=kinds,
        )
        .order_by("deal_id", "changed_at", "id")
        .values_list("deal_id", "to_stage_id", "to_stage__kind", "to_stage__order", "changed_at")
    )

    for deal_id, deal_changes in groupby(changes.iterator(chunk_size=_CHUNK_SIZE), key=itemgetter(0)):
        for advance in _deal_advances(deal_id, list(deal_changes)):
            if window.start_utc <= advance.advanced_at < window.end_utc:
                yield advance


def stage_velocity_rows(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline) -> list[StageVelocityRow]:
    """Return per open stage the deals that moved on from it in the window and their mean days, in two queries.

    `days_mean` is exact to the microsecond, and None for a stage no deal moved on from.
    """
    stages = open_stages(pipeline)

    totals: dict[int, tuple[int, dt.timedelta]] = {}
    for advance in _advances_in(deals, window=window, pipeline=pipeline):
        count, duration = totals.get(advance.stage_id, (0, dt.timedelta()))
        totals[advance.stage_id] = (count + 1, duration + (advance.advanced_at - advance.entered_at))

    rows = []
    for stage in stages:
        count, duration = totals.get(stage.pk, (0, dt.timedelta()))
        days_mean = _days(duration) / count if count else None
        rows.append(StageVelocityRow(stage=stage, deal_count=count, days_mean=days_mean))
    return rows


def _days(duration: dt.timedelta) -> Decimal:
    """Return a duration in fractional days without going through float."""
    microseconds = duration // dt.timedelta(microseconds=1)
    return Decimal(microseconds) / (_DAY // dt.timedelta(microseconds=1))


def stage_velocity_deals(deals: QuerySet[Deal], *, window: Window, stage: Stage) -> QuerySet[Deal]:
    """Return the deals that moved on from `stage` in the window, the drill-down of a velocity row's count.

    The deal ids are computed here in one pass (see `_advances_in`), so the
    returned queryset filters on a list of ids.
    """
    # NOTE: the list becomes one IN parameter per deal, which is fine for the demo's thousand
    # deals a quarter but not measured for organizations with hundreds of thousands.
    deal_ids = [
        advance.deal_id
        for advance in _advances_in(deals, window=window, pipeline=stage.pipeline)
        if advance.stage_id == stage.pk
    ]
    return deals.filter(pk__in=deal_ids)


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
    may see (as on the dashboard), a rep their own row. One query per subject.
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
