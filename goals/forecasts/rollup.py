"""The reporting tree, forecast submissions and their roll-up through teams.

The tree: a member's parent is their `manager`; without one, the manager of their team,
or of the nearest parent team that has a manager. Only managers and admins lead in the
tree: a `manager` link or a team led by a member with the rep role (a demoted manager,
say) counts as none, because spm.tenancy lets a rep see only themselves. A member
without a parent is at the top, under the organization. Admins are in the tree only
when someone reports to them.

A person's forecast for a period ("in force") is their latest submission, whoever made
it: their own call, or a manager's adjustment. Without a submission, a manager's
figure is the sum of their reports' figures plus the categories of their own deals,
and a rep's figure is what the categories suggest (commit: won so far + commit deals;
best case: + best-case deals). The organization's figure is the sum over the top.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dashboards.templatetags.spm_format import format_money, period_name
from goals.forecasts.pipeline import ZERO, CategoryTotals
from goals.models import ForecastSubmission, Team
from pipelines.models import MAX_MONEY_AMOUNT
from spm.fiscal import Period
from spm.models import Membership, Organization, Role

logger = logging.getLogger(__name__)

SOURCE_SUBMITTED = "submitted"
SOURCE_ADJUSTED = "adjusted"
SOURCE_ROLLUP = "rollup"
SOURCE_SYSTEM = "system"


@dataclass
class ForecastTree:
    """Parent and children of every member in the forecast roll-up; `None` is the organization.

    `members` and every list of children are in name order.
    """

    members: dict[int, Membership]
    parent: dict[int, int | None]
    children: dict[int | None, list[int]]

    def restricted_to(self, member_ids: set[int]) -> "ForecastTree":
        """Return the tree without the members outside `member_ids`; a member whose parent is left out goes to the top."""
        parent = {
            member_id: parent_id if parent_id in member_ids else None
            for member_id, parent_id in self.parent.items()
            if member_id in member_ids
        }
        children: dict[int | None, list[int]] = {}
        for member_id in self.members:
            if member_id in parent:
                children.setdefault(parent[member_id], []).append(member_id)
        return ForecastTree(
            members={member_id: member for member_id, member in self.members.items() if member_id in parent},
            parent=parent,
            children=children,
        )

    def subtree(self, member_id: int | None) -> set[int]:
        """Return `member_id` and everyone below it; `None` gives every member of the tree."""
        found = set() if member_id is None else {member_id}
        frontier = list(self.children.get(member_id, []))
        while frontier:
            current = frontier.pop()
            if current in found:
                continue
            found.add(current)
            frontier.extend(self.children.get(current, []))
        return found


def forecast_tree() -> ForecastTree:
    """Build the reporting tree of the current organization in two queries.

    A chain of managers that loops back on itself is cut where it would close the
    loop: the first member of the loop in name order goes to the top. Members who
    only report into a loop keep their parent.
    """
    members = {
        member.pk: member
        for member in Membership.objects.select_related("user").order_by("user__name", "user__email", "pk")
    }
    teams = {team_id: (parent_id, manager_id) for team_id, parent_id, manager_id in Team.objects.values_list(
        "id", "parent_id", "manager_id"
    )}

    def leads(member: Membership, leader_id: int | None) -> bool:
        leader = members.get(leader_id)
        return leader is not None and leader_id != member.pk and leader.role in (Role.MANAGER, Role.ADMIN)

    def parent_of(member: Membership) -> int | None:
        if leads(member, member.manager_id):
            return member.manager_id
        team_id, seen = member.team_id, set()
        while team_id is not None and team_id not in seen:
            seen.add(team_id)
            parent_team_id, manager_id = teams.get(team_id, (None, None))
            if leads(member, manager_id):
                return manager_id
            team_id = parent_team_id
        return None

    parent = {member_id: parent_of(member) for member_id, member in members.items()}
    for member_id in members:
        # Walk up. A walk that returns to the member closes a loop, so the member's link to its
        # parent is cut. A walk that meets another member twice ran into a loop higher up and
        # stops without a cut, because that loop is cut at one of its own members.
        seen, current = {member_id}, parent[member_id]
        while current is not None and current not in seen:
            seen.add(current)
            current = parent[current]
        if current == member_id:
            parent[member_id] = None

    has_reports = {parent_id for parent_id in parent.values() if parent_id is not None}
    in_tree = {
        member_id
        for member_id, member in members.items()
        if member.role != Role.ADMIN or member_id in has_reports
    }
    children: dict[int | None, list[int]] = {}
    for member_id in members:
        if member_id in in_tree:
            children.setdefault(parent[member_id], []).append(member_id)
    return ForecastTree(
        members={member_id: member for member_id, member in members.items() if member_id in in_tree},
        parent={member_id: parent[member_id] for member_id in members if member_id in in_tree},
        children=children,
    )


def submissions_in_force(*, period: Period, as_of: dt.datetime | None = None) -> dict[int, ForecastSubmission]:
    """Return subject id → the latest submission for `period`, made at or before `as_of` (default: any time)."""
    submissions = ForecastSubmission.objects.filter(period_kind=period.kind, period_start=period.start)
    if as_of is not None:
        submissions = submissions.filter(submitted_at__lte=as_of)
    latest = {}
    for submission in submissions.select_related("submitted_by__user").order_by("submitted_at", "pk"):
        latest[submission.subject_id] = submission
    return latest


def submission_history(*, period: Period, subject_ids: set[int]) -> list[ForecastSubmission]:
    """Return every submission for `period` about `subject_ids`, newest first."""
    return list(
        ForecastSubmission.objects.filter(
            period_kind=period.kind, period_start=period.start, subject_id__in=subject_ids
        )
        .select_related("subject__user", "submitted_by__user")
        .order_by("-submitted_at", "-pk")
    )


@dataclass
class RollupLine:
    """One person's forecast in a roll-up table, or the organization's when `member` is None."""

    member: Membership | None
    totals: CategoryTotals
    own_totals: CategoryTotals
    submission: ForecastSubmission | None
    commit: Decimal
    best_case: Decimal
    source: str
    rolled_up_commit: Decimal | None = None
    rolled_up_best_case: Decimal | None = None
    report_count: int = 0
    children: list["RollupLine"] = field(default_factory=list)

    @property
    def member_id(self) -> int | None:
        return self.member.pk if self.member is not None else None


def forecast_rollup(
    *, tree: ForecastTree, root_id: int | None, totals_by_owner: dict[int, CategoryTotals], latest: dict
) -> RollupLine:
    """Return the roll-up below `root_id` (None: the whole organization) as a tree of RollupLines.

    `totals_by_owner` comes from `pipeline.category_totals_by_owner` and `latest` from
    `submissions_in_force`. Each line's `totals` covers its whole subtree.
    """

    def build(member_id: int | None, path: frozenset) -> RollupLine:
        own = totals_by_owner.get(member_id, CategoryTotals()) if member_id is not None else CategoryTotals()
        subtree_totals = CategoryTotals()
        subtree_totals.add(own)
        lines = [
            build(child_id, path | {child_id}) for child_id in tree.children.get(member_id, []) if child_id not in path
        ]
        for line in lines:
            subtree_totals.add(line.totals)
        rolled_up = None
        if lines:
            rolled_up = (
                own.suggested_commit + sum((line.commit for line in lines), ZERO),
                own.suggested_best_case + sum((line.best_case for line in lines), ZERO),
            )
        submission = latest.get(member_id) if member_id is not None else None
        if submission is not None:
            is_own = submission.submitted_by_id == member_id
            commit, best_case = submission.commit_amount, submission.best_case_amount
            source = SOURCE_SUBMITTED if is_own else SOURCE_ADJUSTED
        elif rolled_up is not None:
            commit, best_case = rolled_up
            source = SOURCE_ROLLUP
        else:
            commit, best_case = own.suggested_commit, own.suggested_best_case
            source = SOURCE_SYSTEM
        return RollupLine(
            member=tree.members.get(member_id) if member_id is not None else None,
            totals=subtree_totals,
            own_totals=own,
            submission=submission,
            commit=commit,
            best_case=best_case,
            source=source,
            rolled_up_commit=rolled_up[0] if rolled_up else None,
            rolled_up_best_case=rolled_up[1] if rolled_up else None,
            report_count=len(lines),
            children=lines,
        )

    return build(root_id, frozenset({root_id}))


def submittable_periods(*, today: dt.date, kind: str, start_month: int) -> list[Period]:
    """Return the current and the next forecast period, the only ones open for submissions."""
    from spm.fiscal import period_containing

    current = period_containing(today, kind, start_month)
    return [current, period_containing(current.end, kind, start_month)]


@transaction.atomic
def forecast_submit(
    *,
    organization: Organization,
    subject: Membership,
    submitted_by: Membership,
    period: Period,
    commit_amount: Decimal,
    best_case_amount: Decimal,
    comment: str = "",
    today: dt.date,
    submitted_at: dt.datetime | None = None,
) -> ForecastSubmission:
    """Append a forecast call for `subject`'s period; earlier calls stay as history.

    The caller has checked that `submitted_by` may see `subject`. Raises ValidationError
    when the period is neither the current nor the next one of the organization's
    forecast period kind, when an amount is negative or above MAX_MONEY_AMOUNT, or when
    best case is below commit.
    """
    allowed = submittable_periods(today=today, kind=period.kind, start_month=organization.fiscal_year_start_month)
    if period not in allowed:
        raise ValidationError(
            _("Forecasts can be submitted for %(current)s and %(next)s only, not for %(value)s.")
            % {"current": period_name(allowed[0]), "next": period_name(allowed[1]), "value": period_name(period)}
        )
    currency = organization.currency
    if commit_amount < 0 or best_case_amount < 0:
        raise ValidationError(_("Forecast commit and best case must be 0 or more."))
    if commit_amount > MAX_MONEY_AMOUNT or best_case_amount > MAX_MONEY_AMOUNT:
        raise ValidationError(
            _("Forecast commit and best case can be at most %(maximum)s.")
            % {"maximum": format_money(MAX_MONEY_AMOUNT, currency)}
        )
    if best_case_amount < commit_amount:
        raise ValidationError(
            _("Best case (%(best_case)s) is below commit (%(commit)s); best case includes the commit, so enter at least the commit.")
            % {"best_case": format_money(best_case_amount, currency), "commit": format_money(commit_amount, currency)}
        )

    submission = ForecastSubmission.objects.create(
        organization=organization,
        subject=subject,
        submitted_by=submitted_by,
        period_kind=period.kind,
        period_start=period.start,
        commit_amount=commit_amount,
        best_case_amount=best_case_amount,
        comment=comment.strip(),
        submitted_at=submitted_at or timezone.now(),
    )
    logger.info(
        "Forecast submitted organization_id=%s submission_id=%s subject_id=%s submitted_by_id=%s",
        organization.pk,
        submission.pk,
        subject.pk,
        submitted_by.pk,
    )
    return submission
