"""KPI snapshot recompute: set-based aggregates of an organization's deals into KpiSnapshot rows.

Every number comes from a handful of grouped ORM aggregates. The deal filters
are the ones in `dashboards.selectors`, so the drill-down lists match the rows
written here. Deals are never iterated in Python: only aggregated rows (subject
× month) are, to roll months up into fiscal quarters and years.
"""

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Max, Min, QuerySet, Sum, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone
from django_scopes import scope

from dashboards.models import Grain, KpiSnapshot
from dashboards.selectors import (
    METRIC_CLOSED,
    METRIC_STATUSES,
    METRIC_WON,
    ORGANIZATION_SUBJECT_ID,
    SUBJECT_FIELDS,
    deal_filter_closed_between,
)
from goals.models import Team, Territory
from pipelines.models import Deal, DealStatus
from spm.db_functions import DaysBetween, Median
from spm.fiscal import MONTH, QUARTER, YEAR, Period, period_containing, periods_covering
from spm.models import Membership, Organization

logger = logging.getLogger(__name__)

PERIOD_KINDS = (YEAR, QUARTER, MONTH)
GRAINS = (Grain.ORGANIZATION, Grain.TERRITORY, Grain.TEAM, Grain.REP)

# Advisory lock keys share one bigint space across the database. The high 32 bits
# spell "KPI" in ASCII, so a lock keyed by a plain row id below 2**32 never collides.
_LOCK_KEY_BASE = 0x4B5049 << 32
_CYCLE_DAYS_PLACES = Decimal("0.000001")
_UPSERT_BATCH_SIZE = 1000
_DELETE_BATCH_SIZE = 500


@dataclass
class _Components:
    """Additive KPI components of one subject in one period; amounts in the base currency."""

    won_count: int = 0
    lost_count: int = 0
    won_amount: Decimal = Decimal("0")
    lost_amount: Decimal = Decimal("0")
    cycle_days_sum: Decimal = Decimal("0")
    open_count: int = 0
    open_amount: Decimal = Decimal("0")


@dataclass(frozen=True)
class _Calendar:
    """The months, fiscal quarters and fiscal years that the organization's deals span.

    `months[i]` has UTC bounds `month_bounds[i]`. `period_of[kind][i]` is the
    period of that kind containing month i, and `last_month[kind][period]` is
    the index of the period's last month inside the span.
    """

    time_zone: dt.tzinfo
    months: list[Period]
    month_bounds: list[tuple[dt.datetime, dt.datetime]]
    periods: dict[str, list[Period]]
    period_of: dict[str, list[Period]]
    last_month: dict[str, dict[Period, int]]


def kpi_snapshot_recompute(*, organization: Organization) -> dict:
    """Recompute every KpiSnapshot row of `organization` and delete rows no longer produced.

    Covers each fiscal year, fiscal quarter and calendar month from the one
    containing the earliest local creation or close date of a deal to the one
    containing the latest, for the organization, territory, team and rep grains.
    A deal counts as won or lost in P when the local date of `closed_at` is in
    P, and as open at P's end when created before the end and not closed before
    it. Amounts are sums of `base_amount` in the base currency, and a missing
    amount adds nothing. Cycle days are fractional days from `created_at` to
    `closed_at` of won deals. A subject gets a row for a period only when it has
    a won, lost or open deal there. Deals without a team or territory are left
    out of that grain only.

    Runs in one transaction. On PostgreSQL an advisory lock per organization
    makes concurrent runs wait for each other, so both leave identical rows.
    Returns counts and the duration in seconds.
    """
    # NOTE: 300,000 synthetic deals (40 reps, 4 years) took 7.2 s on PostgreSQL 15 on a
    # shared 2-core dev machine, about half in the 12 median queries, so a million deals
    # likely exceeds 15 s. GROUPING SETS (PostgreSQL only) would cut the medians to 3 scans.
    started = time.monotonic()
    logger.info("KPI snapshot recompute started organization_id=%s", organization.pk)

    with scope(organization=organization), transaction.atomic():
        _lock_organization(organization)
        snapshots, period_count = _snapshots_build(organization)
        rows_deleted = _snapshots_delete_stale(organization, snapshots)
        KpiSnapshot.objects.bulk_create(
            snapshots,
            batch_size=_UPSERT_BATCH_SIZE,
            update_conflicts=True,
            unique_fields=["organization", "period_kind", "period_start", "grain", "subject_id"],
            update_fields=[
                "period_end",
                "subject_name",
                "won_count",
                "lost_count",
                "won_amount",
                "lost_amount",
                "cycle_days_sum",
                "cycle_days_median",
                "open_count",
                "open_amount",
                "computed_at",
            ],
        )

    duration_seconds = time.monotonic() - started
    logger.info(
        "KPI snapshot recompute finished organization_id=%s periods=%s rows_written=%s rows_deleted=%s duration_ms=%d",
        organization.pk,
        period_count,
        len(snapshots),
        rows_deleted,
        duration_seconds * 1000,
    )
    return {
        "organization_id": organization.pk,
        "periods": period_count,
        "rows_written": len(snapshots),
        "rows_deleted": rows_deleted,
        "duration_seconds": round(duration_seconds, 3),
    }


def _lock_organization(organization: Organization) -> None:
    """Serialize recomputes of one organization until the transaction ends (PostgreSQL only).

    SQLite allows one writing transaction at a time anyway. JIT compilation is
    switched off because it added most of a second to each of these aggregate
    queries at a million deals, and saved nothing.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY_BASE + organization.pk])
        cursor.execute("SET LOCAL jit = off")


def _snapshots_build(organization: Organization) -> tuple[list[KpiSnapshot], int]:
    """Aggregate the deals into unsaved KpiSnapshot rows; return them and the number of periods."""
    deals = Deal.objects.filter(organization=organization).order_by()
    calendar = _calendar_build(organization, deals)
    # No deals: nothing to report, and every existing row is stale.
    if calendar is None:
        return [], 0

    components: dict[tuple[str, Period, str, int], _Components] = defaultdict(_Components)
    _closed_add(components, deals, calendar)
    _open_add(components, deals, calendar)
    medians = _medians_query(deals, calendar)
    names = _subject_names(organization)

    snapshots = []
    for (kind, period, grain, subject_id), values in components.items():
        if not (values.won_count or values.lost_count or values.open_count):
            continue
        snapshots.append(
            KpiSnapshot(
                organization=organization,
                period_kind=kind,
                period_start=period.start,
                period_end=period.end,
                grain=grain,
                subject_id=subject_id,
                subject_name=names[grain].get(subject_id, str(subject_id))[:200],
                won_count=values.won_count,
                lost_count=values.lost_count,
                won_amount=values.won_amount,
                lost_amount=values.lost_amount,
                cycle_days_sum=values.cycle_days_sum.quantize(_CYCLE_DAYS_PLACES, ROUND_HALF_UP),
                cycle_days_median=medians.get((kind, period, grain, subject_id)),
                open_count=values.open_count,
                open_amount=values.open_amount,
            )
        )
    return snapshots, sum(len(periods) for periods in calendar.periods.values())


def _calendar_build(organization: Organization, deals: QuerySet[Deal]) -> _Calendar | None:
    """Find the span of the deals' local creation and close dates, and the periods it covers."""
    span = deals.aggregate(
        first_created=Min("created_at"),
        last_created=Max("created_at"),
        first_closed=Min("closed_at"),
        last_closed=Max("closed_at"),
    )
    moments = [moment for moment in span.values() if moment is not None]
    if not moments:
        return None

    time_zone = organization.tzinfo
    start_month = organization.fiscal_year_start_month
    first_day = timezone.localtime(min(moments), time_zone).date()
    last_day = timezone.localtime(max(moments), time_zone).date()

    # Months run over the whole first and last fiscal year, so that every
    # quarter and year is made of whole months.
    first_year = period_containing(first_day, YEAR, start_month)
    last_year = period_containing(last_day, YEAR, start_month)
    months = periods_covering(first_year.start, last_year.last_day, MONTH, start_month)
    periods = {kind: periods_covering(first_day, last_day, kind, start_month) for kind in PERIOD_KINDS}

    period_of: dict[str, list[Period]] = {}
    last_month: dict[str, dict[Period, int]] = {}
    for kind in PERIOD_KINDS:
        period_of[kind] = [period_containing(month.start, kind, start_month) for month in months]
        last_month[kind] = {}
        for index, period in enumerate(period_of[kind]):
            last_month[kind][period] = index

    return _Calendar(
        time_zone=time_zone,
        months=months,
        month_bounds=[month.utc_bounds(time_zone) for month in months],
        periods=periods,
        period_of=period_of,
        last_month=last_month,
    )


def _subjects_of(row: dict) -> list[tuple[str, int]]:
    """Return the (grain, subject id) pairs that an aggregated row of `_GROUP_FIELDS` counts towards."""
    subjects = [(Grain.ORGANIZATION, ORGANIZATION_SUBJECT_ID)]
    for grain in (Grain.TERRITORY, Grain.TEAM, Grain.REP):
        subject_id = row[SUBJECT_FIELDS[grain]]
        if subject_id is not None:
            subjects.append((grain, subject_id))
    return subjects


# The owner determines the team, so grouping by these three yields one row per
# (rep, territory) and month, from which every grain is summed up in Python.
_GROUP_FIELDS = (SUBJECT_FIELDS[Grain.REP], SUBJECT_FIELDS[Grain.TEAM], SUBJECT_FIELDS[Grain.TERRITORY])


def _closed_add(components: dict, deals: QuerySet[Deal], calendar: _Calendar) -> None:
    """Add won and lost counts, amounts and cycle days, per subject and month, rolled up to every period."""
    span_start, span_end = calendar.month_bounds[0][0], calendar.month_bounds[-1][1]
    month_of_close = Case(
        *[
            When(deal_filter_closed_between(start_utc, end_utc), then=Value(index))
            for index, (start_utc, end_utc) in enumerate(calendar.month_bounds)
        ],
        output_field=IntegerField(),
    )
    closed = (
        deals.filter(status__in=METRIC_STATUSES[METRIC_CLOSED])
        .filter(deal_filter_closed_between(span_start, span_end))
        .annotate(month=month_of_close)
        .values(*_GROUP_FIELDS, "month", "status")
        .annotate(
            deal_count=Count("id"),
            amount=Sum("base_amount"),
            cycle_days=Sum(DaysBetween("created_at", "closed_at")),
        )
        .order_by()
    )

    for row in closed:
        amount = row["amount"] or Decimal("0")
        is_won = row["status"] == DealStatus.WON
        cycle_days = _to_decimal(row["cycle_days"]) if is_won else Decimal("0")
        for kind in PERIOD_KINDS:
            period = calendar.period_of[kind][row["month"]]
            for grain, subject_id in _subjects_of(row):
                values = components[(kind, period, grain, subject_id)]
                if is_won:
                    values.won_count += row["deal_count"]
                    values.won_amount += amount
                    values.cycle_days_sum += cycle_days
                else:
                    values.lost_count += row["deal_count"]
                    values.lost_amount += amount


def _open_add(components: dict, deals: QuerySet[Deal], calendar: _Calendar) -> None:
    """Add the deals open at each period's end, as a running sum of created minus closed per month.

    A deal is open at instant E when `created_at < E` and not `closed_at < E`.
    It enters the running sum in the month containing `created_at` (or the
    first month, if created earlier) and leaves it in the month containing
    `max(created_at, closed_at)`: from then on both conditions hold. This
    equals `selectors.deal_filter_open_at(E)` at every month end, and the tests
    compare the two.
    """
    month_count = len(calendar.months)
    created = (
        deals.annotate(month=_first_month_ending_after("created_at", calendar))
        .values(*_GROUP_FIELDS, "month")
        .annotate(deal_count=Count("id"), amount=Sum("base_amount"))
        .order_by()
    )
    left = (
        deals.filter(closed_at__isnull=False)
        .annotate(left_at=Greatest("created_at", "closed_at"))
        .annotate(month=_first_month_ending_after("left_at", calendar))
        .values(*_GROUP_FIELDS, "month")
        .annotate(deal_count=Count("id"), amount=Sum("base_amount"))
        .order_by()
    )

    count_changes: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * month_count)
    amount_changes: dict[tuple[str, int], list[Decimal]] = defaultdict(lambda: [Decimal("0")] * month_count)
    for rows, sign in ((created, 1), (left, -1)):
        for row in rows:
            # Times at or after the last month's end do not occur: the calendar spans every date.
            if row["month"] is None:
                continue
            for subject in _subjects_of(row):
                count_changes[subject][row["month"]] += sign * row["deal_count"]
                amount_changes[subject][row["month"]] += sign * (row["amount"] or Decimal("0"))

    for (grain, subject_id), changes in count_changes.items():
        open_counts = _running_sum(changes, 0)
        open_amounts = _running_sum(amount_changes[(grain, subject_id)], Decimal("0"))
        for kind in PERIOD_KINDS:
            for period in calendar.periods[kind]:
                month = calendar.last_month[kind][period]
                if open_counts[month]:
                    values = components[(kind, period, grain, subject_id)]
                    values.open_count = open_counts[month]
                    values.open_amount = open_amounts[month]


def _first_month_ending_after(field: str, calendar: _Calendar) -> Case:
    """Index of the first month whose UTC end is after `field`: its month, or 0 for earlier times."""
    return Case(
        *[When(**{f"{field}__lt": end_utc}, then=Value(index)) for index, (_start, end_utc) in enumerate(calendar.month_bounds)],
        output_field=IntegerField(),
    )


def _running_sum(changes: list, zero):
    total, totals = zero, []
    for change in changes:
        total += change
        totals.append(total)
    return totals


def _medians_query(deals: QuerySet[Deal], calendar: _Calendar) -> dict[tuple[str, Period, str, int], Decimal]:
    """Median cycle days of deals won in each period, per grain and subject; one query per kind and grain.

    A median cannot be rolled up from months, so each period kind is bucketed
    on its own UTC bounds.
    """
    medians = {}
    for kind in PERIOD_KINDS:
        periods = calendar.periods[kind]
        bounds = [period.utc_bounds(calendar.time_zone) for period in periods]
        period_of_close = Case(
            *[
                When(deal_filter_closed_between(start_utc, end_utc), then=Value(index))
                for index, (start_utc, end_utc) in enumerate(bounds)
            ],
            output_field=IntegerField(),
        )
        won = deals.filter(status__in=METRIC_STATUSES[METRIC_WON]).filter(
            deal_filter_closed_between(bounds[0][0], bounds[-1][1])
        )
        for grain in GRAINS:
            group_fields = [] if grain == Grain.ORGANIZATION else [SUBJECT_FIELDS[grain]]
            subject_deals = won.filter(**{f"{field}__isnull": False for field in group_fields})
            rows = (
                subject_deals.annotate(period=period_of_close)
                .values(*group_fields, "period")
                .annotate(median=Median(DaysBetween("created_at", "closed_at")))
                .order_by()
            )
            for row in rows:
                subject_id = row[group_fields[0]] if group_fields else ORGANIZATION_SUBJECT_ID
                if row["median"] is not None:
                    medians[(kind, periods[row["period"]], grain, subject_id)] = _to_decimal(row["median"]).quantize(
                        _CYCLE_DAYS_PLACES, ROUND_HALF_UP
                    )
    return medians


def _subject_names(organization: Organization) -> dict[str, dict[int, str]]:
    """Display names per grain and subject id: a rep is shown by name, else by e-mail."""
    reps = {
        pk: name or email
        for pk, name, email in Membership.objects.filter(organization=organization).values_list(
            "id", "user__name", "user__email"
        )
    }
    return {
        Grain.ORGANIZATION: {ORGANIZATION_SUBJECT_ID: organization.name},
        Grain.TERRITORY: dict(Territory.objects.filter(organization=organization).values_list("id", "name")),
        Grain.TEAM: dict(Team.objects.filter(organization=organization).values_list("id", "name")),
        Grain.REP: reps,
    }


def _snapshots_delete_stale(organization: Organization, snapshots: list[KpiSnapshot]) -> int:
    """Delete the organization's rows whose key this run did not produce; return how many."""
    produced = {
        (snapshot.period_kind, snapshot.period_start, snapshot.grain, snapshot.subject_id) for snapshot in snapshots
    }
    existing = KpiSnapshot.objects.filter(organization=organization).values_list(
        "id", "period_kind", "period_start", "grain", "subject_id"
    )
    stale_ids = [pk for pk, *key in existing if tuple(key) not in produced]
    for offset in range(0, len(stale_ids), _DELETE_BATCH_SIZE):
        KpiSnapshot.objects.filter(id__in=stale_ids[offset : offset + _DELETE_BATCH_SIZE]).delete()
    return len(stale_ids)


def _to_decimal(value) -> Decimal:
    """Convert a database float (SQLite) or numeric (PostgreSQL) to Decimal without binary noise."""
    if value is None:
        return Decimal("0")
    return value if isinstance(value, Decimal) else Decimal(repr(value))
