"""The same KPI aggregates computed three other ways, for the benchmark's comparison.

- `floor_rows`: one hand-written set-based PostgreSQL query per grain that only
  reads (no upsert, no names): what the product's recompute cannot beat.
- `duckdb_rows`: DuckDB over the deal columns exported from PostgreSQL.
- `pandas_rows`: pandas over the same export, as an analyst would write it.

Every function returns {(grain, kind, period_start, subject_id): Values} for the
periods of `Calendar`, with the product's rules: deals deleted in the CRM
(`deleted_at` set) left out, won/lost by the local month of
`closed_at`, cycle days from `created_at` to `closed_at` of won deals, open at a
period end as created minus left (left = max(created_at, closed_at)), and a row
only where won + lost + open is not zero.
"""

import datetime as dt
from dataclasses import dataclass

GRAINS = ("organization", "territory", "team", "rep")
KINDS = ("month", "quarter", "year")
# Export columns; team_id comes from the owner's membership.
EXPORT_SQL = """
COPY (
    SELECT d.owner_id, m.team_id, d.territory_id, d.status, d.base_amount, d.created_at, d.closed_at
    FROM pipelines_deal d JOIN spm_membership m ON m.id = d.owner_id
    WHERE d.organization_id = {organization_id} AND d.deleted_at IS NULL
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""


@dataclass
class Values:
    won_count: int
    lost_count: int
    won_amount: float
    lost_amount: float
    cycle_days_sum: float
    cycle_days_median: float | None
    open_count: int
    open_amount: float


@dataclass(frozen=True)
class Calendar:
    """Months of the data's whole fiscal years, and the periods (start, kind, last month index) to report."""

    time_zone: str
    month_starts: list[dt.date]
    month_starts_utc: list[dt.datetime]
    quarter_of: list[dt.date]
    year_of: list[dt.date]
    periods: list[tuple[str, dt.date, int]]

    @property
    def span_start_utc(self) -> dt.datetime:
        return self.month_starts_utc[0]


def calendar_of(organization) -> Calendar:
    """Build the calendar from the product's fiscal helpers (spm.fiscal), not from its KPI engine."""
    from django_scopes import scopes_disabled

    from pipelines.models import Deal
    from django.db.models import Max, Min
    from django.utils import timezone
    from spm.fiscal import MONTH, QUARTER, YEAR, period_containing, periods_covering

    with scopes_disabled():
        span = Deal.objects.filter(organization=organization).aggregate(
            a=Min("created_at"), b=Max("created_at"), c=Min("closed_at"), d=Max("closed_at")
        )
    moments = [value for value in span.values() if value is not None]
    tz = organization.tzinfo
    first_day = timezone.localtime(min(moments), tz).date()
    # The product's periods run on to the one containing the organization's local today.
    last_day = max(timezone.localtime(max(moments), tz).date(), timezone.localdate(timezone=tz))
    start_month = organization.fiscal_year_start_month
    first_year = period_containing(first_day, YEAR, start_month)
    last_year = period_containing(last_day, YEAR, start_month)
    months = periods_covering(first_year.start, last_year.last_day, MONTH, start_month)
    index_of = {month.start: index for index, month in enumerate(months)}
    periods = []
    for kind in (MONTH, QUARTER, YEAR):
        for period in periods_covering(first_day, last_day, kind, start_month):
            last_month = dt.date(period.last_day.year, period.last_day.month, 1)
            periods.append((kind, period.start, index_of[last_month]))
    return Calendar(
        time_zone=organization.time_zone,
        month_starts=[month.start for month in months],
        month_starts_utc=[month.utc_bounds(tz)[0] for month in months],
        quarter_of=[period_containing(month.start, QUARTER, start_month).start for month in months],
        year_of=[period_containing(month.start, YEAR, start_month).start for month in months],
        periods=periods,
    )


# --- Floor: hand-written PostgreSQL, one read-only query per grain -----------------------------

_FLOOR_SUBJECT = {
    "organization": ("0", ""),
    "territory": ("d.territory_id", ""),
    "team": ("m.team_id", "JOIN spm_membership m ON m.id = d.owner_id"),
    "rep": ("d.owner_id", ""),
}

# One read-only statement per grain, written for speed with the same rules:
# - the deals are never materialized: each aggregate below scans them again (a CTE
#   marked NOT MATERIALIZED), grouping by subject and month first;
# - won and lost sums are rolled up from months to quarters and years;
# - the medians sort only won deals, once for all three period kinds (year ⊃ quarter ⊃ month);
# - open at each month end is a running sum of created − left over the month grid.
FLOOR_SQL = """
WITH mo AS (
    SELECT * FROM unnest(%(idx)s::int[], %(mstart)s::date[], %(qstart)s::date[], %(ystart)s::date[])
        AS t(i, ms, qs, ys)
),
d AS NOT MATERIALIZED (
    SELECT {subject} AS s, d.status, d.base_amount AS amount, d.created_at, d.closed_at
    FROM pipelines_deal d {join}
    WHERE d.organization_id = %(org)s AND d.deleted_at IS NULL AND {subject} IS NOT NULL
),
closed_monthly AS (
    SELECT s, width_bucket(closed_at, %(bounds)s::timestamptz[]) AS xm,
        COUNT(*) FILTER (WHERE status = 'won') AS won_count,
        COUNT(*) FILTER (WHERE status = 'lost') AS lost_count,
        SUM(amount) FILTER (WHERE status = 'won') AS won_amount,
        SUM(amount) FILTER (WHERE status = 'lost') AS lost_amount,
        SUM(closed_at - created_at) FILTER (WHERE status = 'won') AS cycle
    FROM d WHERE status IN ('won', 'lost') AND closed_at >= %(span_start)s
    GROUP BY 1, 2
),
closed AS (
    SELECT c.s,
        CASE WHEN GROUPING(mo.ms) = 0 THEN 'month' WHEN GROUPING(mo.qs) = 0 THEN 'quarter' ELSE 'year' END AS kind,
        COALESCE(mo.ms, mo.qs, mo.ys) AS start,
        SUM(c.won_count) AS won_count, SUM(c.lost_count) AS lost_count,
        SUM(c.won_amount) AS won_amount, SUM(c.lost_amount) AS lost_amount,
        EXTRACT(EPOCH FROM SUM(c.cycle)) / 86400.0 AS cycle
    FROM closed_monthly c JOIN mo ON mo.i = c.xm
    GROUP BY GROUPING SETS ((c.s, mo.ys), (c.s, mo.qs), (c.s, mo.ms))
),
medians AS (
    SELECT w.s,
        CASE WHEN GROUPING(mo.ms) = 0 THEN 'month' WHEN GROUPING(mo.qs) = 0 THEN 'quarter' ELSE 'year' END AS kind,
        COALESCE(mo.ms, mo.qs, mo.ys) AS start,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY w.days) AS median
    FROM (
        SELECT s, width_bucket(closed_at, %(bounds)s::timestamptz[]) AS xm,
            date_part('epoch', closed_at - created_at) / 86400.0 AS days
        FROM d WHERE status = 'won' AND closed_at >= %(span_start)s
    ) w JOIN mo ON mo.i = w.xm
    GROUP BY GROUPING SETS ((w.s, mo.ys), (w.s, mo.ys, mo.qs), (w.s, mo.ys, mo.qs, mo.ms))
),
delta AS (
    SELECT s, m, SUM(n) AS n, SUM(a) AS a FROM (
        SELECT s, width_bucket(created_at, %(bounds)s::timestamptz[]) AS m, COUNT(*) AS n,
            SUM(COALESCE(amount, 0)) AS a
        FROM d GROUP BY 1, 2
        UNION ALL
        SELECT s, width_bucket(GREATEST(created_at, closed_at), %(bounds)s::timestamptz[]), -COUNT(*),
            -SUM(COALESCE(amount, 0))
        FROM d WHERE closed_at IS NOT NULL GROUP BY 1, 2
    ) x GROUP BY s, m
),
running AS (
    SELECT subjects.s, mo.i,
        SUM(COALESCE(delta.n, 0)) OVER (PARTITION BY subjects.s ORDER BY mo.i) AS open_count,
        SUM(COALESCE(delta.a, 0)) OVER (PARTITION BY subjects.s ORDER BY mo.i) AS open_amount
    FROM (SELECT DISTINCT s FROM delta) subjects CROSS JOIN mo
    LEFT JOIN delta ON delta.s = subjects.s AND delta.m = mo.i
)
SELECT 'closed', c.s, c.kind, c.start, c.won_count, c.lost_count, c.won_amount, c.lost_amount, c.cycle, md.median,
    NULL, NULL
FROM closed c LEFT JOIN medians md ON md.s = c.s AND md.kind = c.kind AND md.start = c.start
UNION ALL
SELECT 'open', s, NULL, NULL, i, NULL, NULL, NULL, NULL, NULL, open_count, open_amount FROM running WHERE open_count <> 0
"""


def floor_rows(cursor, organization_id: int, calendar: Calendar) -> dict:
    """Run the floor query per grain; return the rows and the seconds per grain."""
    import time

    parameters = {
        "org": organization_id,
        "idx": list(range(1, len(calendar.month_starts) + 1)),
        "mstart": calendar.month_starts,
        "qstart": calendar.quarter_of,
        "ystart": calendar.year_of,
        "bounds": calendar.month_starts_utc,
        "span_start": calendar.span_start_utc,
    }
    rows, seconds = {}, {}
    cursor.execute("SET jit = off")
    cursor.execute("SET work_mem = '256MB'")
    for grain in GRAINS:
        subject, join = _FLOOR_SUBJECT[grain]
        started = time.monotonic()
        cursor.execute(FLOOR_SQL.format(subject=subject, join=join), parameters)
        result = cursor.fetchall()
        seconds[grain] = time.monotonic() - started
        closed, open_by_month = {}, {}
        for tag, s, kind, start, won, lost, won_amount, lost_amount, cycle, median, open_count, open_amount in result:
            if tag == "closed":
                closed[(kind, start, s)] = (won, lost, won_amount or 0, lost_amount or 0, cycle or 0, median)
            else:
                open_by_month[(s, won - 1)] = (open_count, open_amount)
        _assemble(rows, grain, calendar, closed, open_by_month)
    return {"rows": rows, "seconds": seconds}


def _assemble(rows: dict, grain: str, calendar: Calendar, closed: dict, open_by_month: dict) -> None:
    """Combine closed components per period and open counts per month into report rows."""
    subjects = {key[2] for key in closed} | {key[0] for key in open_by_month}
    wanted = {(kind, start) for kind, start, _last in calendar.periods}
    for kind, start, last_month in calendar.periods:
        for subject in subjects:
            won, lost, won_amount, lost_amount, cycle, median = closed.get((kind, start, subject), (0, 0, 0, 0, 0, None))
            open_count, open_amount = open_by_month.get((subject, last_month), (0, 0))
            if won or lost or open_count:
                rows[(grain, kind, start, int(subject))] = Values(
                    int(won), int(lost), float(won_amount), float(lost_amount), float(cycle),
                    None if median is None else float(median), int(open_count), float(open_amount),
                )
    assert wanted


# --- DuckDB ---------------------------------------------------------------------------------------

def duckdb_rows(connection, calendar: Calendar) -> dict:
    """Aggregate the loaded table `deals` in DuckDB, one query per grain; return rows and seconds."""
    import time

    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(
        "CREATE OR REPLACE TEMP TABLE mo AS SELECT * FROM (SELECT unnest($1::DATE[]) AS ms, unnest($2::DATE[]) AS qs,"
        " unnest($3::DATE[]) AS ys, unnest(range(1, $4 + 1)) AS i)",
        [calendar.month_starts, calendar.quarter_of, calendar.year_of, len(calendar.month_starts)],
    )
    subject_of = {"organization": "0", "territory": "territory_id", "team": "team_id", "rep": "owner_id"}
    tz = calendar.time_zone.replace("'", "")
    rows, seconds = {}, {}
    for grain in GRAINS:
        subject = subject_of[grain]
        started = time.monotonic()
        base = f"""
            WITH d AS (
                SELECT {subject} AS s, status, base_amount AS amount, created_at, closed_at,
                    date_trunc('month', timezone('{tz}', created_at))::DATE AS cm,
                    date_trunc('month', timezone('{tz}', greatest(created_at, coalesce(closed_at, created_at))))::DATE AS lm,
                    date_trunc('month', timezone('{tz}', closed_at))::DATE AS xm
                FROM deals WHERE {subject} IS NOT NULL
            )"""
        closed = connection.execute(
            base
            + """
            SELECT d.s,
                CASE WHEN GROUPING(mo.ms) = 0 THEN 'month' WHEN GROUPING(mo.qs) = 0 THEN 'quarter' ELSE 'year' END,
                COALESCE(mo.ms, mo.qs, mo.ys),
                COUNT(*) FILTER (WHERE status = 'won'), COUNT(*) FILTER (WHERE status = 'lost'),
                SUM(amount) FILTER (WHERE status = 'won'), SUM(amount) FILTER (WHERE status = 'lost'),
                SUM(epoch(closed_at) - epoch(created_at)) FILTER (WHERE status = 'won') / 86400.0,
                quantile_cont((epoch(closed_at) - epoch(created_at)) / 86400.0, 0.5) FILTER (WHERE status = 'won')
            FROM d JOIN mo ON mo.ms = d.xm
            WHERE status IN ('won', 'lost')
            GROUP BY GROUPING SETS ((d.s, mo.ys), (d.s, mo.ys, mo.qs), (d.s, mo.ys, mo.qs, mo.ms))
            """
        ).fetchall()
        running = connection.execute(
            base
            + """,
            delta AS (
                SELECT s, m, SUM(n) AS n, SUM(a) AS a FROM (
                    SELECT s, cm AS m, COUNT(*) AS n, SUM(COALESCE(amount, 0)) AS a FROM d GROUP BY ALL
                    UNION ALL
                    SELECT s, lm, -COUNT(*), -SUM(COALESCE(amount, 0)) FROM d WHERE closed_at IS NOT NULL GROUP BY ALL
                ) GROUP BY ALL
            )
            SELECT subjects.s, mo.i - 1,
                SUM(COALESCE(delta.n, 0)) OVER (PARTITION BY subjects.s ORDER BY mo.i),
                SUM(COALESCE(delta.a, 0)) OVER (PARTITION BY subjects.s ORDER BY mo.i)
            FROM (SELECT DISTINCT s FROM delta) subjects CROSS JOIN mo
            LEFT JOIN delta ON delta.s = subjects.s AND delta.m = mo.ms
            """
        ).fetchall()
        seconds[grain] = time.monotonic() - started
        closed_map = {
            (kind, start, s): (won, lost, wa or 0, la or 0, cycle or 0, median)
            for s, kind, start, won, lost, wa, la, cycle, median in closed
        }
        open_map = {(s, month): (count, amount) for s, month, count, amount in running if count}
        _assemble(rows, grain, calendar, closed_map, open_map)
    return {"rows": rows, "seconds": seconds}


# --- pandas ---------------------------------------------------------------------------------------

def pandas_load(path: str):
    """Read the export into a DataFrame with times as int64 nanoseconds since the epoch (UTC)."""
    import pandas as pd

    frame = pd.read_csv(path, dtype={"team_id": "Int64", "territory_id": "Int64", "status": "string"})
    created = pd.to_datetime(frame["created_at"], utc=True, format="ISO8601").dt.as_unit("ns")
    closed = pd.to_datetime(frame["closed_at"], utc=True, format="ISO8601").dt.as_unit("ns")
    frame["has_close"] = closed.notna().to_numpy()
    frame["created_ns"] = created.astype("int64")
    frame["closed_ns"] = closed.fillna(pd.Timestamp(0, tz="UTC")).astype("int64")
    return frame.drop(columns=["created_at", "closed_at"])


def pandas_rows(frame, calendar: Calendar) -> dict:
    """Aggregate a DataFrame of the export with pandas, grain by grain; return rows and seconds."""
    import time

    import numpy as np

    seconds = {}
    started = time.monotonic()
    bounds = np.array([int(moment.timestamp() * 1_000_000_000) for moment in calendar.month_starts_utc], dtype="int64")
    created = frame["created_ns"].to_numpy("int64")
    closed = frame["closed_ns"].to_numpy("int64")
    # Month index from 0, by binary search over the UTC month starts (the local-date rule).
    frame = frame.assign(
        cm=np.searchsorted(bounds, created, side="right") - 1,
        lm=np.searchsorted(bounds, np.maximum(created, closed), side="right") - 1,
        xm=np.searchsorted(bounds, closed, side="right") - 1,
        cycle=(closed - created) / 86_400e9,
        amount0=frame["base_amount"].fillna(0.0),
    )
    quarter_of = np.array(calendar.quarter_of, dtype="datetime64[D]")
    year_of = np.array(calendar.year_of, dtype="datetime64[D]")
    month_of = np.array(calendar.month_starts, dtype="datetime64[D]")
    shared = time.monotonic() - started

    subject_columns = {"organization": None, "territory": "territory_id", "team": "team_id", "rep": "owner_id"}
    rows = {}
    for grain in GRAINS:
        started = time.monotonic()
        column = subject_columns[grain]
        data = frame.assign(s=0) if column is None else frame[frame[column].notna()].assign(s=frame[column])
        data = data.assign(s=data["s"].astype("int64"))
        done = data[data["status"].isin(["won", "lost"]) & data["has_close"] & (data["xm"] >= 0)]
        done = done.assign(
            month=month_of[done["xm"].to_numpy()], quarter=quarter_of[done["xm"].to_numpy()],
            year=year_of[done["xm"].to_numpy()], won=done["status"] == "won",
        )
        done = done.assign(
            won_amount=np.where(done["won"], done["base_amount"], np.nan),
            lost_amount=np.where(~done["won"], done["base_amount"], np.nan),
            won_cycle=np.where(done["won"], done["cycle"], np.nan),
        )
        grouped_by_kind = {}
        for kind in KINDS:
            grouped_by_kind[kind] = done.groupby(["s", kind]).agg(
                won=("won", "sum"), closed=("won", "size"), won_amount=("won_amount", "sum"),
                lost_amount=("lost_amount", "sum"), cycle=("won_cycle", "sum"), median=("won_cycle", "median"),
            )
        created_delta = data.groupby(["s", "cm"]).agg(n=("cm", "size"), a=("amount0", "sum"))
        left = data[data["has_close"]]
        left_delta = left.groupby(["s", "lm"]).agg(n=("lm", "size"), a=("amount0", "sum"))
        left_delta.index = left_delta.index.set_names(["s", "cm"])
        delta = created_delta.sub(left_delta, fill_value=0)
        month_count = len(calendar.month_starts)
        counts = delta["n"].unstack(fill_value=0).reindex(columns=range(month_count), fill_value=0).cumsum(axis=1)
        amounts = delta["a"].unstack(fill_value=0).reindex(columns=range(month_count), fill_value=0).cumsum(axis=1)
        seconds[grain] = time.monotonic() - started

        # Turning the frames into report rows is bookkeeping for the comparison, not timed.
        closed_map = {}
        for kind, grouped in grouped_by_kind.items():
            for (s, start), won, closed_count, won_amount, lost_amount, cycle, median in grouped.itertuples(name=None):
                closed_map[(kind, start.date(), s)] = (
                    won, closed_count - won, won_amount, lost_amount, cycle, None if np.isnan(median) else median,
                )
        open_map = {}
        count_values, amount_values = counts.to_numpy(), amounts.to_numpy()
        for row, s in enumerate(counts.index):
            for month in np.nonzero(count_values[row])[0]:
                open_map[(s, int(month))] = (count_values[row, month], amount_values[row, month])
        _assemble(rows, grain, calendar, closed_map, open_map)
    seconds["shared"] = shared
    return {"rows": rows, "seconds": seconds}


def rows_compare(expected: dict, actual: dict) -> list[str]:
    """Differences between two row sets, as text; counts exact, money to the cent, days to 1e-5."""
    problems = []
    for key in sorted(set(expected) | set(actual), key=str):
        left, right = expected.get(key), actual.get(key)
        if left is None or right is None:
            problems.append(f"{key}: only in {'actual' if left is None else 'expected'}")
            continue
        for name in ("won_count", "lost_count", "open_count"):
            if getattr(left, name) != getattr(right, name):
                problems.append(f"{key} {name}: {getattr(left, name)} != {getattr(right, name)}")
        for name in ("won_amount", "lost_amount", "open_amount"):
            if abs(getattr(left, name) - getattr(right, name)) > 0.005:
                problems.append(f"{key} {name}: {getattr(left, name)} != {getattr(right, name)}")
        if abs(left.cycle_days_sum - right.cycle_days_sum) > 1e-6 * max(1.0, abs(left.cycle_days_sum)):
            problems.append(f"{key} cycle_days_sum: {left.cycle_days_sum} != {right.cycle_days_sum}")
        if (left.cycle_days_median is None) != (right.cycle_days_median is None) or (
            left.cycle_days_median is not None and abs(left.cycle_days_median - right.cycle_days_median) > 2e-6
        ):
            problems.append(f"{key} cycle_days_median: {left.cycle_days_median} != {right.cycle_days_median}")
    return problems
