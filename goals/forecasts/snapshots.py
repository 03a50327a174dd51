"""The system forecast (weighted pipeline + won so far) as of an instant, and its snapshots.

Snapshots are taken per member at the horizons of each forecast period: its start and
8, 4 and 1 weeks before its end (a horizon before the start, as 8 weeks in a month, is
skipped). A horizon's instant is local midnight of its day in the organization's time
zone. Each (period, horizon) is recorded once: a later run leaves existing rows alone.

The state at the instant comes from the stage history: a deal's stage is the target of
its latest move before the instant, so a deal won afterwards still counts as open and
weighted. A deal with no recorded move at all uses its current stage: a closed one from
its `closed_at` on, an open one since its creation. Such a deal that closed after the
instant is left out, because its stage at the instant is unknown.

Expected close dates, amounts and probability overrides have no history, so their
current values are used. Rows computed more than `RECORDED_LATE_AFTER` after the
instant are therefore marked as reconstructed.
"""

import datetime as dt
import logging
from collections import defaultdict
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, Subquery
from django.utils import timezone

from goals.forecasts.pipeline import HUNDRED, ZERO
from goals.models import ForecastHorizon, ForecastSnapshot
from pipelines.models import Deal, DealStageChange, Stage, StageKind
from spm.fiscal import Period, local_midnight, period_containing
from spm.models import Membership, Organization
from spm.rounding import round_half_up

logger = logging.getLogger(__name__)

# Days before the period's end; None is the period's first day.
HORIZON_DAYS_BEFORE_END = {
    ForecastHorizon.START: None,
    ForecastHorizon.WEEKS_8: 56,
    ForecastHorizon.WEEKS_4: 28,
    ForecastHorizon.WEEKS_1: 7,
}
# The hourly schedule records a horizon within the hour; later rows are reconstructions.
RECORDED_LATE_AFTER = dt.timedelta(hours=2)


def horizon_day(period: Period, horizon: str) -> dt.date | None:
    """Return the local day of a horizon, or None when it falls before the period starts."""
    days_before_end = HORIZON_DAYS_BEFORE_END[horizon]
    if days_before_end is None:
        return period.start
    day = period.end - dt.timedelta(days=days_before_end)
    return day if day >= period.start else None


def horizon_instant(organization: Organization, period: Period, horizon: str) -> dt.datetime | None:
    day = horizon_day(period, horizon)
    return local_midnight(day, organization.tzinfo) if day is not None else None


def system_forecast_as_of(
    *, organization: Organization, period: Period, as_of: dt.datetime
) -> dict[int, tuple[Decimal, Decimal]]:
    """Return owner id → (weighted pipeline, won so far) of `period` as the deals stood at `as_of`.

    Weighted pipeline: deals open at `as_of` (created before it, not deleted by then, in an
    open stage) whose expected close date lies in the period, Σ base amount × probability
    (override, else the stage's default). Won so far: deals whose stage at `as_of` is a won
    stage entered on or after the period's start. Reads only the period's candidate deals.
    """
    start_utc, _end_utc = period.utc_bounds(organization.tzinfo)
    stages = {stage.pk: stage for stage in Stage.objects.all()}
    won_stage_ids = [pk for pk, stage in stages.items() if stage.kind == StageKind.WON]
    moves_before = DealStageChange.objects.filter(deal=OuterRef("pk"), changed_at__lt=as_of).order_by(
        "-changed_at", "-pk"
    )
    won_in_window = DealStageChange.objects.filter(
        deal=OuterRef("pk"), to_stage_id__in=won_stage_ids, changed_at__gte=start_utc, changed_at__lt=as_of
    )
    candidates = (
        Deal.objects.filter(created_at__lt=as_of)
        .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gte=as_of))
        .filter(
            Q(expected_close_on__gte=period.start, expected_close_on__lt=period.end)
            | Q(closed_at__gte=start_utc, closed_at__lt=as_of)
            | Exists(won_in_window)
        )
        .annotate(
            stage_at=Subquery(moves_before.values("to_stage_id")[:1]),
            entered_at=Subquery(moves_before.values("changed_at")[:1]),
            has_history=Exists(DealStageChange.objects.filter(deal=OuterRef("pk"))),
        )
        .values_list(
            "owner_id",
            "base_amount",
            "probability",
            "expected_close_on",
            "stage_id",
            "closed_at",
            "stage_at",
            "entered_at",
            "has_history",
        )
    )

    result: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for owner_id, amount, override, expected_on, stage_id, closed_at, stage_at, entered_at, has_history in candidates:
        if has_history:
            if stage_at is None:
                # Its first move comes after `as_of`: not in the pipeline yet.
                continue
            stage = stages[stage_at]
        elif closed_at is not None and closed_at < as_of:
            stage, entered_at = stages[stage_id], closed_at
        elif stages[stage_id].kind == StageKind.OPEN:
            stage = stages[stage_id]
        else:
            # NOTE: closed after `as_of` with no recorded move, so its stage then is unknown; it is left out.
            continue
        amount = amount or ZERO
        if stage.kind == StageKind.OPEN:
            if expected_on is not None and period.start <= expected_on < period.end:
                result[owner_id][0] += amount * _probability(override, stage.probability)
        elif stage.kind == StageKind.WON and entered_at is not None and start_utc <= entered_at < as_of:
            result[owner_id][1] += amount
    return {owner_id: (values[0], values[1]) for owner_id, values in result.items()}


def _probability(override: int | None, default: int) -> Decimal:
    return Decimal(override if override is not None else default) / HUNDRED


def snapshot_exists(*, period: Period, horizon: str) -> bool:
    return ForecastSnapshot.objects.filter(
        period_kind=period.kind, period_start=period.start, horizon=horizon
    ).exists()


def forecast_snapshot_record(
    *, organization: Organization, period: Period, horizon: str, now: dt.datetime | None = None
) -> int:
    """Record every member's system forecast of `period` at `horizon`; return the rows inserted.

    Returns 0 without writing when the horizon has not come yet, falls before the period,
    or is already recorded. Rows already present are kept (insert-or-ignore on the key),
    so two concurrent runs write each row once.
    """
    now = now or timezone.now()
    as_of = horizon_instant(organization, period, horizon)
    if as_of is None or as_of > now:
        # The horizon is not part of this period, or lies in the future.
        return 0
    if snapshot_exists(period=period, horizon=horizon):
        # Recorded before: a snapshot is taken once.
        return 0

    figures = system_forecast_as_of(organization=organization, period=period, as_of=as_of)
    member_ids = set(Membership.objects.values_list("pk", flat=True)) & (
        set(figures) | set(Membership.objects.exclude(role="admin").values_list("pk", flat=True))
    )
    is_reconstructed = now - as_of > RECORDED_LATE_AFTER
    rows = []
    for member_id in sorted(member_ids):
        weighted, won = figures.get(member_id, (ZERO, ZERO))
        rows.append(
            ForecastSnapshot(
                organization=organization,
                membership_id=member_id,
                period_kind=period.kind,
                period_start=period.start,
                horizon=horizon,
                as_of=as_of,
                weighted_pipeline_amount=round_half_up(weighted, 2),
                won_amount=won,
                forecast_amount=round_half_up(weighted + won, 2),
                is_reconstructed=is_reconstructed,
            )
        )
    ForecastSnapshot.objects.bulk_create(rows, ignore_conflicts=True)
    logger.info(
        "Forecast snapshot recorded organization_id=%s period=%s horizon=%s rows=%s reconstructed=%s",
        organization.pk,
        period.label,
        horizon,
        len(rows),
        is_reconstructed,
    )
    return len(rows)


def forecast_snapshots_due_record(*, organization: Organization, kind: str, now: dt.datetime | None = None) -> int:
    """Record the horizons that have come in the current and the previous period; return rows inserted.

    The previous period is included so that a horizon missed while the schedule was
    down is still recorded, as a reconstruction.
    """
    now = now or timezone.now()
    today = timezone.localtime(now, organization.tzinfo).date()
    current = period_containing(today, kind, organization.fiscal_year_start_month)
    previous = period_containing(current.start - dt.timedelta(days=1), kind, organization.fiscal_year_start_month)
    inserted = 0
    for period in (previous, current):
        for horizon in HORIZON_DAYS_BEFORE_END:
            inserted += forecast_snapshot_record(organization=organization, period=period, horizon=horizon, now=now)
    return inserted


def forecast_snapshot_backfill(
    *, organization: Organization, periods: list[Period], now: dt.datetime | None = None
) -> int:
    """Reconstruct the snapshots of past `periods` from the stage history; return rows inserted.

    Horizons already recorded are kept. The rows are marked as reconstructed.
    """
    inserted = 0
    for period in periods:
        for horizon in HORIZON_DAYS_BEFORE_END:
            inserted += forecast_snapshot_record(organization=organization, period=period, horizon=horizon, now=now)
    return inserted
