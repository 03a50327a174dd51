"""Reads shared by goal views, attainment and tasks: assignments over time, org structure, quotas.

Crediting rule: a won deal counts for the team and territory its owner was
assigned to on the deal's close date (the local date of `closed_at`), taken
from `goals.Assignment` rows `[valid_from, valid_to)`. A member without any
Assignment row is credited to `Membership.team`/`territory` on every day. A
member with Assignment rows but none covering the day is credited to no team
or territory on that day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from dashboards.selectors import kpi_quarter_last_closed
from goals.models import Assignment, Quota, Team, Territory
from spm.fiscal import MONTH, QUARTER, YEAR, Period, period_containing, periods_covering
from spm.models import Membership


@dataclass(frozen=True)
class AssignmentAt:
    """A member's team and territory on one day; `assignment_id` is None for the Membership fallback."""

    team_id: int | None
    territory_id: int | None
    assignment_id: int | None


class AssignmentTimeline:
    """Every assignment of a set of members, loaded in two queries, to look up where a member was on a day."""

    def __init__(self, membership_ids: Iterable[int] | None = None):
        assignments = Assignment.objects.order_by("membership_id", "valid_from")
        members = Membership.objects.all()
        if membership_ids is not None:
            membership_ids = list(membership_ids)
            assignments = assignments.filter(membership_id__in=membership_ids)
            members = members.filter(pk__in=membership_ids)
        self._rows = defaultdict(list)
        for row in assignments.values_list("membership_id", "valid_from", "valid_to", "team_id", "territory_id", "id"):
            self._rows[row[0]].append(row[1:])
        self._current = {pk: (team_id, territory_id) for pk, team_id, territory_id in members.values_list("id", "team_id", "territory_id")}

    def at(self, membership_id: int, day: dt.date) -> AssignmentAt | None:
        """Return the member's assignment on `day`, or None when the member is unknown or unassigned then."""
        rows = self._rows.get(membership_id)
        if not rows:
            current = self._current.get(membership_id)
            return None if current is None else AssignmentAt(current[0], current[1], None)
        for valid_from, valid_to, team_id, territory_id, assignment_id in rows:
            if valid_from <= day and (valid_to is None or day < valid_to):
                return AssignmentAt(team_id, territory_id, assignment_id)
        return None


def assignment_at(*, membership_id: int, day: dt.date) -> AssignmentAt | None:
    """Return the team and territory of one member on `day` (rule in the module docstring)."""
    return AssignmentTimeline([membership_id]).at(membership_id, day)


def credit_rows(*, rows: Iterable[tuple[int, int, dt.date]], level: str) -> dict[int, int | None]:
    """Map deals to the team or territory they are credited to, in two queries.

    `rows` are (deal_id, owner membership_id, close date) tuples, the close
    date being the local date of `closed_at`; `level` is "team" or
    "territory". Returns {deal_id: team or territory id, or None when the
    owner had none on that day}.
    """
    if level not in ("team", "territory"):
        raise ValueError(f"Unknown credit level {level!r}; use team or territory.")
    rows = list(rows)
    timeline = AssignmentTimeline({owner_id for _deal_id, owner_id, _day in rows})
    credited = {}
    for deal_id, owner_id, day in rows:
        at = timeline.at(owner_id, day)
        if at is None:
            credited[deal_id] = None
        elif level == "team":
            credited[deal_id] = at.team_id
        else:
            credited[deal_id] = at.territory_id
    return credited


def assignment_history(*, membership_id: int):
    """Return one member's Assignment rows, oldest first, with team and territory loaded."""
    return Assignment.objects.filter(membership_id=membership_id).select_related("team", "territory").order_by("valid_from")


def subtree_ids(*, model, root_id: int) -> set[int]:
    """Return `root_id` and the ids of every Team or Territory below it (two-column read, one query)."""
    children = defaultdict(list)
    for pk, parent_id in model.objects.values_list("id", "parent_id"):
        children[parent_id].append(pk)
    found, frontier = {root_id}, [root_id]
    while frontier:
        frontier = [child for parent in frontier for child in children[parent] if child not in found]
        found.update(frontier)
    return found


def team_tree() -> list[tuple[Team, int]]:
    """Return every team in tree order with its depth (0 for top-level teams)."""
    return _tree(Team.objects.select_related("manager__user", "parent"))


def territory_tree() -> list[tuple[Territory, int]]:
    """Return every territory in tree order with its depth (0 for top-level territories)."""
    return _tree(Territory.objects.select_related("parent"))


def _tree(queryset) -> list:
    nodes = list(queryset.order_by("name"))
    children = defaultdict(list)
    known = {node.pk for node in nodes}
    for node in nodes:
        # A parent that is missing would hide the node, so treat it as top level.
        children[node.parent_id if node.parent_id in known else None].append(node)
    ordered, seen = [], set()

    def walk(parent_id, depth):
        for node in children[parent_id]:
            if node.pk in seen:
                continue
            seen.add(node.pk)
            ordered.append((node, depth))
            walk(node.pk, depth + 1)

    walk(None, 0)
    return ordered


def people_list():
    """Return the organization's memberships with user, team and territory, ordered by name."""
    return Membership.objects.select_related("user", "team", "territory", "manager__user", "ramp_schedule").order_by(
        "user__name", "user__email"
    )


# --- quota editor -------------------------------------------------------------------------------


@dataclass
class QuotaCell:
    """One editor cell: the stored quota of exactly this period, if any, and the effective target."""

    subject_id: int
    period: object
    explicit: object  # Decimal | None
    is_prorated: bool
    effective: object  # Decimal | None

    @property
    def is_rollup(self) -> bool:
        return self.explicit is None and self.effective is not None


@dataclass
class QuotaRow:
    subject_id: int
    label: str
    depth: int
    cells: list


@dataclass
class QuotaGrid:
    level: str
    metric: str
    year: int
    granularity: str
    periods: list
    rows: list
    totals: list  # Decimal | None per period
    off_calendar: list  # Quota rows whose start no longer begins a fiscal period


def quota_grid_periods(*, organization, year: int, granularity: str) -> list:
    from spm import fiscal

    year_period = fiscal.fiscal_year(year, organization.fiscal_year_start_month)
    if granularity == fiscal.YEAR:
        return [year_period]
    return fiscal.periods_covering(year_period.start, year_period.last_day, granularity, organization.fiscal_year_start_month)


def quota_grid(*, organization, year: int, granularity: str, level: str, metric: str) -> QuotaGrid:
    """Build the quota editor's rows, cells and totals for one fiscal year, granularity, level and metric.

    Runs a fixed number of queries: one QuotaBook for the whole year serves
    every column. The total of a column is the sum over reps for the rep
    level, and over top-level teams or territories otherwise, so sub-teams are
    not counted twice.
    """
    from goals.quotas import QuotaBook
    from spm import fiscal

    year_period = fiscal.fiscal_year(year, organization.fiscal_year_start_month)
    periods = quota_grid_periods(organization=organization, year=year, granularity=granularity)
    book = QuotaBook.load(organization=organization, period=year_period, metric=metric)

    if level == "rep":
        with_quota = set(book.quotas["rep"])
        members = [member for member in people_list() if member.role == "rep" or member.pk in with_quota]
        subjects = [(member.pk, member.display_name, 0, None) for member in members]
    else:
        tree = team_tree() if level == "team" else territory_tree()
        subjects = [(node.pk, node.name, depth, node.parent_id) for node, depth in tree]

    columns = []
    for period in periods:
        view = book.for_period(period)
        columns.append((period, view, view.targets(level)))

    rows = []
    for subject_id, label, depth, _parent in subjects:
        cells = []
        for period, view, targets in columns:
            explicit = view.explicit_cell(level, subject_id)
            cells.append(
                QuotaCell(
                    subject_id=subject_id,
                    period=period,
                    explicit=explicit[0] if explicit else None,
                    is_prorated=explicit[1] if explicit else True,
                    effective=targets.get(subject_id),
                )
            )
        rows.append(QuotaRow(subject_id=subject_id, label=label, depth=depth, cells=cells))

    top_level = {subject_id for subject_id, _label, _depth, parent in subjects if parent is None}
    totals = []
    for _period, _view, targets in columns:
        values = [value for subject_id, value in targets.items() if level == "rep" or subject_id in top_level]
        totals.append(sum(values) if values else None)

    return QuotaGrid(
        level=level,
        metric=metric,
        year=year,
        granularity=granularity,
        periods=periods,
        rows=rows,
        totals=totals,
        off_calendar=quota_off_calendar(organization=organization, level=level, metric=metric),
    )


def quota_off_calendar(*, organization, level: str, metric: str) -> list:
    """Return the quotas of `level` and `metric` whose start no longer begins a fiscal period of their kind."""
    from goals.models import Quota
    from spm import fiscal

    start_month = organization.fiscal_year_start_month
    quotas = Quota.objects.filter(level=level, metric=metric).select_related("membership__user", "team", "territory")
    return [
        quota
        for quota in quotas.order_by("period_start")
        if fiscal.period_containing(quota.period_start, quota.period_kind, start_month).start != quota.period_start
    ]


def default_goal_period(organization, today: dt.date) -> Period:
    """Return today's quarter, or the newest quarter with a won or lost deal when today's quarter has neither such a deal nor a quota.

    Snapshot rows run to today's quarter because deals still open count in it, so
    for data whose last close lies years back "today's quarter has KPI rows" would
    always hold, and goal pages would open on a quarter with nothing won.
    """
    start_month = organization.fiscal_year_start_month
    current = period_containing(today, QUARTER, start_month)
    last_closed = kpi_quarter_last_closed(organization=organization)
    if last_closed is None or last_closed.start >= current.start:
        return current
    # Quotas that cover today's quarter: its fiscal year's, its own and its months'.
    covering_starts = {
        period_containing(today, YEAR, start_month).start,
        current.start,
        *(month.start for month in periods_covering(current.start, current.last_day, MONTH, start_month)),
    }
    if Quota.objects.filter(organization=organization, period_start__in=covering_starts).exists():
        return current
    return last_closed
