"""Time in stage and stalled deals.

A stay is the time from a deal's move into a stage until its next move (by
`changed_at`, ties by id). Only completed stays count: the one in the deal's
current stage has no end yet. A deal that returns to a stage has one stay per
visit, and a deal created directly in a later stage has no stay in the stages
before it.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window as WindowExpression,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest, Lead

from dashboards.analytics.base import Window, open_stages
from dashboards.analytics.sql import datetime_param, median_sql, rows_from, sql_from
from pipelines.models import Activity, Deal, DealStageChange, DealStatus, Pipeline, Stage
from spm.db_functions import DaysBetween


@dataclass(frozen=True)
class StageTimeRow:
    """Completed stays in one stage that ended in the period; days are fractional, None without stays."""

    stage: Stage
    stay_count: int
    deal_count: int
    days_mean: Decimal | None
    days_median: Decimal | None


def _stays(deals: QuerySet[Deal], window: Window) -> QuerySet:
    """One row per stage change of `deals` before the window's end, with `left_at` (next change) and `days`.

    Changes at or after the window's end cannot end a stay inside it, so they
    are left out before the window function runs.
    """
    next_change = WindowExpression(
        Lead("changed_at"), partition_by=[F("deal_id")], order_by=[F("changed_at").asc(), F("id").asc()]
    )
    return (
        DealStageChange.objects.filter(deal__in=deals.values("pk"), changed_at__lt=window.end_utc)
        .annotate(stay_deal_id=F("deal_id"), stay_stage_id=F("to_stage_id"), left_at=next_change)
        .annotate(days=DaysBetween("changed_at", next_change))
        .values("stay_deal_id", "stay_stage_id", "left_at", "days")
    )


def _ended_in_window_sql(window: Window, stage_ids: list[int]) -> tuple[str, list]:
    placeholders = ", ".join(["%s"] * len(stage_ids))
    where = f"left_at >= %s AND left_at < %s AND stay_stage_id IN ({placeholders})"
    return where, [datetime_param(window.start_utc), datetime_param(window.end_utc), *stage_ids]


def time_in_stage_rows(deals: QuerySet[Deal], *, window: Window, pipeline: Pipeline) -> list[StageTimeRow]:
    """Return mean and median days per open stage of `pipeline`, over completed stays that ended in the window.

    Rows come in stage order, one per open stage, with zero stays and None
    days where no stay ended. Two queries: the stages, and one aggregate over
    a LEAD() window of the stage history.
    """
    stages = open_stages(pipeline)
    if not stages:
        return []
    where, params = _ended_in_window_sql(window, [stage.pk for stage in stages])
    rows = rows_from(
        _stays(deals, window),
        select=(
            "stay_stage_id, COUNT(*) AS stay_count, COUNT(DISTINCT stay_deal_id) AS deal_count, "
            f"AVG(days) AS days_mean, {median_sql('days')} AS days_median"
        ),
        where=where,
        group_by="stay_stage_id",
        params=params,
    )
    by_stage = {row["stay_stage_id"]: row for row in rows}
    result = []
    for stage in stages:
        row = by_stage.get(stage.pk)
        if row is None:
            result.append(StageTimeRow(stage=stage, stay_count=0, deal_count=0, days_mean=None, days_median=None))
            continue
        result.append(
            StageTimeRow(
                stage=stage,
                stay_count=row["stay_count"],
                deal_count=row["deal_count"],
                days_mean=_decimal(row["days_mean"]),
                days_median=_decimal(row["days_median"]),
            )
        )
    return result


def time_in_stage_deals(deals: QuerySet[Deal], *, window: Window, stage: Stage) -> QuerySet[Deal]:
    """Return the deals with a completed stay in `stage` that ended in the window; drill-down of the deal count."""
    where, params = _ended_in_window_sql(window, [stage.pk])
    sql, all_params = sql_from(_stays(deals, window), select="DISTINCT stay_deal_id", where=where, params=params)
    return deals.filter(pk__in=RawSQL(sql, all_params))


@dataclass(frozen=True)
class StalledRow:
    stage: Stage
    deal_count: int
    base_amount: Decimal


def stalled_deals(deals: QuerySet[Deal], *, now: dt.datetime) -> QuerySet[Deal]:
    """Return the open deals idle for longer than their current stage's `stalled_after_days` at `now`.

    Idle means no stage change and no done activity since the later of the two
    (or since creation when there is neither); touches after `now` are
    ignored. Deals in a stage without a threshold never stall. A deal with a
    planned activity (not done, due after `now`) is not stalled, because
    somebody has already scheduled the next step.
    """
    # The outer queryset is already scoped to one organization, so the subqueries filter on the deal alone.
    last_move = (
        DealStageChange._base_manager.filter(deal_id=OuterRef("pk"), changed_at__lte=now)
        .values("deal_id")
        .annotate(latest=Max("changed_at"))
        .values("latest")
    )
    last_activity = (
        Activity._base_manager.filter(deal_id=OuterRef("pk"), is_done=True, occurred_at__lte=now)
        .values("deal_id")
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    planned = Activity._base_manager.filter(deal_id=OuterRef("pk"), is_done=False, occurred_at__gt=now)
    last_touch = Greatest(
        Coalesce(Subquery(last_move, output_field=DateTimeField()), F("created_at")),
        Coalesce(Subquery(last_activity, output_field=DateTimeField()), F("created_at")),
    )
    return (
        deals.filter(status=DealStatus.OPEN, stage__stalled_after_days__isnull=False)
        .annotate(last_touch_at=last_touch)
        .annotate(idle_days=DaysBetween("last_touch_at", Value(now, output_field=DateTimeField())))
        .filter(idle_days__gt=F("stage__stalled_after_days"))
        .filter(~Exists(planned))
    )


def stalled_rows(deals: QuerySet[Deal], *, now: dt.datetime) -> list[StalledRow]:
    """Return the stalled deals' count and base amount per stage, in pipeline and stage order; two queries."""
    counts = {
        row["stage_id"]: row
        for row in stalled_deals(deals, now=now)
        .values("stage_id")
        .annotate(deal_count=Count("id"), base_amount=Sum("base_amount"))
        .order_by()
    }
    stages = Stage.objects.filter(pk__in=counts).select_related("pipeline").order_by("pipeline__name", "order", "id")
    return [
        StalledRow(
            stage=stage,
            deal_count=counts[stage.pk]["deal_count"],
            base_amount=counts[stage.pk]["base_amount"] or Decimal("0"),
        )
        for stage in stages
    ]


def _decimal(value) -> Decimal | None:
    """Convert a database float (SQLite) or numeric (PostgreSQL) to Decimal; None stays None."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(repr(value))
