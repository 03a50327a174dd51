"""Effective quota targets: explicit quotas, proration, ramps and roll-ups.

A quota is a full-period target. This module turns the stored `Quota` rows
into the target that applies to one subject (rep, team or territory) for one
fiscal period P and one metric. The rules, in the order they apply:

1. **Which quota.** The explicit quota whose period is exactly P (same kind,
   same start). Without one, P's contained shorter periods are used when each
   of them resolves to a quota: a year from its four quarters, a quarter from
   its three months. A quarter without a quota of its own counts as resolved
   when its three months have quotas. A month without a monthly quota has no
   target, because a quarter's or year's target is not split into months.
   Quota rows whose start is no longer a fiscal period boundary (after the
   fiscal calendar changed) apply to no period until they are edited.
2. **Proration (reps only).** Each quota is spread evenly over the days of its
   own period. A rep earns a day's share only on active days: days between
   `Membership.active_from` and `active_to` (both inclusive; empty means
   unbounded) that are not inside a `LeavePeriod`. So a rep hired on
   2025-02-15 gets 45/90 of a Q1 2025 quota. A quota with `is_prorated=False`
   is a fixed target: every day of its period counts, and neither proration
   nor the ramp reduces it.
3. **Ramp (reps only).** With a `Membership.ramp_schedule`, a day's share is
   multiplied by the percentage of the ramp month it falls in. Ramp month k
   (k = 0, 1, …) runs from `active_from` plus k months to `active_from` plus
   k + 1 months, the day of month clamped to the month's length; days after
   the list get 100 %. A member without `active_from` does not ramp.
4. **Roll-up (teams and territories).** The explicit quota (rule 1) of the
   team or territory when one exists, used as it is. Otherwise the sum of the
   members' day shares (rules 2 and 3) over the days each member was assigned
   to it by `goals.Assignment` (`[valid_from, valid_to)`), plus the targets of
   its child teams or territories (`parent`). A member without any Assignment
   row counts for `Membership.team`/`territory` over all of P.

Every rep target is rounded to cents (half up) once, after summing its day
shares; a roll-up sums the members' unrounded shares and is rounded once too.
A subject without any applicable quota has no target (None, or missing from
the dictionary); a rep whose quota applies but who is inactive for all of P
has a target of 0.00.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from spm import fiscal
from spm.fiscal import Period

CENT = Decimal("0.01")
LEVELS = ("rep", "team", "territory")


@dataclass(frozen=True)
class QuotaPiece:
    """One stored quota's part of P: its full target spread over `[start, end)`."""

    start: dt.date
    end: dt.date
    target: Decimal
    is_prorated: bool

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class MemberCalendar:
    """One member's active dates, leave, ramp and assignments, as rules 2–4 read them."""

    membership_id: int
    active_from: dt.date | None
    active_to: dt.date | None
    ramp_percentages: tuple[Decimal, ...]
    leave: tuple[tuple[dt.date, dt.date], ...]  # inclusive [first, last] day ranges
    team_id: int | None
    territory_id: int | None
    # (valid_from, valid_to exclusive or None, team_id, territory_id); empty means "use team_id/territory_id".
    assignments: tuple[tuple[dt.date, dt.date | None, int | None, int | None], ...]

    def is_active_on(self, day: dt.date) -> bool:
        if self.active_from is not None and day < self.active_from:
            return False
        if self.active_to is not None and day > self.active_to:
            return False
        return not any(first <= day <= last for first, last in self.leave)

    def ramp_factor_on(self, day: dt.date) -> Fraction:
        if not self.ramp_percentages or self.active_from is None or day < self.active_from:
            return Fraction(1)
        month_index = _months_since(self.active_from, day)
        if month_index >= len(self.ramp_percentages):
            return Fraction(1)
        return Fraction(self.ramp_percentages[month_index]) / 100

    def subject_on(self, day: dt.date, level: str) -> int | None:
        """Return the team or territory id the member belongs to on `day`, or None."""
        if not self.assignments:
            return self.team_id if level == "team" else self.territory_id
        for valid_from, valid_to, team_id, territory_id in self.assignments:
            if valid_from <= day and (valid_to is None or day < valid_to):
                return team_id if level == "team" else territory_id
        return None


def _add_months_clamped(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _months_since(anchor: dt.date, day: dt.date) -> int:
    """Return k such that `day` lies in `[anchor + k months, anchor + k+1 months)`."""
    months = (day.year - anchor.year) * 12 + (day.month - anchor.month)
    if _add_months_clamped(anchor, months) > day:
        months -= 1
    return months


def _to_cents(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


# --- rule 1: which quota -----------------------------------------------------------------------


def _contained_periods(period: Period, start_month: int) -> list[Period]:
    if period.kind == fiscal.YEAR:
        return fiscal.periods_covering(period.start, period.last_day, fiscal.QUARTER, start_month)
    if period.kind == fiscal.QUARTER:
        return fiscal.periods_covering(period.start, period.last_day, fiscal.MONTH, start_month)
    return []


def _pieces_for(
    quotas: dict[tuple[str, dt.date], tuple[Decimal, bool]], period: Period, start_month: int
) -> list[QuotaPiece] | None:
    """Return the quota pieces that make up `period` for one subject, or None (rule 1)."""
    explicit = quotas.get((period.kind, period.start))
    if explicit is not None:
        target, is_prorated = explicit
        return [QuotaPiece(period.start, period.end, target, is_prorated)]

    parts = _contained_periods(period, start_month)
    if not parts:
        return None
    pieces = []
    for part in parts:
        part_pieces = _pieces_for(quotas, part, start_month)
        if part_pieces is None:
            return None
        pieces.extend(part_pieces)
    return pieces


# --- rules 2 and 3: a rep's shares of each day ---------------------------------------------------------


def _breakpoints(member: MemberCalendar, start: dt.date, end: dt.date) -> list[dt.date]:
    """Return the sorted days in `(start, end)` where activity, ramp month or assignment may change."""
    one_day = dt.timedelta(days=1)
    candidates = set()
    if member.active_from is not None:
        candidates.add(member.active_from)
        if member.ramp_percentages:
            candidates.update(
                _add_months_clamped(member.active_from, k) for k in range(1, len(member.ramp_percentages) + 1)
            )
    if member.active_to is not None:
        candidates.add(member.active_to + one_day)
    for first, last in member.leave:
        candidates.update((first, last + one_day))
    for valid_from, valid_to, _team, _territory in member.assignments:
        candidates.add(valid_from)
        if valid_to is not None:
            candidates.add(valid_to)
    return sorted(day for day in candidates if start < day < end)


def _share_segments(pieces: list[QuotaPiece], member: MemberCalendar | None):
    """Yield (first day, end day exclusive, share as Fraction) of a rep's quota over constant stretches.

    Inside one stretch the member's activity, ramp percentage and assignment
    do not change, so its share is the per-day share times its length.
    """
    for piece in pieces:
        per_day = Fraction(piece.target) / piece.days
        if member is None:
            yield piece.start, piece.end, per_day * piece.days
            continue
        bounds = [piece.start, *_breakpoints(member, piece.start, piece.end), piece.end]
        for first, end in itertools.pairwise(bounds):
            length = (end - first).days
            if not piece.is_prorated:
                yield first, end, per_day * length
            elif member.is_active_on(first):
                yield first, end, per_day * length * member.ramp_factor_on(first)
            else:
                yield first, end, Fraction(0)


# --- loading ------------------------------------------------------------------------------------


class QuotaBook:
    """All rows needed to compute one metric's targets for one period, loaded in a fixed number of queries.

    Build it with `QuotaBook.load(...)` and read `targets(level)` or
    `explicit(level)`. The queries run in the current tenant scope.
    """

    def __init__(self, *, organization, period: Period, metric: str):
        self.organization = organization
        self.period = period
        self.metric = metric
        self.start_month = organization.fiscal_year_start_month
        self.quotas: dict[str, dict[int, dict[tuple[str, dt.date], tuple[Decimal, bool]]]] = {
            level: defaultdict(dict) for level in LEVELS
        }
        self.members: dict[int, MemberCalendar] = {}
        self.parents: dict[str, dict[int, int | None]] = {"team": {}, "territory": {}}

    @classmethod
    def load(cls, *, organization, period: Period, metric: str, membership_ids=None, need_structure=True) -> QuotaBook:
        book = cls(organization=organization, period=period, metric=metric)
        book._load_quotas(membership_ids)
        book._load_members(membership_ids)
        if need_structure:
            book._load_structure()
        return book

    def for_period(self, period: Period) -> QuotaBook:
        """Return a view of this book for a period inside the loaded one, sharing its rows (no queries)."""
        if not (self.period.start <= period.start and period.end <= self.period.end):
            raise ValueError(f"Period {period.label} lies outside the loaded period {self.period.label}.")
        view = copy.copy(self)
        view.period = period
        return view

    def _load_quotas(self, membership_ids) -> None:
        from goals.models import Quota

        rows = Quota.objects.filter(
            organization=self.organization,
            metric=self.metric,
            period_start__gte=self.period.start,
            period_start__lt=self.period.end,
        )
        if membership_ids is not None:
            rows = rows.filter(level="rep", membership_id__in=membership_ids)
        columns = ("level", "membership_id", "team_id", "territory_id", "period_kind", "period_start", "target", "is_prorated")
        for level, membership_id, team_id, territory_id, kind, start, target, is_prorated in rows.values_list(*columns):
            subject_id = {"rep": membership_id, "team": team_id, "territory": territory_id}[level]
            self.quotas[level][subject_id][(kind, start)] = (target, is_prorated)

    def _load_members(self, membership_ids) -> None:
        from goals.models import Assignment, LeavePeriod
        from spm.models import Membership

        period = self.period
        members = Membership.objects.filter(organization=self.organization)
        leaves = LeavePeriod.objects.filter(
            organization=self.organization, starts_on__lt=period.end, ends_on__gte=period.start
        )
        assignments = Assignment.objects.filter(organization=self.organization).order_by("membership_id", "valid_from")
        if membership_ids is not None:
            members = members.filter(pk__in=membership_ids)
            leaves = leaves.filter(membership_id__in=membership_ids)
            assignments = assignments.filter(membership_id__in=membership_ids)

        leave_by_member = defaultdict(list)
        for membership_id, first, last in leaves.values_list("membership_id", "starts_on", "ends_on"):
            leave_by_member[membership_id].append((first, last))
        # All of a member's rows, not only those overlapping P: a member with rows outside P only
        # was assigned elsewhere during P, and must not fall back to Membership.team.
        assignments_by_member = defaultdict(list)
        columns = ("membership_id", "valid_from", "valid_to", "team_id", "territory_id")
        for membership_id, valid_from, valid_to, team_id, territory_id in assignments.values_list(*columns):
            assignments_by_member[membership_id].append((valid_from, valid_to, team_id, territory_id))

        columns = ("id", "active_from", "active_to", "ramp_schedule__month_percentages", "team_id", "territory_id")
        for membership_id, active_from, active_to, ramp, team_id, territory_id in members.values_list(*columns):
            self.members[membership_id] = MemberCalendar(
                membership_id=membership_id,
                active_from=active_from,
                active_to=active_to,
                ramp_percentages=tuple(Decimal(str(value)) for value in (ramp or [])),
                leave=tuple(leave_by_member[membership_id]),
                team_id=team_id,
                territory_id=territory_id,
                assignments=tuple(assignments_by_member[membership_id]),
            )

    def _load_structure(self) -> None:
        from goals.models import Team, Territory

        self.parents["team"] = dict(Team.objects.filter(organization=self.organization).values_list("id", "parent_id"))
        self.parents["territory"] = dict(
            Territory.objects.filter(organization=self.organization).values_list("id", "parent_id")
        )

    # --- reading ---------------------------------------------------------------------------------

    def explicit(self, level: str) -> dict[int, Decimal]:
        """Return the subjects' stored targets for P (rule 1, unprorated) keyed by subject id."""
        result = {}
        for subject_id, quotas in self.quotas[level].items():
            pieces = _pieces_for(quotas, self.period, self.start_month)
            if pieces is not None:
                result[subject_id] = sum((piece.target for piece in pieces), Decimal(0))
        return result

    def explicit_cell(self, level: str, subject_id: int) -> tuple[Decimal, bool] | None:
        """Return (target, is_prorated) of the quota stored for exactly P, or None."""
        return self.quotas[level].get(subject_id, {}).get((self.period.kind, self.period.start))

    def rep_targets(self) -> dict[int, Decimal]:
        return {membership_id: _to_cents(total) for membership_id, total in self._rep_exact().items()}

    def _rep_exact(self) -> dict[int, Fraction]:
        result = {}
        for membership_id, quotas in self.quotas["rep"].items():
            pieces = _pieces_for(quotas, self.period, self.start_month)
            if pieces is None:
                continue
            member = self.members.get(membership_id)
            result[membership_id] = sum((share for _first, _end, share in _share_segments(pieces, member)), Fraction(0))
        return result

    def group_targets(self, level: str) -> dict[int, Decimal]:
        """Return every team's or territory's target (rule 4) keyed by its id."""
        direct: dict[int, Fraction] = defaultdict(Fraction)
        for membership_id, quotas in self.quotas["rep"].items():
            pieces = _pieces_for(quotas, self.period, self.start_month)
            member = self.members.get(membership_id)
            if pieces is None or member is None:
                continue
            for first, _end, share in _share_segments(pieces, member):
                # A member with a quota makes the group's target defined, even when the share is zero.
                subject_id = member.subject_on(first, level)
                if subject_id is not None:
                    direct[subject_id] += share

        explicit = self.explicit(level)
        parents = self.parents[level]
        children = defaultdict(list)
        for subject_id, parent_id in parents.items():
            children[parent_id].append(subject_id)

        resolved: dict[int, Fraction | None] = {}

        def resolve(subject_id: int, path: frozenset) -> Fraction | None:
            if subject_id in resolved:
                return resolved[subject_id]
            if subject_id in explicit:
                value = Fraction(explicit[subject_id])
            else:
                parts = [direct[subject_id]] if subject_id in direct else []
                for child_id in children.get(subject_id, []):
                    # The services reject cycles; the path guard keeps a corrupt tree from recursing forever.
                    if child_id not in path:
                        child_value = resolve(child_id, path | {child_id})
                        if child_value is not None:
                            parts.append(child_value)
                value = sum(parts, Fraction(0)) if parts else None
            resolved[subject_id] = value
            return value

        for subject_id in set(parents) | set(direct) | set(explicit):
            resolve(subject_id, frozenset({subject_id}))
        return {subject_id: _to_cents(value) for subject_id, value in resolved.items() if value is not None}

    def targets(self, level: str) -> dict[int, Decimal]:
        if level == "rep":
            return self.rep_targets()
        if level in ("team", "territory"):
            return self.group_targets(level)
        raise ValueError(f"Unknown quota level {level!r}; use one of {', '.join(LEVELS)}.")


def quota_targets_for_period(*, organization, period: Period, metric: str, level: str) -> dict[int, Decimal]:
    """Return the effective target of every subject of `level` for `period` and `metric`.

    Keys are Membership ids for "rep", Team ids for "team" and Territory ids
    for "territory". Values are Decimals rounded to cents, in the metric's
    unit: base currency for won_revenue and pipeline_created, counts otherwise.
    Subjects without an applicable quota are missing. The rules are in this
    module's docstring. Runs six queries whatever the number of subjects, in
    the current tenant scope.
    """
    if level not in LEVELS:
        raise ValueError(f"Unknown quota level {level!r}; use one of {', '.join(LEVELS)}.")
    book = QuotaBook.load(organization=organization, period=period, metric=metric, need_structure=level != "rep")
    return book.targets(level)


def quota_target_for(*, organization, level: str, subject_id: int, period: Period, metric: str) -> Decimal | None:
    """Return one subject's effective target for `period` and `metric`, or None when no quota applies.

    Same rules and units as `quota_targets_for_period`. For a rep only that
    rep's rows are read; a team or territory needs every member's rows.
    """
    if level not in LEVELS:
        raise ValueError(f"Unknown quota level {level!r}; use one of {', '.join(LEVELS)}.")
    if level == "rep":
        book = QuotaBook.load(
            organization=organization, period=period, metric=metric, membership_ids=[subject_id], need_structure=False
        )
        return book.rep_targets().get(subject_id)
    return quota_targets_for_period(organization=organization, period=period, metric=metric, level=level).get(
        subject_id
    )
