"""Reads composed for the manager dashboard and the rep scorecard.

They combine the snapshot selectors in dashboards.selectors with the member's
visibility: which KPI row heads the dashboard, which reps the table lists,
and the team median the scorecard compares with. Nothing here writes.
"""

import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q
from django.utils.translation import gettext as _

from coaching.signals import team_median_min_values
from dashboards import charts, display
from dashboards.forms import REP_SORT_FIELDS
from dashboards.kpis import KpiRow
from dashboards.models import Grain
from dashboards.selectors import kpi_quarter_last_closed, kpi_row_series, kpi_rows
from goals.models import Team
from spm.fiscal import (
    MONTH,
    QUARTER,
    YEAR,
    Period,
    fiscal_year,
    fiscal_year_of,
    periods_covering,
)
from spm.models import Membership, Organization, Role


@dataclass(frozen=True)
class Headline:
    """The KPI row heading the dashboard, and how to list the deals behind it."""

    row: KpiRow | None
    title: str
    # Query parameters that narrow the deal list to this row's subject (grain/subject or team).
    drilldown: dict = field(default_factory=dict)
    # The (grain, subject_id) pairs whose monthly rows add up to this headline, for the chart.
    subjects: tuple = ()


def kpi_row_combine(rows: list[KpiRow], *, grain: str, subject: str) -> KpiRow:
    """Add up several subjects' rows into one, e.g. all teams a manager leads.

    Counts, amounts and cycle-day sums add, so every derived rate stays exact.
    A median cannot be combined from medians, so the result has none unless
    there is exactly one row.
    """
    if len(rows) == 1:
        return rows[0]
    return KpiRow(
        grain=grain,
        subject_id=0,
        subject=subject,
        won_count=sum(row.won_count for row in rows),
        lost_count=sum(row.lost_count for row in rows),
        won_amount=sum((row.won_amount for row in rows), Decimal("0")),
        lost_amount=sum((row.lost_amount for row in rows), Decimal("0")),
        cycle_days_sum=sum((row.cycle_days_sum for row in rows), Decimal("0")),
        cycle_days_median=None,
        open_count=sum(row.open_count for row in rows),
        open_amount=sum((row.open_amount for row in rows), Decimal("0")),
    )


def dashboard_headline(
    *, organization: Organization, membership: Membership, period: Period, teams: list[Team], team: Team | None
) -> Headline:
    """Pick the dashboard's headline row for the member.

    With a team selected it is that team's row. Otherwise an admin sees the
    organization row, and a manager the sum of the teams in `teams` (as from
    pipelines.selectors.team_list_visible), or that team's row when there is only one.
    Team rows count the deals of the team's direct members, so summing a team
    and its sub-teams counts no deal twice.
    """
    if team is not None:
        rows = kpi_rows(organization=organization, period=period, grain=Grain.TEAM, subject_ids={team.pk})
        return Headline(
            row=rows[0] if rows else None,
            title=team.name,
            drilldown={"team": [team.pk]},
            subjects=((Grain.TEAM, team.pk),),
        )

    if membership.role == Role.ADMIN:
        rows = kpi_rows(organization=organization, period=period, grain=Grain.ORGANIZATION, subject_ids={0})
        return Headline(
            row=rows[0] if rows else None,
            title=organization.name,
            drilldown={"grain": Grain.ORGANIZATION},
            subjects=((Grain.ORGANIZATION, 0),),
        )

    team_ids = [visible_team.pk for visible_team in teams]
    if not team_ids:
        return Headline(row=None, title=_("No team"), drilldown={"team": []}, subjects=())
    rows = kpi_rows(organization=organization, period=period, grain=Grain.TEAM, subject_ids=set(team_ids))
    title = teams[0].name if len(teams) == 1 else _("Your teams")
    row = kpi_row_combine(rows, grain=Grain.TEAM, subject=title) if rows else None
    return Headline(
        row=row,
        title=title,
        drilldown={"team": team_ids},
        subjects=tuple((Grain.TEAM, team_id) for team_id in team_ids),
    )


def dashboard_rep_rows(
    *,
    organization: Organization,
    period: Period,
    visible_member_ids: set[int] | None,
    team: Team | None,
    sort: str,
) -> list[KpiRow]:
    """Return the rep-grain rows the member may see, narrowed to `team`'s direct members, sorted.

    `sort` is a key of dashboards.forms.REP_SORT_FIELDS, "-" first for
    descending. Undefined values (a win rate without closed deals) sort last
    in both directions, then the rep's name breaks ties.
    """
    subject_ids = visible_member_ids
    if team is not None:
        team_member_ids = set(Membership.objects.filter(team=team).values_list("pk", flat=True))
        subject_ids = team_member_ids if subject_ids is None else subject_ids & team_member_ids
    rows = kpi_rows(organization=organization, period=period, grain=Grain.REP, subject_ids=subject_ids)
    return kpi_rows_sorted(rows, sort)


def kpi_rows_sorted(rows: list[KpiRow], sort: str) -> list[KpiRow]:
    descending = sort.startswith("-")
    attribute = REP_SORT_FIELDS[sort.lstrip("-")]
    defined = [row for row in rows if getattr(row, attribute) is not None]
    undefined = [row for row in rows if getattr(row, attribute) is None]
    defined.sort(key=lambda row: row.subject.casefold())
    defined.sort(key=lambda row: getattr(row, attribute), reverse=descending)
    undefined.sort(key=lambda row: row.subject.casefold())
    return defined + undefined


def rep_table_headers(sort: str) -> list[dict]:
    """Return the rep table's column headers with the `sort` value each header link requests.

    A sortable column sorts descending on the first click and flips direction
    on the next. `aria_sort` marks the current sort column for screen readers.
    """
    attribute_to_sort = {attribute: key for key, attribute in REP_SORT_FIELDS.items()}
    current = sort.lstrip("-")
    headers = []
    for key in display.TABLE_KEYS:
        sort_key = attribute_to_sort.get(key, "")
        aria_sort = ""
        sort_param = ""
        if sort_key:
            if sort_key == current:
                aria_sort = "descending" if sort.startswith("-") else "ascending"
            sort_param = sort_key if sort == f"-{sort_key}" else f"-{sort_key}"
        headers.append({"kpi": display.KPIS[key], "sort_param": sort_param, "aria_sort": aria_sort})
    return headers


def fiscal_year_months(period: Period, fiscal_year_start_month: int) -> list[Period]:
    """Return the calendar months of the fiscal year that contains `period`'s start."""
    year = fiscal_year(fiscal_year_of(period.start, fiscal_year_start_month), fiscal_year_start_month)
    return periods_covering(year.start, year.last_day, MONTH, fiscal_year_start_month)


def headline_monthly_series(
    *, organization: Organization, headline: Headline, months: list[Period]
) -> list[tuple[Period, KpiRow | None]]:
    """Return the headline subject's row per month; several subjects are added up month by month.

    One query per subject: a manager leading three teams costs three.
    """
    per_subject = [
        kpi_row_series(organization=organization, periods=months, grain=grain, subject_id=subject_id)
        for grain, subject_id in headline.subjects
    ]
    if len(per_subject) == 1:
        return per_subject[0]

    series = []
    for index, month in enumerate(months):
        rows = [subject_series[index][1] for subject_series in per_subject if subject_series[index][1] is not None]
        combined = kpi_row_combine(rows, grain=Grain.TEAM, subject=headline.title) if rows else None
        series.append((month, combined))
    return series


@dataclass(frozen=True)
class TeamMedian:
    """The team median of one KPI on the scorecard.

    `value_count` is the number of reps with a defined value, the member's
    own included. `value` is None when nobody has a value or when the median
    is hidden because fewer than `min_values` reps have one.
    """

    value: Decimal | None
    value_count: int
    min_values: int

    @property
    def is_hidden(self) -> bool:
        return 0 < self.value_count < self.min_values


def scorecard_team_median(
    *, organization: Organization, membership: Membership, period: Period
) -> dict[str, TeamMedian]:
    """Return the median of each table KPI over the rep rows of the member's team, keyed like display.TABLE_KEYS.

    The team is every rep of the member's own team who was active during the
    period (no end date before it, no start date after it), the member
    included. A rep without a snapshot row had no deals, so their counts and
    amounts are 0 and their rates undefined. Undefined values are left out of
    each median, and a KPI undefined for everyone has the value None.

    A median over fewer values than coaching.signals.team_median_min_values
    (3, or the organization's minimum group size if larger) is hidden, because
    in a team of two the median is the mean and gives away the colleague's
    exact figure. Returns {} for a member without a team.
    """
    if membership.team_id is None:
        return {}

    active = (Q(active_from__isnull=True) | Q(active_from__lte=period.last_day)) & (
        Q(active_to__isnull=True) | Q(active_to__gte=period.start)
    )
    rep_ids = set(
        Membership.objects.filter(active, team_id=membership.team_id, role=Role.REP).values_list("pk", flat=True)
    )
    rep_ids.add(membership.pk)
    team_rows = kpi_rows(organization=organization, period=period, grain=Grain.REP, subject_ids=rep_ids)
    rows = {row.subject_id: row for row in team_rows}
    min_values = team_median_min_values(organization)

    medians = {}
    for key in display.TABLE_KEYS:
        values = []
        for rep_id in rep_ids:
            row = rows.get(rep_id)
            value = getattr(row, key) if row is not None else _value_without_row(key)
            if value is not None:
                values.append(Decimal(value))
        has_enough_values = len(values) >= min_values
        medians[key] = TeamMedian(
            value=statistics.median(values) if has_enough_values else None,
            value_count=len(values),
            min_values=min_values,
        )
    return medians


def _value_without_row(key: str):
    # Counts and amounts of a rep without deals are 0; rates and averages are undefined.
    return None if display.KPIS[key].undefined_reason else 0


def drilldown_url(base_url: str, *, period: Period, metric: str, **parameters) -> str:
    """Build the deal-list URL listing the deals behind one KPI number."""
    query = {"period": period.label, "metric": metric}
    for name, value in parameters.items():
        if value is None or value == "":
            continue
        query[name] = value
    return f"{base_url}?{urlencode(query, doseq=True)}"


def periods_grouped(periods: list[Period], selected: Period | None = None) -> list[tuple[str, list[Period]]]:
    """Group the picker's periods into fiscal years, quarters and months, newest first in each.

    A `selected` period without data is added, so the picker still shows what the page displays.
    """
    if selected is not None and selected not in periods:
        periods = sorted([*periods, selected], key=lambda period: period.start, reverse=True)
    groups = [(YEAR, _("Fiscal years")), (QUARTER, _("Quarters")), (MONTH, _("Months"))]
    grouped = []
    for kind, label in groups:
        members = [period for period in periods if period.kind == kind]
        if members:
            grouped.append((label, members))
    return grouped


def default_period(periods: list[Period], *, organization: Organization) -> Period | None:
    """Return the newest quarter with a won or lost deal, else the newest quarter with data, else the newest period.

    Snapshot rows run to the running quarter because deals open at a period's end
    count in it, so for data whose last close lies years back the newest quarter
    with data would show open deals only. One query; None without data.
    """
    last_closed = kpi_quarter_last_closed(organization=organization)
    if last_closed in periods:
        return last_closed
    for period in periods:
        if period.kind == QUARTER:
            return period
    return periods[0] if periods else None


@dataclass(frozen=True)
class KpiLine:
    """One row of a KPI table: the KPI row and, per table column, (KpiDisplay, drill-down URL or "")."""

    row: KpiRow | None
    cells: list


def kpi_line(row: KpiRow | None, *, deals_url: str, period: Period, **drilldown) -> KpiLine:
    """Pair each table KPI of `row` with the deal-list URL of the deals behind it."""
    cells = []
    for key in display.TABLE_KEYS:
        metric = display.KPIS[key].drilldown_metric
        url = drilldown_url(deals_url, period=period, metric=metric, **drilldown) if metric else ""
        cells.append((display.KPIS[key], url))
    return KpiLine(row=row, cells=cells)


def subject_lines(
    *, organization: Organization, period: Period, grain: str, subject_ids: set[int] | None, deals_url: str
) -> list[KpiLine]:
    """Return one KpiLine per team or territory row of `period`, by name, each cell linked to its deals; one query."""
    rows = kpi_rows(organization=organization, period=period, grain=grain, subject_ids=subject_ids)
    return [kpi_line(row, deals_url=deals_url, period=period, grain=grain, subject=row.subject_id) for row in rows]


@dataclass(frozen=True)
class DashboardPage:
    """Everything the dashboard's KPI content shows for one period and optional team."""

    headline: Headline
    tiles: list
    rep_headers: list
    rep_lines: list
    monthly_series: list
    won_amount_chart: dict
    win_rate_chart: dict
    # Rows of the teams and territories below the rep table, empty where the page shows none.
    team_lines: list = field(default_factory=list)
    territory_lines: list = field(default_factory=list)


def dashboard_page(
    *,
    organization: Organization,
    membership: Membership,
    visible_member_ids: set[int] | None,
    period: Period,
    teams: list[Team],
    team: Team | None,
    sort: str,
    deals_url: str,
) -> DashboardPage:
    """Read the headline row, the rep rows and the chart series, and build the figures.

    `teams` are the teams the member may see and `team` one of them or None.
    Every count and amount comes with the deal-list URL that lists exactly
    the deals behind it.
    """
    headline = dashboard_headline(
        organization=organization, membership=membership, period=period, teams=teams, team=team
    )
    tiles = []
    for key in display.TILE_KEYS:
        kpi = display.KPIS[key]
        url = ""
        if kpi.drilldown_metric:
            url = drilldown_url(deals_url, period=period, metric=kpi.drilldown_metric, **headline.drilldown)
        tiles.append((kpi, url))

    rep_rows = dashboard_rep_rows(
        organization=organization, period=period, visible_member_ids=visible_member_ids, team=team, sort=sort
    )
    team_parameter = {"team": [team.pk]} if team is not None else {}
    rep_lines = [
        kpi_line(row, deals_url=deals_url, period=period, grain=Grain.REP, subject=row.subject_id, **team_parameter)
        for row in rep_rows
    ]

    # Without a team filter, an admin compares every team and territory, and a manager who
    # leads several teams compares those. Territory rows count every rep's deals there, so
    # only admins, who see every rep, get them.
    team_lines, territory_lines = [], []
    if team is None and membership.role == Role.ADMIN:
        team_lines = subject_lines(
            organization=organization, period=period, grain=Grain.TEAM, subject_ids=None, deals_url=deals_url
        )
        territory_lines = subject_lines(
            organization=organization, period=period, grain=Grain.TERRITORY, subject_ids=None, deals_url=deals_url
        )
    elif team is None and len(teams) > 1:
        team_lines = subject_lines(
            organization=organization,
            period=period,
            grain=Grain.TEAM,
            subject_ids={visible_team.pk for visible_team in teams},
            deals_url=deals_url,
        )

    months = fiscal_year_months(period, organization.fiscal_year_start_month)
    monthly_series = headline_monthly_series(organization=organization, headline=headline, months=months)
    return DashboardPage(
        headline=headline,
        tiles=tiles,
        rep_headers=rep_table_headers(sort),
        rep_lines=rep_lines,
        monthly_series=monthly_series,
        won_amount_chart=charts.won_amount_by_month_chart(monthly_series, currency=organization.currency),
        win_rate_chart=charts.win_rate_by_rep_chart(rep_rows),
        team_lines=team_lines,
        territory_lines=territory_lines,
    )


@dataclass(frozen=True)
class ScorecardPage:
    """The member's own KPI row for one period beside the team median."""

    row: KpiRow | None
    # (KPI, drill-down URL, TeamMedian or None without a team) per table KPI.
    lines: list
    has_team: bool
    deals_url: str
    # Reps with a value a team median needs before it is shown (see scorecard_team_median).
    min_team_values: int


def scorecard_page(
    *, organization: Organization, membership: Membership, period: Period, deals_url: str
) -> ScorecardPage:
    """Read the member's rep-grain row and the median of their team's reps for `period`."""
    rows = kpi_rows(organization=organization, period=period, grain=Grain.REP, subject_ids={membership.pk})
    row = rows[0] if rows else None
    medians = scorecard_team_median(organization=organization, membership=membership, period=period)

    lines = []
    for key in display.TABLE_KEYS:
        kpi = display.KPIS[key]
        url = (
            drilldown_url(deals_url, period=period, metric=kpi.drilldown_metric, grain=Grain.REP, subject=membership.pk)
            if kpi.drilldown_metric
            else ""
        )
        lines.append((kpi, url, medians.get(key)))
    own_deals_url = f"{deals_url}?{urlencode({'grain': Grain.REP, 'subject': membership.pk})}"
    return ScorecardPage(
        row=row,
        lines=lines,
        has_team=bool(medians),
        deals_url=own_deals_url,
        min_team_values=team_median_min_values(organization),
    )
