"""KPI snapshot recompute: set-based aggregates of an organization's deals into KpiSnapshot rows.

Every number comes from a handful of grouped ORM aggregates. The deal filters
are the ones in `dashboards.selectors`, so the drill-down lists match the rows
written here. Deals are never iterated in Python: only aggregated rows (subject
× month) are, to roll months up into fiscal quarters and years.
"""

import datetime as dt
import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection, models, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
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
    deal_filter_for_subject,
)
from goals.models import Team, Territory
from pipelines.models import Deal, DealStatus
from spm.date_limits import EARLIEST_DATE, LATEST_COMPUTABLE_DATE
from spm.db_functions import Median
from spm.fiscal import (
    MONTH,
    QUARTER,
    YEAR,
    Period,
    local_midnight,
    period_containing,
    periods_covering,
)
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

# Deals whose created_at or closed_at lies outside EARLIEST_DATE to LATEST_COMPUTABLE_DATE
# (local dates) are left out of every snapshot. Imports reject such dates, but rows stored
# before they did may hold a year such as 0001 or 9999, whose fiscal periods do not fit
# `datetime.date`, and one such deal would otherwise fail the recompute of its organization.
# The same condition for the SQL statements, with the parameters of `_computable_bounds`.
_COMPUTABLE_SQL = (
    "AND d.created_at >= %(computable_from)s AND d.created_at < %(computable_until)s"
    " AND (d.closed_at IS NULL OR (d.closed_at >= %(computable_from)s AND d.closed_at < %(computable_until)s))"
)


def _computable_bounds(organization: Organization) -> dict[str, dt.datetime]:
    """Return the UTC instants from which and until which a deal's dates are computable, as SQL parameters."""
    time_zone = organization.tzinfo
    return {
        "computable_from": local_midnight(EARLIEST_DATE, time_zone),
        "computable_until": local_midnight(LATEST_COMPUTABLE_DATE + dt.timedelta(days=1), time_zone),
    }


def _computable_deals(organization: Organization) -> QuerySet[Deal]:
    """Return the organization's deals that snapshots count: those with computable dates (see _COMPUTABLE_SQL).

    Logs a warning with the number of deals left out, so that an admin can find and fix them.
    """
    bounds = _computable_bounds(organization)
    in_range = Q(created_at__gte=bounds["computable_from"], created_at__lt=bounds["computable_until"]) & (
        Q(closed_at__isnull=True) | Q(closed_at__gte=bounds["computable_from"], closed_at__lt=bounds["computable_until"])
    )
    deals = Deal.objects.filter(organization=organization).order_by()
    skipped = deals.exclude(in_range).count()
    if skipped:
        logger.warning(
            "KPI snapshots skip deals with dates outside %s to %s organization_id=%s deals=%s",
            EARLIEST_DATE.isoformat(),
            LATEST_COMPUTABLE_DATE.isoformat(),
            organization.pk,
            skipped,
        )
    return deals.filter(in_range)


class CycleDays(models.Func):
    """Days from the first timestamp to the second as a float, for medians.

    On PostgreSQL the `_GRAIN_SQL` statement spells the same expression, so the
    ORM and SQL paths sort identical doubles.
    """

    output_field = models.FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        start_sql, start_params = compiler.compile(self.source_expressions[0])
        end_sql, end_params = compiler.compile(self.source_expressions[1])
        return f"(date_part('epoch', {end_sql} - {start_sql}) / 86400.0)", (*end_params, *start_params)

    def as_sqlite(self, compiler, connection, **extra_context):
        start_sql, start_params = compiler.compile(self.source_expressions[0])
        end_sql, end_params = compiler.compile(self.source_expressions[1])
        return f"(julianday({end_sql}) - julianday({start_sql}))", (*end_params, *start_params)


# Sales cycles are summed as durations, which is exact to the microsecond; `_days_of`
# turns the sum into days. Summing fractional days per deal would round every term.
_CYCLE_SUM = Sum(F("closed_at") - F("created_at"), output_field=DurationField())
_MICROSECONDS_PER_DAY = Decimal(86_400_000_000)


def _days_of(duration: dt.timedelta | None) -> Decimal:
    """Exact days of a summed duration; None (no won deal) is 0."""
    if duration is None:
        return Decimal("0")
    return Decimal(duration // dt.timedelta(microseconds=1)) / _MICROSECONDS_PER_DAY


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
    containing the organization's local today (or the latest such date, if it
    lies after today), for the organization, territory, team and rep grains.
    A deal counts as won or lost in P when the local date of `closed_at` is in
    P, and as open at P's end when created before the end and not closed before
    it. Amounts are sums of `base_amount` in the base currency, and a missing
    amount adds nothing. Cycle days are fractional days from `created_at` to
    `closed_at` of won deals. A subject gets a row for a period only when it has
    a won, lost or open deal there. Deals without a team or territory are left
    out of that grain only.

    On PostgreSQL each grain is one aggregate statement that runs in the
    database (see `_GRAIN_SQL`); elsewhere grouped ORM aggregates are rolled
    up in Python. Both write the same rows. Runs in one transaction. On
    PostgreSQL an advisory lock per organization makes concurrent runs wait for
    each other, so both leave identical rows. Bumps the organization's KPI data
    version after commit. Returns counts and the duration in seconds.
    """
    started = time.monotonic()
    logger.info("KPI snapshot recompute started organization_id=%s", organization.pk)

    in_caller_transaction = connection.in_atomic_block
    with scope(organization=organization), transaction.atomic():
        _lock_organization(organization)
        if connection.vendor == "postgresql":
            rows_written, rows_deleted, period_count = _snapshots_write_postgresql(organization)
        else:
            rows_written, rows_deleted, period_count = _snapshots_write_orm(organization)
        _data_version_bump_now_and_after_commit(organization.pk, in_caller_transaction=in_caller_transaction)

    duration_seconds = time.monotonic() - started
    logger.info(
        "KPI snapshot recompute finished organization_id=%s periods=%s rows_written=%s rows_deleted=%s duration_ms=%d",
        organization.pk,
        period_count,
        rows_written,
        rows_deleted,
        duration_seconds * 1000,
    )
    return {
        "organization_id": organization.pk,
        "periods": period_count,
        "rows_written": rows_written,
        "rows_deleted": rows_deleted,
        "duration_seconds": round(duration_seconds, 3),
    }


def _snapshots_write_orm(organization: Organization) -> tuple[int, int, int]:
    """Build the rows with ORM aggregates, upsert them and delete stale ones; return (written, deleted, periods)."""
    snapshots, period_count = _snapshots_build(organization)
    rows_deleted = _snapshots_delete_stale(organization, snapshots)
    _snapshots_upsert(snapshots)
    return len(snapshots), rows_deleted, period_count


def _snapshots_upsert(snapshots: list[KpiSnapshot]) -> None:
    KpiSnapshot.objects.bulk_create(
        snapshots,
        batch_size=_UPSERT_BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["organization", "period_kind", "period_start", "grain", "subject_id"],
        update_fields=_VALUE_FIELDS,
    )


_VALUE_FIELDS = [
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
]


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
        # The percentile sorts of a grain hold about 700,000 rows at a million deals;
        # in memory they take a quarter of the time they take spilled to disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")


def _snapshots_build(organization: Organization) -> tuple[list[KpiSnapshot], int]:
    """Aggregate the deals into unsaved KpiSnapshot rows; return them and the number of periods."""
    deals = _computable_deals(organization)
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
    """Find the span from the deals' first local creation or close date to today, and the periods it covers.

    A deal open at a period's end counts in that period even when nothing happened in it.
    So the span runs on to the period containing the organization's local today, or to
    the latest creation or close date if that lies after today. Periods after today are
    left out: nothing can be counted in them yet. Returns None without deals.
    """
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
    last_day = max(timezone.localtime(max(moments), time_zone).date(), timezone.localdate(timezone=time_zone))

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
            cycle=_CYCLE_SUM,
        )
        .order_by()
    )

    for row in closed:
        amount = row["amount"] or Decimal("0")
        is_won = row["status"] == DealStatus.WON
        cycle_days = _days_of(row["cycle"]) if is_won else Decimal("0")
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
                .annotate(median=Median(CycleDays("created_at", "closed_at")))
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


# --- PostgreSQL: one aggregate statement per grain ------------------------------------------------

# The subject of each grain as a column of the deal (`d`) or its owner's membership (`m`).
_GRAIN_SUBJECT_SQL = {
    Grain.ORGANIZATION: "0",
    Grain.TERRITORY: "d.territory_id",
    Grain.TEAM: "m.team_id",
    Grain.REP: "d.owner_id",
}
# Display name of a subject: the same choice as `_subject_names` (a rep by name, else e-mail).
_GRAIN_NAME_SQL = {
    Grain.ORGANIZATION: "SELECT 0::bigint AS subject_id, %(organization_name)s::text AS name",
    Grain.TERRITORY: "SELECT id AS subject_id, name FROM goals_territory WHERE organization_id = %(organization_id)s",
    Grain.TEAM: "SELECT id AS subject_id, name FROM goals_team WHERE organization_id = %(organization_id)s",
    Grain.REP: (
        "SELECT ms.id AS subject_id, COALESCE(NULLIF(u.name, ''), u.email) AS name"
        " FROM spm_membership ms JOIN spm_user u ON u.id = ms.user_id WHERE ms.organization_id = %(organization_id)s"
    ),
}

# One grain's rows in one statement. Each deal is placed in its months by binary search
# over the months' UTC starts (width_bucket), which is the local-date rule of the
# calendar and much cheaper per row than a time zone conversion. Won and lost sums
# are grouped per subject and month and rolled up to quarters and years; cycle days
# are summed as intervals, which is exact, and divided once per row written. Medians
# need the deals themselves: one sort of the won deals per grain serves month,
# quarter and year, because they nest (GROUPING SETS over year ⊃ quarter ⊃ month).
# Open at a period end is a running sum over months of (created − left), where a
# deal leaves in the month of max(created_at, closed_at): the rule of `_open_add`.
# The median goes through text so that its digits are the shortest exact spelling of
# the double, as Python's repr() gives them to the ORM path.
_SNAPSHOT_COLUMNS_SQL = """organization_id, period_kind, period_start, period_end, grain, subject_id, subject_name,
    won_count, lost_count, won_amount, lost_amount, cycle_days_sum, cycle_days_median,
    open_count, open_amount, computed_at"""
# The grain's rows go into a temporary table first: PostgreSQL 15 runs the SELECT of an
# INSERT ... SELECT without parallel workers, but that of CREATE TABLE ... AS with them.
# Each reference to `deals` scans the organization's partition again, in parallel, which
# took about two thirds of the time of one materialized scan read four times (1M deals,
# 2 cores, 2026-12-05).
_GRAIN_SQL = """
CREATE TEMPORARY TABLE kpi_grain_rows (""" + _SNAPSHOT_COLUMNS_SQL + """) ON COMMIT DROP AS
WITH periods AS (
    SELECT * FROM unnest(%(kinds)s::text[], %(starts)s::date[], %(ends)s::date[], %(last_months)s::int[])
        AS p(kind, period_start, period_end, last_month)
),
months AS (
    SELECT * FROM unnest(%(month_numbers)s::int[], %(quarter_starts)s::date[], %(year_starts)s::date[],
        %(month_starts)s::date[]) AS m(month, quarter_start, year_start, month_start)
),
deals AS NOT MATERIALIZED (
    SELECT {subject} AS subject_id, d.status, d.base_amount, d.created_at, d.closed_at,
        width_bucket(d.created_at, %(month_starts_utc)s::timestamptz[]) AS created_month,
        width_bucket(GREATEST(d.created_at, d.closed_at), %(month_starts_utc)s::timestamptz[]) AS left_month,
        CASE WHEN d.status IN ('won', 'lost') AND d.closed_at >= %(span_start)s AND d.closed_at < %(span_end)s
            THEN width_bucket(d.closed_at, %(month_starts_utc)s::timestamptz[]) END AS closed_month
    FROM pipelines_deal d {join}
    WHERE d.organization_id = %(organization_id)s AND d.deleted_at IS NULL {subject_filter} {computable}
),
closed_months AS (
    SELECT subject_id, closed_month AS month,
        COUNT(*) FILTER (WHERE status = 'won') AS won_count,
        COUNT(*) FILTER (WHERE status = 'lost') AS lost_count,
        SUM(base_amount) FILTER (WHERE status = 'won') AS won_amount,
        SUM(base_amount) FILTER (WHERE status = 'lost') AS lost_amount,
        SUM(closed_at - created_at) FILTER (WHERE status = 'won') AS cycle
    FROM deals
    WHERE closed_month IS NOT NULL
    GROUP BY subject_id, closed_month
),
closed_rows AS (
    SELECT c.subject_id,
        CASE WHEN GROUPING(m.month_start) = 0 THEN 'month' WHEN GROUPING(m.quarter_start) = 0 THEN 'quarter'
            ELSE 'year' END AS kind,
        COALESCE(m.month_start, m.quarter_start, m.year_start) AS period_start,
        SUM(c.won_count) AS won_count, SUM(c.lost_count) AS lost_count,
        COALESCE(SUM(c.won_amount), 0) AS won_amount, COALESCE(SUM(c.lost_amount), 0) AS lost_amount,
        COALESCE(EXTRACT(EPOCH FROM SUM(c.cycle)) / 86400.00000000000000000000, 0) AS cycle_days_sum
    FROM closed_months c JOIN months m ON m.month = c.month
    GROUP BY GROUPING SETS ((c.subject_id, m.month_start), (c.subject_id, m.quarter_start), (c.subject_id, m.year_start))
),
medians AS (
    SELECT d.subject_id,
        CASE WHEN GROUPING(m.month_start) = 0 THEN 'month' WHEN GROUPING(m.quarter_start) = 0 THEN 'quarter'
            ELSE 'year' END AS kind,
        COALESCE(m.month_start, m.quarter_start, m.year_start) AS period_start,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY (date_part('epoch', d.closed_at - d.created_at) / 86400.0))
            AS cycle_days_median
    FROM deals d JOIN months m ON m.month = d.closed_month
    WHERE d.status = 'won'
    GROUP BY GROUPING SETS (
        (d.subject_id, m.year_start),
        (d.subject_id, m.year_start, m.quarter_start),
        (d.subject_id, m.year_start, m.quarter_start, m.month_start)
    )
),
changes AS (
    SELECT subject_id, month, SUM(deal_count) AS deal_count, SUM(amount) AS amount
    FROM (
        SELECT subject_id, created_month AS month, COUNT(*) AS deal_count, SUM(COALESCE(base_amount, 0)) AS amount
        FROM deals GROUP BY subject_id, created_month
        UNION ALL
        SELECT subject_id, left_month, -COUNT(*), -SUM(COALESCE(base_amount, 0))
        FROM deals WHERE closed_at IS NOT NULL GROUP BY subject_id, left_month
    ) created_and_left
    GROUP BY subject_id, month
),
running AS (
    SELECT s.subject_id, m.month,
        SUM(COALESCE(c.deal_count, 0)) OVER w AS open_count,
        SUM(COALESCE(c.amount, 0)) OVER w AS open_amount
    FROM (SELECT DISTINCT subject_id FROM changes) s
    CROSS JOIN months m
    LEFT JOIN changes c ON c.subject_id = s.subject_id AND c.month = m.month
    WINDOW w AS (PARTITION BY s.subject_id ORDER BY m.month)
),
open_rows AS (
    SELECT r.subject_id, p.kind, p.period_start, r.open_count, r.open_amount
    FROM running r JOIN periods p ON p.last_month = r.month
    WHERE r.open_count <> 0
),
combined AS (
    SELECT COALESCE(c.subject_id, o.subject_id) AS subject_id,
        COALESCE(c.kind, o.kind) AS kind,
        COALESCE(c.period_start, o.period_start) AS period_start,
        COALESCE(c.won_count, 0) AS won_count, COALESCE(c.lost_count, 0) AS lost_count,
        COALESCE(c.won_amount, 0) AS won_amount, COALESCE(c.lost_amount, 0) AS lost_amount,
        COALESCE(c.cycle_days_sum, 0) AS cycle_days_sum,
        COALESCE(o.open_count, 0) AS open_count, COALESCE(o.open_amount, 0) AS open_amount
    FROM closed_rows c
    FULL JOIN open_rows o ON o.subject_id = c.subject_id AND o.kind = c.kind AND o.period_start = c.period_start
),
names AS ({names})
SELECT %(organization_id)s, x.kind, x.period_start, p.period_end, %(grain)s, x.subject_id,
    LEFT(COALESCE(n.name, x.subject_id::text), 200),
    x.won_count, x.lost_count, x.won_amount, x.lost_amount,
    round(x.cycle_days_sum, 6), round(md.cycle_days_median::text::numeric, 6),
    x.open_count, x.open_amount, %(computed_at)s
FROM combined x
JOIN periods p ON p.kind = x.kind AND p.period_start = x.period_start
LEFT JOIN medians md ON md.subject_id = x.subject_id AND md.kind = x.kind AND md.period_start = x.period_start
LEFT JOIN names n ON n.subject_id = x.subject_id
"""
_GRAIN_INSERT_SQL = """
INSERT INTO dashboards_kpisnapshot (""" + _SNAPSHOT_COLUMNS_SQL + """)
SELECT * FROM kpi_grain_rows
ON CONFLICT (organization_id, period_kind, period_start, grain, subject_id) DO UPDATE SET
    period_end = EXCLUDED.period_end, subject_name = EXCLUDED.subject_name,
    won_count = EXCLUDED.won_count, lost_count = EXCLUDED.lost_count,
    won_amount = EXCLUDED.won_amount, lost_amount = EXCLUDED.lost_amount,
    cycle_days_sum = EXCLUDED.cycle_days_sum, cycle_days_median = EXCLUDED.cycle_days_median,
    open_count = EXCLUDED.open_count, open_amount = EXCLUDED.open_amount, computed_at = EXCLUDED.computed_at
"""


def _grain_sql(grain: str) -> str:
    """The CREATE TABLE ... AS of `_GRAIN_SQL` for one grain; only the subject column and its join vary."""
    join = "JOIN spm_membership m ON m.id = d.owner_id" if grain == Grain.TEAM else ""
    subject = _GRAIN_SUBJECT_SQL[grain]
    subject_filter = "" if grain == Grain.ORGANIZATION else f"AND {subject} IS NOT NULL"
    return _GRAIN_SQL.format(
        subject=subject, join=join, subject_filter=subject_filter, names=_GRAIN_NAME_SQL[grain], computable=_COMPUTABLE_SQL
    )


def _snapshots_write_postgresql(organization: Organization) -> tuple[int, int, int]:
    """Write every grain's rows with one aggregate and one INSERT each, delete the rows not written; return (written, deleted, periods).

    Rows this run wrote carry one `clock_timestamp()` read at its start in
    `computed_at` (unlike `now()`, it differs between two runs in one
    transaction), so every other row of the organization is stale.
    """
    deals = _computable_deals(organization)
    calendar = _calendar_build(organization, deals)
    rows_written = 0
    with connection.cursor() as cursor:
        # Hash joins whatever the statistics say: right after a big import the planner
        # estimates a handful of deals, and a nested loop over the month grid then takes minutes.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute("SELECT clock_timestamp()")
        computed_at = cursor.fetchone()[0]
        if calendar is not None:
            parameters = _calendar_parameters(organization, calendar)
            for grain in GRAINS:
                cursor.execute(_grain_sql(grain), {**parameters, "grain": str(grain), "computed_at": computed_at})
                cursor.execute(_GRAIN_INSERT_SQL)
                rows_written += cursor.rowcount
                cursor.execute("DROP TABLE kpi_grain_rows")
        cursor.execute(
            "DELETE FROM dashboards_kpisnapshot WHERE organization_id = %s AND computed_at <> %s",
            [organization.pk, computed_at],
        )
        rows_deleted = cursor.rowcount
    period_count = sum(len(periods) for periods in calendar.periods.values()) if calendar else 0
    return rows_written, rows_deleted, period_count


def _calendar_parameters(organization: Organization, calendar: _Calendar) -> dict:
    """Query parameters of `_GRAIN_SQL`: the periods with their last month, the months and the UTC span."""
    kinds, starts, ends, last_months = [], [], [], []
    for kind in PERIOD_KINDS:
        for period in calendar.periods[kind]:
            kinds.append(kind)
            starts.append(period.start)
            ends.append(period.end)
            # Months are numbered from 1, as width_bucket numbers them.
            last_months.append(calendar.last_month[kind][period] + 1)
    return {
        **_computable_bounds(organization),
        "organization_id": organization.pk,
        "organization_name": organization.name,
        "kinds": kinds,
        "starts": starts,
        "ends": ends,
        "last_months": last_months,
        "month_numbers": list(range(1, len(calendar.months) + 1)),
        "month_starts": [month.start for month in calendar.months],
        "quarter_starts": [period.start for period in calendar.period_of[QUARTER]],
        "year_starts": [period.start for period in calendar.period_of[YEAR]],
        "month_starts_utc": [start_utc for start_utc, _end_utc in calendar.month_bounds],
        "span_start": calendar.month_bounds[0][0],
        "span_end": calendar.month_bounds[-1][1],
    }


# --- Data version: the cache key part that changes with every recompute ----------------------


def _data_version_key(organization_id: int) -> str:
    return f"spm:kpi-data-version:{organization_id}"



def kpi_data_version(*, organization_id: int) -> str:
    """Return the organization's KPI data version: a token that changes whenever its snapshots change."""
    version = cache.get(_data_version_key(organization_id))
    if version is None:
        version = kpi_data_version_bump(organization_id=organization_id)
    return str(version)


def _data_version_bump_now_and_after_commit(organization_id: int, *, in_caller_transaction: bool) -> None:
    """Bump the KPI data version after commit and, inside a caller's transaction, also now.

    Within a caller's transaction (an eager task in a request or an import) the
    caller's own later reads must miss the cache before its commit. A worker's
    recompute commits its own transaction, so it bumps only after commit: a bump
    before it would let a dashboard request render and cache the old rows under
    the new version, and the next request render again after the commit.
    """
    if in_caller_transaction:
        kpi_data_version_bump(organization_id=organization_id)
    transaction.on_commit(lambda: kpi_data_version_bump(organization_id=organization_id))


def kpi_data_version_bump(*, organization_id: int) -> str:
    """Give the organization a new KPI data version, so cached dashboard fragments are not served again."""
    version = f"{time.time_ns():x}"
    cache.set(_data_version_key(organization_id), version, timeout=None)
    return version


def _deal_data_version_key(organization_id: int) -> str:
    return f"spm:deal-data-version:{organization_id}"


def deal_data_version(*, organization_id: int) -> str:
    """Return a token that changes whenever the organization's deals or its KPI snapshots change.

    Caches of deal lists use it. A deal change bumps it as soon as it commits,
    before the recompute has run. The dashboard fragments keep their KPI data
    version until the snapshots themselves change.
    """
    deals_version = cache.get(_deal_data_version_key(organization_id))
    if deals_version is None:
        deals_version = deal_data_version_bump(organization_id=organization_id)
    return f"{deals_version}-{kpi_data_version(organization_id=organization_id)}"


def deal_cache_key(*, organization: Organization, kind: str, selection: str) -> str:
    """Build the cache key of a value computed from the organization's deals.

    The key names the organization (with its creation time, so a reused id after a recreated
    database never meets old entries), the current deal data version, and a hash of
    `selection`: whatever else decides the value, such as visibility and filters.
    """
    created = organization.created_at.timestamp() if organization.created_at else 0
    version = deal_data_version(organization_id=organization.pk)
    digest = hashlib.sha256(selection.encode()).hexdigest()[:32]
    return f"spm:{kind}:{organization.pk}:{created:.6f}:{version}:{digest}"


def deal_data_version_bump(*, organization_id: int) -> str:
    """Give the organization a new deal data version, so cached deal-list totals are not served again."""
    version = f"{time.time_ns():x}"
    cache.set(_deal_data_version_key(organization_id), version, timeout=None)
    return version


# --- Incremental recompute: the periods and subjects that changed deals touch ------------------


def kpi_snapshot_recompute_deals(*, organization: Organization, deal_ids: Iterable[int], since: dt.datetime) -> dict:
    """Recompute only the snapshot rows that a change of `deal_ids` at or after `since` can alter.

    `since` is the earliest instant whose KPIs the change may move: for a stage
    move, the earlier of the move's time and the deal's `closed_at` before it.
    The subjects are the organization and each deal's current territory, team
    and rep (a change of owner or territory needs the full recompute). The
    periods are every month from the one containing `since` (local date) on, and
    every quarter and year that ends after that month starts. Won and lost
    components of those periods are aggregated from their deals; open counts
    continue the stored open count at the end of the month before, as a running
    sum of created minus left per month, exactly as the full recompute does.
    The rows are the ones `kpi_snapshot_recompute` would write, provided the
    stored rows were current before the change.

    When the change carried the data past its last month, the added months (and
    the quarters and years that contain them) are first recomputed for every
    subject, because open deals carry into them. Falls back to the full
    recompute when the change moves the first month of the organization's data
    or ends it earlier (the calendar shrinks). Locks like the full
    recompute, bumps the data version after commit, and returns counts, the
    duration and `mode` ("incremental" or "full").
    """
    started = time.monotonic()
    deal_ids = sorted(set(deal_ids))
    in_caller_transaction = connection.in_atomic_block
    with scope(organization=organization), transaction.atomic():
        _lock_organization(organization)
        deals = _computable_deals(organization)
        calendar = _calendar_build(organization, deals)
        added_from = None if calendar is None else _months_added_from(organization, calendar)
        if added_from is None:
            full = True
        else:
            full = False
            rows_written = rows_deleted = 0
            # The change carried the data into new months: every subject's open deals carry
            # into them, so those months are computed for every subject first.
            if added_from < len(calendar.months):
                everyone = _subjects_all(organization)
                snapshots, keys = _snapshots_build_incremental(organization, calendar, everyone, added_from)
                rows_deleted += _snapshots_delete_periods(organization, keys)
                _snapshots_upsert(snapshots)
                rows_written += len(snapshots)
            subjects = _subjects_of_deals(organization, deal_ids)
            from_month = _first_month_from(organization, calendar, since)
            snapshots, keys = _snapshots_build_incremental(organization, calendar, subjects, from_month)
            rows_deleted += _snapshots_delete_keys(organization, keys, snapshots)
            _snapshots_upsert(snapshots)
            rows_written += len(snapshots)
            _data_version_bump_now_and_after_commit(organization.pk, in_caller_transaction=in_caller_transaction)
    if full:
        result = kpi_snapshot_recompute(organization=organization)
        return {**result, "mode": "full"}

    duration_seconds = time.monotonic() - started
    logger.info(
        "KPI snapshot incremental recompute organization_id=%s deals=%s since=%s rows_written=%s rows_deleted=%s"
        " duration_ms=%d",
        organization.pk,
        len(deal_ids),
        since.isoformat(),
        rows_written,
        rows_deleted,
        duration_seconds * 1000,
    )
    return {
        "organization_id": organization.pk,
        "mode": "incremental",
        "rows_written": rows_written,
        "rows_deleted": rows_deleted,
        "duration_seconds": round(duration_seconds, 3),
    }


def kpi_snapshot_calendar_extend(*, organization: Organization) -> dict | None:
    """Add the snapshot rows of the months, quarters and years begun since the last recompute.

    Deals open at a period's end count in it, so a new month starts with rows
    although no data changed. Returns None without a recompute when the
    organization-grain row of the month containing the local today exists: every
    later change of data recomputes its own periods. Otherwise runs
    `kpi_snapshot_recompute_deals` without deals, which computes the new months
    for every subject (or recomputes in full when the stored rows do not fit),
    and returns its result.
    """
    today = timezone.localdate(timezone=organization.tzinfo)
    month = period_containing(today, MONTH, organization.fiscal_year_start_month)
    with scope(organization=organization):
        is_current = KpiSnapshot.objects.filter(
            organization=organization, grain=Grain.ORGANIZATION, period_kind=MONTH, period_start=month.start
        ).exists()
    if is_current:
        return None
    # NOTE: an organization without open deals never gets a row for the current month,
    # so each run computes the months since its last close again and writes nothing.
    return kpi_snapshot_recompute_deals(organization=organization, deal_ids=[], since=timezone.now())


def _months_added_from(organization: Organization, calendar: _Calendar) -> int | None:
    """Return the index of the first calendar month without stored rows, or None when only a full recompute fits.

    The first month of the data always has an organization-grain row (a deal was
    created or closed in it). The stored rows fit when they start at the
    calendar's first month and end at or before its last one; the months after
    their end are new. Months without any open, won or lost deal have no row, so
    after the last deal closed they count as new on every run and are computed
    again, without a row to write. Returns len(calendar.months) when none is new.
    """
    span = KpiSnapshot.objects.filter(
        organization=organization, grain=Grain.ORGANIZATION, period_kind=MONTH
    ).aggregate(first=Min("period_start"), last=Max("period_start"))
    months = calendar.periods[MONTH]
    if span["first"] != months[0].start or span["last"] is None or span["last"] > months[-1].start:
        return None
    if span["last"] == months[-1].start:
        return len(calendar.months)
    return next(index for index, month in enumerate(calendar.months) if month.start > span["last"])


def _subjects_all(organization: Organization) -> list[tuple[str, int]]:
    """Return every subject of every grain: the organization, its territories, teams and members."""
    subjects = [(Grain.ORGANIZATION, ORGANIZATION_SUBJECT_ID)]
    subjects += [(Grain.TERRITORY, pk) for pk in Territory.objects.filter(organization=organization).values_list("pk", flat=True)]
    subjects += [(Grain.TEAM, pk) for pk in Team.objects.filter(organization=organization).values_list("pk", flat=True)]
    subjects += [(Grain.REP, pk) for pk in Membership.objects.filter(organization=organization).values_list("pk", flat=True)]
    return subjects


def _snapshots_delete_periods(organization: Organization, keys: set) -> int:
    """Delete every stored row of the periods among `keys`, of any subject, before they are written anew."""
    periods = {(kind, start) for kind, start, _grain, _subject_id in keys}
    if not periods:
        return 0
    condition = Q()
    for kind, start in periods:
        condition |= Q(period_kind=kind, period_start=start)
    deleted, _details = KpiSnapshot.objects.filter(organization=organization).filter(condition).delete()
    return deleted


def _subjects_of_deals(organization: Organization, deal_ids: list[int]) -> list[tuple[str, int]]:
    subjects = {(Grain.ORGANIZATION, ORGANIZATION_SUBJECT_ID)}
    fields = {grain: SUBJECT_FIELDS[grain] for grain in (Grain.TERRITORY, Grain.TEAM, Grain.REP)}
    for batch_start in range(0, len(deal_ids), _DELETE_BATCH_SIZE):
        batch = deal_ids[batch_start : batch_start + _DELETE_BATCH_SIZE]
        for row in Deal.all_objects.filter(organization=organization, pk__in=batch).values(*fields.values()):
            for grain, field in fields.items():
                if row[field] is not None:
                    subjects.add((grain, row[field]))
    return sorted(subjects)


def _first_month_from(organization: Organization, calendar: _Calendar, since: dt.datetime) -> int:
    """Return the index of the month containing `since` (local date), 0 before the data, len(months) after it."""
    since_day = timezone.localtime(since, calendar.time_zone).date()
    if since_day < calendar.months[0].start:
        return 0
    first_month = period_containing(since_day, MONTH, organization.fiscal_year_start_month)
    return next(
        (index for index, month in enumerate(calendar.months) if month.start >= first_month.start), len(calendar.months)
    )


def _snapshots_build_incremental(
    organization: Organization, calendar: _Calendar, subjects: list[tuple[str, int]], from_month: int
) -> tuple[list[KpiSnapshot], set[tuple[str, dt.date, str, int]]]:
    """Build the rows of the subjects in every period that ends after month `from_month` starts; return them and every key they cover."""
    periods = {
        kind: [
            period
            for period in calendar.periods[kind]
            if calendar.last_month[kind][period] >= from_month
        ]
        for kind in PERIOD_KINDS
    }
    names = _subject_names(organization)
    if connection.vendor == "postgresql":
        components, medians = _incremental_aggregate_postgresql(organization, calendar, subjects, periods, from_month)
    else:
        components, medians = _incremental_aggregate_orm(organization, calendar, subjects, periods, from_month)

    snapshots, keys = [], set()
    for grain, subject_id in subjects:
        for kind in PERIOD_KINDS:
            for period in periods[kind]:
                keys.add((kind, period.start, grain, subject_id))
                values = components.get((kind, period, grain, subject_id))
                if values is None or not (values.won_count or values.lost_count or values.open_count):
                    continue
                median = medians.get((kind, period, grain, subject_id))
                snapshots.append(_snapshot_of(organization, kind, period, grain, subject_id, names, values, median))
    return snapshots, keys


def _incremental_aggregate_orm(
    organization: Organization,
    calendar: _Calendar,
    subjects: list[tuple[str, int]],
    periods: dict[str, list[Period]],
    from_month: int,
) -> tuple[dict, dict]:
    """Aggregate the touched periods' components and medians with ORM queries per subject; keyed (kind, period, grain, subject id)."""
    deals = _computable_deals(organization)
    components: dict[tuple[str, Period, str, int], _Components] = {}
    medians: dict[tuple[str, Period, str, int], Decimal] = {}
    for grain, subject_id in subjects:
        subject_deals = deals.filter(deal_filter_for_subject(grain=grain, subject_id=subject_id))
        subject_components: dict[tuple[str, Period], _Components] = defaultdict(_Components)
        subject_medians = _closed_by_period(subject_components, subject_deals, calendar, periods)
        _open_by_period(
            organization, subject_components, subject_deals, calendar, periods, from_month, grain, subject_id
        )
        for (kind, period), values in subject_components.items():
            components[(kind, period, grain, subject_id)] = values
        for (kind, period), median in subject_medians.items():
            medians[(kind, period, grain, subject_id)] = median
    return components, medians


# A deal (`d`) of a touched territory, team or rep: the condition that the index scan
# checks before a deal is repeated per grain. Team members are looked up once (a hashed subplan).
_TOUCHED_DEAL_SQL = """(d.territory_id = ANY(%(territory_ids)s::bigint[]) OR d.owner_id = ANY(%(rep_ids)s::bigint[])
        OR d.owner_id IN (SELECT id FROM spm_membership WHERE team_id = ANY(%(team_ids)s::bigint[])))"""
# The rows (`s.grain`, `s.subject_id`) of such a deal that belong to a touched subject.
_TOUCHED_SUBJECT_SQL = """((s.grain = 1 AND s.subject_id = ANY(%(territory_ids)s::bigint[]))
        OR (s.grain = 2 AND s.subject_id = ANY(%(team_ids)s::bigint[]))
        OR (s.grain = 3 AND s.subject_id = ANY(%(rep_ids)s::bigint[])))"""

# The organization's won components: one plain aggregate per touched period over the
# range of the index dashboards_deal_closed_cover that the period's UTC bounds select.
# The year needs every deal won in it for its median, because percentile_cont does not
# roll up. Without grouping, the aggregate neither sorts the deals by period nor runs
# each aggregate once per period kind. On the 1M-deal benchmark tenant (2 cores,
# 2026-12-05, least of 7) the won-deal statements of one stage move took 125 ms this way
# and 223 ms as one statement with grouping sets over every subject. Sums, cycle days and
# medians use the expressions of `_GRAIN_SQL`, so the rows equal the full recompute's to
# the last digit.
_INCREMENTAL_WON_ORGANIZATION_SQL = """
SELECT p.kind, p.period_start, w.won_count, w.won_amount, w.cycle_days_sum, w.cycle_days_median
FROM unnest(%(period_kinds)s::text[], %(period_starts)s::date[], %(period_starts_utc)s::timestamptz[],
    %(period_ends_utc)s::timestamptz[]) AS p(kind, period_start, start_utc, end_utc)
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS won_count, COALESCE(SUM(d.base_amount), 0) AS won_amount,
        round(COALESCE(EXTRACT(EPOCH FROM SUM(d.closed_at - d.created_at)) / 86400.00000000000000000000, 0), 6)
            AS cycle_days_sum,
        round((percentile_cont(0.5) WITHIN GROUP (ORDER BY (date_part('epoch', d.closed_at - d.created_at) / 86400.0)))
            ::text::numeric, 6) AS cycle_days_median
    FROM pipelines_deal d
    WHERE d.organization_id = %(organization_id)s AND d.status = 'won' AND d.deleted_at IS NULL
        AND d.closed_at >= p.start_utc AND d.closed_at < p.end_utc """ + _COMPUTABLE_SQL + """
) w
WHERE w.won_count > 0
"""

# The touched territories', teams' and reps' won components, with the expressions of
# `_GRAIN_SQL`. One range scan of dashboards_deal_closed_cover reads the deals won since
# the start of the first touched fiscal year and keeps those of a touched subject. Each
# of them counts once for each touched subject it belongs to (grain 1 territory, 2 team,
# 3 rep, numbered to keep the sort narrow). Because the scan filters before the deals
# are repeated per grain, only a touched subject's deals reach the sort and the medians.
_INCREMENTAL_WON_SUBJECTS_SQL = """
WITH months AS (
    SELECT * FROM unnest(%(month_numbers)s::int[], %(quarter_starts)s::date[], %(year_starts)s::date[],
        %(month_starts)s::date[]) AS m(month, quarter_start, year_start, month_start)
),
won AS (
    SELECT s.grain, s.subject_id, d.base_amount, d.closed_at - d.created_at AS cycle,
        width_bucket(d.closed_at, %(month_starts_utc)s::timestamptz[]) AS month
    FROM pipelines_deal d
    JOIN spm_membership ms ON ms.id = d.owner_id
    CROSS JOIN LATERAL (VALUES (1, d.territory_id), (2, ms.team_id), (3, d.owner_id)) AS s(grain, subject_id)
    WHERE d.organization_id = %(organization_id)s AND d.status = 'won' AND d.deleted_at IS NULL
        AND d.closed_at >= %(closed_from)s AND d.closed_at < %(span_end)s """ + _COMPUTABLE_SQL + """
        AND """ + _TOUCHED_DEAL_SQL + """
        AND """ + _TOUCHED_SUBJECT_SQL + """
)
SELECT w.grain, w.subject_id,
    CASE WHEN GROUPING(m.month_start) = 0 THEN 'month' WHEN GROUPING(m.quarter_start) = 0 THEN 'quarter'
        ELSE 'year' END AS kind,
    COALESCE(m.month_start, m.quarter_start, m.year_start) AS period_start,
    COUNT(*),
    COALESCE(SUM(w.base_amount), 0),
    round(COALESCE(EXTRACT(EPOCH FROM SUM(w.cycle)) / 86400.00000000000000000000, 0), 6),
    round((percentile_cont(0.5) WITHIN GROUP (ORDER BY (date_part('epoch', w.cycle) / 86400.0)))::text::numeric, 6)
FROM won w JOIN months m ON m.month = w.month
GROUP BY GROUPING SETS (
    (w.grain, w.subject_id, m.year_start),
    (w.grain, w.subject_id, m.year_start, m.quarter_start),
    (w.grain, w.subject_id, m.year_start, m.quarter_start, m.month_start)
)
"""

# Lost deals need only counts and sums, which roll up exactly: per subject and month
# from the first touched month on here, to quarters and years in Python together with
# the stored rows of the months before. The organization's months are grouped straight
# from the index scan, and only a touched subject's deals are repeated per grain.
_INCREMENTAL_LOST_SQL = """
SELECT 0, 0::bigint, width_bucket(d.closed_at, %(month_starts_utc)s::timestamptz[]) AS month,
    COUNT(*), COALESCE(SUM(d.base_amount), 0)
FROM pipelines_deal d
WHERE d.organization_id = %(organization_id)s AND d.status = 'lost' AND d.deleted_at IS NULL
    AND d.closed_at >= %(open_from)s AND d.closed_at < %(span_end)s """ + _COMPUTABLE_SQL + """
GROUP BY 3
UNION ALL
SELECT s.grain, s.subject_id, width_bucket(d.closed_at, %(month_starts_utc)s::timestamptz[]) AS month,
    COUNT(*), COALESCE(SUM(d.base_amount), 0)
FROM pipelines_deal d
JOIN spm_membership ms ON ms.id = d.owner_id
CROSS JOIN LATERAL (VALUES (1, d.territory_id), (2, ms.team_id), (3, d.owner_id)) AS s(grain, subject_id)
WHERE d.organization_id = %(organization_id)s AND d.status = 'lost' AND d.deleted_at IS NULL
    AND d.closed_at >= %(open_from)s AND d.closed_at < %(span_end)s """ + _COMPUTABLE_SQL + """
    AND """ + _TOUCHED_DEAL_SQL + """
    AND """ + _TOUCHED_SUBJECT_SQL + """
GROUP BY 1, 2, 3
"""
_GRAIN_NUMBERS = (Grain.ORGANIZATION, Grain.TERRITORY, Grain.TEAM, Grain.REP)

# Deals created or left (closed, see `_open_add`) from the first touched month on, per
# touched subject and month: the changes that continue the stored open counts.
_INCREMENTAL_OPEN_DEALS_SQL = """
    SELECT d.territory_id, d.owner_id, COALESCE(d.base_amount, 0) AS amount,
        width_bucket(d.created_at, %(month_starts_utc)s::timestamptz[]) AS created_month,
        CASE WHEN d.closed_at IS NOT NULL
            THEN width_bucket(GREATEST(d.created_at, d.closed_at), %(month_starts_utc)s::timestamptz[]) END AS left_month
    FROM pipelines_deal d
    WHERE d.organization_id = %(organization_id)s AND d.deleted_at IS NULL """ + _COMPUTABLE_SQL
# The deals created from `open_from` on, then those created before it and closed from it on.
# Two branches rather than one OR, so that each is an index-only scan of a KPI cover index:
# created_cover, and closed_cover with its leading status listed in full. With the OR
# the 1M-deal benchmark tenant fetched 21,018 heap pages, 294 ms instead of 41 ms.
# The organization's created and left deals are counted per month before they are added
# up. Only a touched subject's changes are joined to the owner's team and repeated per
# grain (numbered as in the won-deal statements).
_INCREMENTAL_OPEN_SQL = """
WITH deals AS MATERIALIZED (""" + _INCREMENTAL_OPEN_DEALS_SQL + """
        AND d.created_at >= %(open_from)s
    UNION ALL""" + _INCREMENTAL_OPEN_DEALS_SQL + """
        AND d.created_at < %(open_from)s AND d.status = ANY(%(statuses)s) AND d.closed_at >= %(open_from)s
),
subject_changes AS (
    SELECT territory_id, owner_id, created_month AS month, 1 AS deal_count, amount
    FROM deals WHERE created_month >= %(from_month)s
    UNION ALL
    SELECT territory_id, owner_id, left_month, -1, -amount
    FROM deals WHERE left_month >= %(from_month)s
)
SELECT 0, 0::bigint, month, SUM(deal_count)::bigint, SUM(amount)
FROM (
    SELECT created_month AS month, COUNT(*) AS deal_count, SUM(amount) AS amount
    FROM deals WHERE created_month >= %(from_month)s GROUP BY created_month
    UNION ALL
    SELECT left_month, -COUNT(*), -SUM(amount)
    FROM deals WHERE left_month >= %(from_month)s GROUP BY left_month
) organization_changes
GROUP BY month
UNION ALL
SELECT s.grain, s.subject_id, d.month, SUM(d.deal_count), SUM(d.amount)
FROM subject_changes d
JOIN spm_membership ms ON ms.id = d.owner_id
CROSS JOIN LATERAL (VALUES (1, d.territory_id), (2, ms.team_id), (3, d.owner_id)) AS s(grain, subject_id)
WHERE """ + _TOUCHED_DEAL_SQL + """
    AND """ + _TOUCHED_SUBJECT_SQL + """
GROUP BY 1, 2, 3
"""


def _incremental_aggregate_postgresql(
    organization: Organization,
    calendar: _Calendar,
    subjects: list[tuple[str, int]],
    periods: dict[str, list[Period]],
    from_month: int,
) -> tuple[dict, dict]:
    """Aggregate what `_incremental_aggregate_orm` does, with a few statements for all subjects together."""
    components: dict[tuple[str, Period, str, int], _Components] = defaultdict(_Components)
    medians: dict[tuple[str, Period, str, int], Decimal] = {}
    if from_month >= len(calendar.months):
        return components, medians

    wanted = {(kind, period.start): period for kind in PERIOD_KINDS for period in periods[kind]}
    first_start = min(start for _kind, start in wanted)
    parameters = _calendar_parameters(organization, calendar)
    for grain, name in ((Grain.TERRITORY, "territory_ids"), (Grain.TEAM, "team_ids"), (Grain.REP, "rep_ids")):
        parameters[name] = [subject_id for subject_grain, subject_id in subjects if subject_grain == grain]
    month_index = {month.start: index for index, month in enumerate(calendar.months)}
    first_month = month_index[first_start]
    parameters["closed_from"] = calendar.month_bounds[first_month][0]
    parameters["open_from"] = calendar.month_bounds[from_month][0]
    # width_bucket numbers months from 1.
    parameters["from_month"] = from_month + 1
    # Every status, so that the closed-deal branch of _INCREMENTAL_OPEN_SQL can use closed_cover.
    parameters["statuses"] = list(DealStatus.values)

    # The touched periods with their UTC bounds, for the organization's won deals.
    parameters["period_kinds"] = [kind for kind, _start in wanted]
    parameters["period_starts"] = [start for _kind, start in wanted]
    parameters["period_starts_utc"] = [calendar.month_bounds[month_index[start]][0] for _kind, start in wanted]
    parameters["period_ends_utc"] = [
        calendar.month_bounds[calendar.last_month[kind][period]][1] for (kind, _start), period in wanted.items()
    ]

    with connection.cursor() as cursor:
        cursor.execute(_INCREMENTAL_WON_ORGANIZATION_SQL, parameters)
        won_rows = [(0, ORGANIZATION_SUBJECT_ID, *row) for row in cursor.fetchall()]
        if any(subject_grain != Grain.ORGANIZATION for subject_grain, _subject_id in subjects):
            cursor.execute(_INCREMENTAL_WON_SUBJECTS_SQL, parameters)
            won_rows += cursor.fetchall()
        for grain_number, subject_id, kind, start, won, won_amount, cycle, median in won_rows:
            period = wanted.get((kind, start))
            # Months and quarters of the first touched year before the touched month stay as stored.
            if period is None:
                continue
            key = (kind, period, _GRAIN_NUMBERS[grain_number], subject_id)
            values = components[key]
            values.won_count, values.won_amount, values.cycle_days_sum = won, won_amount, cycle
            if median is not None:
                medians[key] = median

        cursor.execute(_INCREMENTAL_LOST_SQL, parameters)
        lost_rows = [
            (_GRAIN_NUMBERS[grain_number], subject_id, month - 1, lost, lost_amount)
            for grain_number, subject_id, month, lost, lost_amount in cursor.fetchall()
        ]

        cursor.execute(_INCREMENTAL_OPEN_SQL, parameters)
        open_changes: dict[tuple[str, int], dict[int, tuple[int, Decimal]]] = defaultdict(dict)
        for grain_number, subject_id, month, deal_count, amount in cursor.fetchall():
            open_changes[(_GRAIN_NUMBERS[grain_number], subject_id)][month - 1] = (deal_count, amount)

    lost_rows += _lost_stored_between(organization, calendar, subjects, first_month, from_month)
    _lost_add(components, calendar, subjects, wanted, lost_rows)
    stored_open = _open_stored_before(organization, calendar, subjects, from_month)
    _open_set(components, calendar, subjects, periods, from_month, stored_open, open_changes)
    return components, medians


def _lost_stored_between(
    organization: Organization, calendar: _Calendar, subjects: list[tuple[str, int]], first_month: int, from_month: int
) -> list[tuple[str, int, int, int, Decimal]]:
    """Read the stored lost components of months `first_month` to `from_month` (excluded) as (grain, subject id, month, count, amount)."""
    month_index = {month.start: index for index, month in enumerate(calendar.months)}
    rows = KpiSnapshot.objects.filter(
        organization=organization,
        period_kind=MONTH,
        period_start__gte=calendar.months[first_month].start,
        period_start__lt=calendar.months[from_month].start,
        grain__in={grain for grain, _subject_id in subjects},
        subject_id__in={subject_id for _grain, subject_id in subjects},
        lost_count__gt=0,
    ).values_list("grain", "subject_id", "period_start", "lost_count", "lost_amount")
    return [(grain, subject_id, month_index[start], count, amount) for grain, subject_id, start, count, amount in rows]


def _lost_add(components: dict, calendar: _Calendar, subjects, wanted: dict, lost_rows) -> None:
    """Roll the lost components of months up into every touched period that contains them."""
    touched_subjects = set(subjects)
    for grain, subject_id, month, lost_count, lost_amount in lost_rows:
        # The stored rows' filter on grain and id separately lets other pairs through.
        if (grain, subject_id) not in touched_subjects:
            continue
        for kind in PERIOD_KINDS:
            period = calendar.period_of[kind][month]
            if (kind, period.start) in wanted:
                values = components[(kind, period, grain, subject_id)]
                values.lost_count += lost_count
                values.lost_amount += lost_amount


def _open_set(
    components: dict, calendar: _Calendar, subjects, periods, from_month: int, stored_open: dict, open_changes: dict
) -> None:
    """Set open counts at the touched periods' ends: the stored count before `from_month` plus the changes since."""
    for subject in subjects:
        open_count, open_amount = stored_open.get(subject, (0, Decimal("0")))
        open_at_month_end = {}
        for month in range(from_month, len(calendar.months)):
            count_change, amount_change = open_changes[subject].get(month, (0, Decimal("0")))
            open_count += count_change
            open_amount += amount_change
            open_at_month_end[month] = (open_count, open_amount)
        for kind in PERIOD_KINDS:
            for period in periods[kind]:
                open_count, open_amount = open_at_month_end[calendar.last_month[kind][period]]
                if open_count:
                    values = components[(kind, period, *subject)]
                    values.open_count, values.open_amount = open_count, open_amount


def _open_stored_before(
    organization: Organization, calendar: _Calendar, subjects: list[tuple[str, int]], from_month: int
) -> dict[tuple[str, int], tuple[int, Decimal]]:
    """Read the stored open count and amount of each subject at the end of the month before `from_month`."""
    if from_month == 0:
        return {}
    rows = KpiSnapshot.objects.filter(
        organization=organization,
        period_kind=MONTH,
        period_start=calendar.months[from_month - 1].start,
        grain__in={grain for grain, _subject_id in subjects},
        subject_id__in={subject_id for _grain, subject_id in subjects},
    ).values_list("grain", "subject_id", "open_count", "open_amount")
    wanted = set(subjects)
    return {(grain, subject_id): (count, amount) for grain, subject_id, count, amount in rows if (grain, subject_id) in wanted}


def _snapshot_of(organization, kind, period, grain, subject_id, names, values: _Components, median) -> KpiSnapshot:
    return KpiSnapshot(
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
        cycle_days_median=median,
        open_count=values.open_count,
        open_amount=values.open_amount,
    )


def _closed_by_period(
    components: dict, deals: QuerySet[Deal], calendar: _Calendar, periods: dict[str, list[Period]]
) -> dict[tuple[str, Period], Decimal]:
    """Add won/lost components of one subject's deals per touched period; return the medians.

    Two grouped queries (won, lost) per period kind over the deals closed in
    that kind's touched periods. Cycle-day sums and medians are taken per period, not
    rolled up from months, so they round exactly as the full recompute's.
    """
    medians = {}
    for kind in PERIOD_KINDS:
        if not periods[kind]:
            continue
        bounds = [period.utc_bounds(calendar.time_zone) for period in periods[kind]]
        period_of_close = Case(
            *[
                When(deal_filter_closed_between(start_utc, end_utc), then=Value(index))
                for index, (start_utc, end_utc) in enumerate(bounds)
            ],
            output_field=IntegerField(),
        )
        in_touched_periods = deal_filter_closed_between(bounds[0][0], bounds[-1][1])
        # Won and lost apart: with the status fixed, each is a range of the covering index
        # dashboards_deal_closed_cover, and only won deals pay for cycle days and the median.
        won = (
            deals.filter(in_touched_periods, status=DealStatus.WON)
            .annotate(period=period_of_close)
            .values("period")
            .annotate(
                deal_count=Count("id"),
                amount=Sum("base_amount"),
                cycle=_CYCLE_SUM,
                median=Median(CycleDays("created_at", "closed_at")),
            )
            .order_by()
        )
        for row in won:
            period = periods[kind][row["period"]]
            values = components[(kind, period)]
            values.won_count += row["deal_count"]
            values.won_amount += row["amount"] or Decimal("0")
            values.cycle_days_sum += _days_of(row["cycle"])
            if row["median"] is not None:
                medians[(kind, period)] = _to_decimal(row["median"]).quantize(_CYCLE_DAYS_PLACES, ROUND_HALF_UP)
        lost = (
            deals.filter(in_touched_periods, status=DealStatus.LOST)
            .annotate(period=period_of_close)
            .values("period")
            .annotate(deal_count=Count("id"), amount=Sum("base_amount"))
            .order_by()
        )
        for row in lost:
            values = components[(kind, periods[kind][row["period"]])]
            values.lost_count += row["deal_count"]
            values.lost_amount += row["amount"] or Decimal("0")
    return medians


def _open_by_period(
    organization: Organization,
    components: dict,
    deals: QuerySet[Deal],
    calendar: _Calendar,
    periods: dict[str, list[Period]],
    from_month: int,
    grain: str,
    subject_id: int,
) -> None:
    """Set open counts at the touched periods' ends: the stored count before `from_month` plus created − left since."""
    month_count = len(calendar.months)
    if from_month >= month_count:
        return
    open_count, open_amount = 0, Decimal("0")
    if from_month > 0:
        stored = (
            KpiSnapshot.objects.filter(
                organization=organization,
                period_kind=MONTH,
                period_start=calendar.months[from_month - 1].start,
                grain=grain,
                subject_id=subject_id,
            )
            .values_list("open_count", "open_amount")
            .first()
        )
        if stored is not None:
            open_count, open_amount = stored

    start_utc = calendar.month_bounds[from_month][0]
    month_of = _month_index_from(calendar, from_month)
    created = (
        deals.filter(created_at__gte=start_utc)
        .annotate(month=month_of("created_at"))
        .values("month")
        .annotate(deal_count=Count("id"), amount=Sum("base_amount"))
        .order_by()
    )
    left = (
        deals.filter(closed_at__isnull=False)
        .filter(Q(closed_at__gte=start_utc) | Q(created_at__gte=start_utc))
        .annotate(left_at=Greatest("created_at", "closed_at"))
        .filter(left_at__gte=start_utc)
        .annotate(month=month_of("left_at"))
        .values("month")
        .annotate(deal_count=Count("id"), amount=Sum("base_amount"))
        .order_by()
    )
    count_changes = [0] * month_count
    amount_changes = [Decimal("0")] * month_count
    for rows, sign in ((created, 1), (left, -1)):
        for row in rows:
            if row["month"] is None:
                continue
            count_changes[row["month"]] += sign * row["deal_count"]
            amount_changes[row["month"]] += sign * (row["amount"] or Decimal("0"))

    open_counts, open_amounts = [0] * month_count, [Decimal("0")] * month_count
    for month in range(from_month, month_count):
        open_count += count_changes[month]
        open_amount += amount_changes[month]
        open_counts[month], open_amounts[month] = open_count, open_amount
    for kind in PERIOD_KINDS:
        for period in periods[kind]:
            month = calendar.last_month[kind][period]
            if open_counts[month]:
                values = components[(kind, period)]
                values.open_count = open_counts[month]
                values.open_amount = open_amounts[month]


def _month_index_from(calendar: _Calendar, from_month: int):
    """Build a Case giving the index of the month (from `from_month` on) whose UTC bounds contain a field."""

    def month_of(field: str) -> Case:
        return Case(
            *[
                When(**{f"{field}__lt": calendar.month_bounds[index][1]}, then=Value(index))
                for index in range(from_month, len(calendar.months))
            ],
            output_field=IntegerField(),
        )

    return month_of


def _snapshots_delete_keys(organization: Organization, keys: set, snapshots: list[KpiSnapshot]) -> int:
    """Delete stored rows among `keys` that the incremental run did not produce; return how many."""
    produced = {(s.period_kind, s.period_start, s.grain, s.subject_id) for s in snapshots}
    stale = keys - produced
    if not stale:
        return 0
    condition = Q()
    for kind, start, grain, subject_id in stale:
        condition |= Q(period_kind=kind, period_start=start, grain=grain, subject_id=subject_id)
    deleted, _details = KpiSnapshot.objects.filter(organization=organization).filter(condition).delete()
    return deleted
