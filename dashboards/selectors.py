"""Reads of KPI snapshot rows, and the deal filters that define every KPI number.

The Q objects built here are the only definition of which deals a KPI counts.
The recompute in `dashboards.services` buckets deals with them, and the
drill-down lists filter with them, so the deals listed behind a number always
recompute to that number.

Periods are half-open: a deal is won or lost in P when `closed_at` lies in
`P.utc_bounds(tz)`, which is the same as its local date lying in P.
"""

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from dashboards.kpis import KpiRow
from dashboards.models import Grain, KpiSnapshot, PeriodKind
from pipelines.models import Deal, DealStatus
from spm.date_limits import COMPUTABLE_RANGE
from spm.fiscal import QUARTER, Period, period_containing
from spm.models import Organization

METRIC_WON, METRIC_LOST, METRIC_CLOSED, METRIC_OPEN = "won", "lost", "closed", "open"
METRICS = (METRIC_WON, METRIC_LOST, METRIC_CLOSED, METRIC_OPEN)

# Statuses each closing metric counts; "open" is defined by time, not by status.
METRIC_STATUSES = {
    METRIC_WON: (DealStatus.WON,),
    METRIC_LOST: (DealStatus.LOST,),
    METRIC_CLOSED: (DealStatus.WON, DealStatus.LOST),
}

# The Deal field that assigns a deal to a subject of each grain. The organization
# grain has no field: it counts every deal, under subject id 0.
SUBJECT_FIELDS = {
    Grain.REP: "owner_id",
    Grain.TEAM: "owner__team_id",
    Grain.TERRITORY: "territory_id",
}
ORGANIZATION_SUBJECT_ID = 0


def deal_filter_closed_between(start_utc: dt.datetime, end_utc: dt.datetime) -> Q:
    """Match deals whose `closed_at` lies in `[start_utc, end_utc)`, whatever their status."""
    return Q(closed_at__gte=start_utc, closed_at__lt=end_utc)


def deal_filter_open_at(moment_utc: dt.datetime) -> Q:
    """Match deals open at an instant: created before it, and not closed or closed at or after it.

    A deal closed exactly at `moment_utc` is open at it, because the instant is
    the exclusive end of the period before it. A deal whose `closed_at` precedes
    its `created_at` (bad source data) is never open.
    """
    return Q(created_at__lt=moment_utc) & (Q(closed_at__isnull=True) | Q(closed_at__gte=moment_utc))


def deal_filter_for_metric(*, metric: str, start_utc: dt.datetime, end_utc: dt.datetime) -> Q:
    """Match the deals a KPI metric counts for the period `[start_utc, end_utc)`.

    "won", "lost" and "closed" (won or lost) select deals of that status whose
    `closed_at` lies in the period. "open" selects deals open at the period's
    end, that is at `end_utc`. Raises ValueError for any other metric.
    """
    if metric == METRIC_OPEN:
        return deal_filter_open_at(end_utc)
    if metric not in METRIC_STATUSES:
        raise ValueError(
            _("Invalid KPI metric %(metric)r; use one of: %(choices)s.")
            % {"metric": metric, "choices": ", ".join(METRICS)}
        )
    return Q(status__in=METRIC_STATUSES[metric]) & deal_filter_closed_between(start_utc, end_utc)


def deal_filter_for_subject(*, grain: str, subject_id: int) -> Q:
    """Match the deals of one subject: a rep (deal owner), a team (the owner's team), a territory.

    The organization grain matches every deal. A deal without a team or
    territory belongs to no subject of that grain. Raises ValueError for an
    unknown grain.
    """
    if grain == Grain.ORGANIZATION:
        return Q()
    if grain not in SUBJECT_FIELDS:
        raise ValueError(_grain_error(grain))
    return Q(**{SUBJECT_FIELDS[grain]: subject_id})


def deal_list_for_metric(*, organization: Organization, period: Period, metric: str) -> QuerySet[Deal]:
    """Return exactly the deals the KPI engine counts for `metric` in `period`.

    Narrow it to one subject with `.filter(deal_filter_for_subject(...))`. Its
    count and `Sum("base_amount")` equal the snapshot's `<metric>_count` and
    `<metric>_amount` ("closed" is won plus lost). Closed metrics list the latest
    close first, "open" lists the oldest deal first.
    """
    start_utc, end_utc = period.utc_bounds(organization.tzinfo)
    condition = deal_filter_for_metric(metric=metric, start_utc=start_utc, end_utc=end_utc)
    ordering = ("created_at", "id") if metric == METRIC_OPEN else ("-closed_at", "-id")
    return (
        Deal.objects.filter(organization=organization)
        .filter(condition)
        .select_related("owner__user", "account", "stage", "territory")
        .order_by(*ordering)
    )


def kpi_periods_available(*, organization: Organization, kind: str | None = None) -> list[Period]:
    """Return the periods that have snapshot rows, newest start first; a year before its quarter and month.

    `kind` narrows to "year", "quarter" or "month". Rows computed under an
    earlier fiscal year start month no longer match the calendar and are left
    out; the next recompute deletes them.
    """
    if kind is not None and kind not in PeriodKind.values:
        raise ValueError(
            _("Invalid period kind %(kind)r; use one of: %(choices)s.")
            % {"kind": kind, "choices": ", ".join(PeriodKind.values)}
        )

    # Every period with any deal data has exactly one organization-grain row. Rows of periods
    # outside COMPUTABLE_RANGE, left by data imported before the date checks, are not offered.
    snapshots = KpiSnapshot.objects.filter(
        organization=organization,
        grain=Grain.ORGANIZATION,
        period_start__gte=COMPUTABLE_RANGE.earliest,
        period_end__lte=COMPUTABLE_RANGE.latest + dt.timedelta(days=1),
    )
    if kind is not None:
        snapshots = snapshots.filter(period_kind=kind)
    keys = snapshots.order_by("-period_start", "-period_end").values_list("period_kind", "period_start", "period_end")

    periods = []
    for period_kind, start, end in keys:
        period = period_containing(start, period_kind, organization.fiscal_year_start_month)
        if period.start == start and period.end == end:
            periods.append(period)
    return periods


def kpi_quarter_last_closed(*, organization: Organization) -> Period | None:
    """Return the newest fiscal quarter with a won or lost deal, from the organization-grain snapshot rows; None without one."""
    return kpi_period_last_closed(organization=organization, kind=QUARTER)


def kpi_period_last_closed(*, organization: Organization, kind: str) -> Period | None:
    """Return the newest fiscal period of `kind` with a won or lost deal, from the organization-grain snapshot rows; None without one."""
    start = (
        KpiSnapshot.objects.filter(organization=organization, grain=Grain.ORGANIZATION, period_kind=kind)
        .filter(Q(won_count__gt=0) | Q(lost_count__gt=0))
        .order_by("-period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    if start is None:
        return None
    return period_containing(start, kind, organization.fiscal_year_start_month)


def kpi_rows(
    *, organization: Organization, period: Period, grain: str, subject_ids: set[int] | None = None
) -> list[KpiRow]:
    """Return the KPI rows of one period and grain, ordered by subject name; one query.

    `subject_ids` narrows to those subjects (an empty set returns no rows). A
    subject without won, lost or open deals in the period has no row.
    """
    if grain not in Grain.values:
        raise ValueError(_grain_error(grain))

    snapshots = KpiSnapshot.objects.filter(
        organization=organization, period_kind=period.kind, period_start=period.start, grain=grain
    )
    if subject_ids is not None:
        snapshots = snapshots.filter(subject_id__in=subject_ids)
    return [KpiRow.from_snapshot(snapshot) for snapshot in snapshots.order_by("subject_name", "subject_id")]


def kpi_row_series(
    *, organization: Organization, periods: list[Period], grain: str, subject_id: int
) -> list[tuple[Period, KpiRow | None]]:
    """Return one subject's row for each of `periods`, in the given order; None where it has none.

    One query, so a chart of e.g. won amount per month costs the same for 12 or
    120 months.
    """
    if grain not in Grain.values:
        raise ValueError(_grain_error(grain))
    if not periods:
        return []

    snapshots = KpiSnapshot.objects.filter(
        organization=organization,
        grain=grain,
        subject_id=subject_id,
        period_kind__in={period.kind for period in periods},
        period_start__in={period.start for period in periods},
    )
    by_key = {(snapshot.period_kind, snapshot.period_start): snapshot for snapshot in snapshots}
    series = []
    for period in periods:
        snapshot = by_key.get((period.kind, period.start))
        series.append((period, KpiRow.from_snapshot(snapshot) if snapshot is not None else None))
    return series


def _grain_error(grain: str) -> str:
    return _("Invalid grain %(grain)r; use one of: %(choices)s.") % {
        "grain": grain,
        "choices": ", ".join(Grain.values),
    }
