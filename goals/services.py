"""Writes for goals: organization settings, teams, territories, assignments, leave, quotas.

Every change of quotas, roles, assignments, teams, territories and settings
writes one `spm.models.AuditLog` row with the actor, the changed values
before and after, and the optional reason (stored as `after["reason"]`).
Each service is one transaction; callers pass keyword arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from goals.attainment import COUNT_METRICS, organization_today
from goals.models import (
    Assignment,
    ForecastSnapshot,
    ForecastSubmission,
    LeavePeriod,
    Quota,
    QuotaMetric,
    QuotaPeriodKind,
    QuotaTemplate,
    RampSchedule,
    Team,
    Territory,
)
from pipelines.models import Deal, ExchangeRate
from pipelines.services import kpi_recompute_schedule
from spm import fiscal
from spm.audit import REASON_QUOTA_TEMPLATE, audit_reason
from spm.currencies import is_currency_code
from spm.date_limits import short_date
from spm.models import AuditLog, Membership, Organization, Role, User
from spm.rounding import round_half_up
from spm.tenancy import last_admin_check

logger = logging.getLogger(__name__)

SETTINGS_FIELDS = (
    "fiscal_year_start_month",
    "time_zone",
    "currency",
    "language",
    "attainment_warning_percent",
    "leaderboard_privacy",
    "minimum_group_size",
)
# Settings that move period boundaries or the local date of timestamps, so every KPI row changes.
RECOMPUTE_FIELDS = ("fiscal_year_start_month", "time_zone")
# The first day an Assignment made for a member's values before any history was recorded.
HISTORY_START = dt.date(1900, 1, 1)


def _json(value):
    if isinstance(value, (int, str, bool, type(None))):
        return value
    return str(value)


def audit_write(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    object_type: str,
    object_id,
    before: dict | None,
    after: dict | None,
    reason: str | dict = "",
) -> AuditLog:
    """Append one audit row; `reason`, when given, is stored as `after["reason"]`.

    A reason is text a person typed, or a language-neutral reason of the product
    from `spm.audit.audit_reason`, which the audit page translates.
    """
    after = None if after is None else {key: _json(value) for key, value in after.items()}
    if reason:
        after = {**(after or {}), "reason": reason}
    return AuditLog.objects.create(
        organization=organization,
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=None if before is None else {key: _json(value) for key, value in before.items()},
        after=after,
    )


# --- organization settings ----------------------------------------------------------------------


def currency_check(code: str) -> str:
    """Return `code` upper-cased if it is an ISO 4217 currency code (see spm.currencies); raise ValidationError otherwise."""
    normalized = (code or "").strip().upper()
    if not is_currency_code(normalized):
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code; use a code such as EUR, CHF or USD.") % {"value": code}
        )
    return normalized


def organization_has_base_amounts(organization: Organization) -> bool:
    """Return whether the organization stores amounts in its base currency.

    These are deals (soft-deleted ones too), quotas and quota templates with a money
    metric, forecast calls and snapshots, and exchange rates, which are base units per
    unit of another currency. A base-currency change would leave them unconverted.
    """
    money_metrics = [metric for metric in QuotaMetric.values if metric not in COUNT_METRICS]
    querysets = (
        Deal.all_objects.filter(organization=organization),
        Quota.objects.filter(organization=organization, metric__in=money_metrics),
        QuotaTemplate.objects.filter(organization=organization, metric__in=money_metrics),
        ForecastSubmission.objects.filter(organization=organization),
        ForecastSnapshot.objects.filter(organization=organization),
        ExchangeRate.objects.filter(organization=organization),
    )
    return any(queryset.exists() for queryset in querysets)


def currency_change_check(organization: Organization, currency: str) -> None:
    """Raise ValidationError on the `currency` field if the organization already has base amounts."""
    if not organization_has_base_amounts(organization):
        return
    raise ValidationError(
        {
            "currency": _(
                "The base currency cannot be changed from %(current)s to %(new)s because the organization already "
                "has deals, quotas, forecasts or exchange rates in %(current)s, and their amounts would not be "
                "converted. The base currency can only be set before the first import. To work in %(new)s, create "
                "a new organization or contact support."
            )
            % {"current": organization.currency, "new": currency}
        }
    )


@transaction.atomic
def organization_settings_update(
    *, organization: Organization, actor: User | None, changes: dict, reason: str = ""
) -> list[str]:
    """Change organization settings and return the names of the fields that changed.

    Raises ValidationError (from the model's validators) for invalid new values,
    and for a new base currency once the organization stores amounts in the
    current one, leaving the organization unchanged. A new fiscal year start month or time
    zone keeps every quota row as it is: quotas whose start is no longer a
    period boundary show as off-calendar in the editor. It schedules a KPI
    recompute after commit because every period boundary moved.
    """
    unknown = set(changes) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"Unknown organization settings {sorted(unknown)}; allowed are {', '.join(SETTINGS_FIELDS)}.")
    if "currency" in changes:
        changes = {**changes, "currency": currency_check(changes["currency"])}
    before = {name: getattr(organization, name) for name in changes}
    changed = [name for name, value in changes.items() if before[name] != value]
    if not changed:
        # Nothing differs, so nothing to record or recompute.
        return []

    if "currency" in changed:
        currency_change_check(organization, changes["currency"])
    for name in changed:
        setattr(organization, name, changes[name])
    # Only the changed fields are validated, so a stored value that the validators no longer
    # accept (a legacy time zone such as US/Eastern) does not block changing another setting.
    unchanged = [field.name for field in Organization._meta.fields if field.name not in changed]
    try:
        organization.full_clean(exclude=unchanged)
    except ValidationError:
        for name in changed:
            setattr(organization, name, before[name])
        raise
    organization.save(update_fields=changed)

    audit_write(
        organization=organization,
        actor=actor,
        action="organization.settings_changed",
        object_type="organization",
        object_id=organization.pk,
        before={name: before[name] for name in changed},
        after={name: getattr(organization, name) for name in changed},
        reason=reason,
    )
    if any(name in RECOMPUTE_FIELDS for name in changed):
        kpi_recompute_schedule(organization_id=organization.pk)
    logger.info("Organization settings changed organization_id=%s fields=%s", organization.pk, ",".join(changed))
    return changed


# --- teams and territories ----------------------------------------------------------------------


def _check_parent(model, node, parent) -> None:
    """Reject a parent that is the node itself or one of its descendants (a cycle)."""
    if parent is None or node is None or node.pk is None:
        return
    parents = dict(model.objects.values_list("id", "parent_id"))
    ancestor_id = parent.pk
    while ancestor_id is not None:
        if ancestor_id == node.pk:
            raise ValidationError(
                _("%(parent)s is %(node)s itself or lies below it; choose a parent outside its subtree.")
                % {"parent": parent.name, "node": node.name}
            )
        ancestor_id = parents.get(ancestor_id)


def _check_name(model, organization, name: str, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("The name is missing; enter a name."))
    if len(name) > 200:
        raise ValidationError(_("The name is too long; use at most 200 characters."))
    if model.objects.filter(organization=organization, name__iexact=name).exclude(pk=exclude_pk).exists():
        raise ValidationError(_("%(name)s already exists; choose another name.") % {"name": name})
    return name


@transaction.atomic
def team_save(
    *,
    organization: Organization,
    actor: User | None,
    team: Team | None = None,
    name: str,
    parent: Team | None = None,
    manager: Membership | None = None,
    reason: str = "",
) -> Team:
    """Create a team (`team=None`) or rename, move and reassign the manager of an existing one.

    Raises ValidationError for an empty or duplicate name, a parent that
    would create a cycle, or a parent or manager that would make someone
    report to themselves (see team_loop_check).
    """
    name = _check_name(Team, organization, name, exclude_pk=team.pk if team else None)
    _check_parent(Team, team, parent)
    if team is not None and (team.parent_id, team.manager_id) != (parent.pk if parent else None, manager.pk if manager else None):
        team_loop_check(team=team, parent=parent, manager=manager)
    fields = ("name", "parent_id", "manager_id")
    before = None if team is None else {field: getattr(team, field) for field in fields}

    if team is None:
        team = Team.objects.create(organization=organization, name=name, parent=parent, manager=manager)
    else:
        team.name, team.parent, team.manager = name, parent, manager
        team.save(update_fields=["name", "parent", "manager"])
    after = {field: getattr(team, field) for field in fields}
    if before == after:
        return team

    audit_write(
        organization=organization,
        actor=actor,
        action="team.created" if before is None else "team.changed",
        object_type="team",
        object_id=team.pk,
        before=before,
        after=after,
        reason=reason,
    )
    logger.info("Team saved organization_id=%s team_id=%s", organization.pk, team.pk)
    return team


@transaction.atomic
def territory_save(
    *,
    organization: Organization,
    actor: User | None,
    territory: Territory | None = None,
    name: str,
    parent: Territory | None = None,
    reason: str = "",
) -> Territory:
    """Create a territory (`territory=None`) or rename and move an existing one; rejects cycles."""
    name = _check_name(Territory, organization, name, exclude_pk=territory.pk if territory else None)
    _check_parent(Territory, territory, parent)
    fields = ("name", "parent_id")
    before = None if territory is None else {field: getattr(territory, field) for field in fields}

    if territory is None:
        territory = Territory.objects.create(organization=organization, name=name, parent=parent)
    else:
        territory.name, territory.parent = name, parent
        territory.save(update_fields=["name", "parent"])
    after = {field: getattr(territory, field) for field in fields}
    if before == after:
        return territory

    audit_write(
        organization=organization,
        actor=actor,
        action="territory.created" if before is None else "territory.changed",
        object_type="territory",
        object_id=territory.pk,
        before=before,
        after=after,
        reason=reason,
    )
    logger.info("Territory saved organization_id=%s territory_id=%s", organization.pk, territory.pk)
    return territory


# --- reporting lines ----------------------------------------------------------------------------
# A member reports to their `manager` and to the managers of their team and of its parent teams,
# the tree that spm.tenancy.manager_visible_ids walks downward. The checks below walk it upward
# and reject a change that would make someone report to themselves.


def _teams_by_id() -> dict[int, tuple[int | None, int | None]]:
    """Return each team id's (parent_id, manager_id)."""
    return {pk: (parent_id, manager_id) for pk, parent_id, manager_id in Team.objects.values_list("id", "parent_id", "manager_id")}


def _reporting_superiors(teams: dict[int, tuple[int | None, int | None]]) -> dict[int, set[int]]:
    """Return each member id's direct superiors: their `manager` and the managers of their team chain in `teams`."""
    superiors: dict[int, set[int]] = {}
    for pk, manager_id, team_id in Membership.objects.values_list("id", "manager_id", "team_id"):
        above = {manager_id} if manager_id is not None else set()
        for _team_id, team_manager_id in _team_chain(teams, team_id):
            if team_manager_id is not None:
                above.add(team_manager_id)
        # A manager who is a member of the team they lead does not report to themselves.
        above.discard(pk)
        superiors[pk] = above
    return superiors


def _team_chain(teams: dict[int, tuple[int | None, int | None]], team_id: int | None) -> list[tuple[int, int | None]]:
    """Return (team id, manager id) of the team and each parent team, nearest first."""
    chain = []
    seen = set()
    while team_id is not None and team_id in teams and team_id not in seen:
        seen.add(team_id)
        parent_id, manager_id = teams[team_id]
        chain.append((team_id, manager_id))
        team_id = parent_id
    return chain


def _reported_to(superiors: dict[int, set[int]], member_id: int) -> list[int]:
    """Return the ids of everyone `member_id` reports to, directly or indirectly, nearest first."""
    found: list[int] = []
    seen = {member_id}
    frontier = [member_id]
    while frontier:
        next_frontier = []
        for pk in frontier:
            for superior_id in sorted(superiors.get(pk, ())):
                if superior_id not in seen:
                    seen.add(superior_id)
                    found.append(superior_id)
                    next_frontier.append(superior_id)
        frontier = next_frontier
    return found


def _member_name(member_id: int) -> str:
    return Membership.objects.select_related("user").get(pk=member_id).display_name


def manager_loop_check(*, member: Membership, manager: Membership | None) -> None:
    """Raise ValidationError when `manager` is `member` or reports to `member`, so that choosing them would make a loop."""
    if manager is None:
        return
    if manager.pk == member.pk:
        raise ValidationError(_("A member cannot be their own manager; choose another manager."))
    if member.pk in _reported_to(_reporting_superiors(_teams_by_id()), manager.pk):
        raise ValidationError(
            _(
                "%(manager)s reports to %(member)s, so %(manager)s cannot be their manager; "
                "choose someone outside their reporting line."
            )
            % {"manager": manager.display_name, "member": member.display_name}
        )


def team_loop_check(*, team: Team | None, parent: Team | None, manager: Membership | None) -> None:
    """Raise ValidationError when giving `team` this parent and manager would make someone report to themselves.

    The team's members, and those of its sub-teams, report to the team's manager and
    to the managers of its parent teams. A loop forms when a new one of these managers
    already reports to one of the members. A new manager is checked with the current
    parent, so a loop that only the new parent makes names the parent team.
    """
    if team is None or team.pk is None:
        # A new team has no members yet, so nobody can report to its manager in a loop.
        return
    teams = _teams_by_id()
    old_parent_id, old_manager_id = teams[team.pk]
    new_parent_id = parent.pk if parent else None
    new_manager_id = manager.pk if manager else None
    subtree = {team.pk}
    while True:
        below = {pk for pk, (parent_id, _manager_id) in teams.items() if parent_id in subtree} - subtree
        if not below:
            break
        subtree |= below
    members = dict(Membership.objects.filter(team_id__in=subtree).values_list("id", "team_id"))

    if new_manager_id is not None and new_manager_id != old_manager_id:
        teams[team.pk] = (old_parent_id, new_manager_id)
        member_id = _member_reported_to(_reporting_superiors(teams), new_manager_id, members)
        if member_id is not None:
            raise ValidationError(
                _(
                    "%(manager)s reports to %(member)s, who belongs to %(member_team)s, so %(manager)s cannot lead "
                    "%(team)s; choose a manager outside the team's reporting line."
                )
                % {
                    "manager": _member_name(new_manager_id),
                    "member": _member_name(member_id),
                    "member_team": Team.objects.get(pk=members[member_id]).name,
                    "team": team.name,
                }
            )
    if new_parent_id == old_parent_id:
        return
    teams[team.pk] = (new_parent_id, new_manager_id)
    superiors = _reporting_superiors(teams)
    for led_team_id, leader_id in _team_chain(teams, team.pk)[1:]:
        if leader_id is None:
            continue
        member_id = _member_reported_to(superiors, leader_id, members)
        if member_id is not None:
            raise ValidationError(
                _(
                    "%(team)s cannot be placed below %(parent)s, because %(manager)s, the manager of %(led_team)s, "
                    "reports to %(member)s, who belongs to %(member_team)s; choose another parent team."
                )
                % {
                    "team": team.name,
                    "parent": parent.name,
                    "manager": _member_name(leader_id),
                    "led_team": Team.objects.get(pk=led_team_id).name,
                    "member": _member_name(member_id),
                    "member_team": Team.objects.get(pk=members[member_id]).name,
                }
            )


def _member_reported_to(superiors: dict[int, set[int]], leader_id: int, members: dict[int, int]) -> int | None:
    """Return the nearest of `members` (other than the leader) that `leader_id` reports to, or None."""
    return next((pk for pk in _reported_to(superiors, leader_id) if pk in members and pk != leader_id), None)


def assignment_loop_check(*, membership: Membership, team: Team | None) -> None:
    """Raise ValidationError when moving `membership` into `team` would make someone report to themselves.

    In the new team the member reports to its manager and to the managers of its
    parent teams, so none of them may already report to the member.
    """
    if team is None:
        return
    teams = _teams_by_id()
    superiors = _reporting_superiors(teams)
    for led_team_id, leader_id in _team_chain(teams, team.pk):
        if leader_id is None or leader_id == membership.pk:
            continue
        if membership.pk in _reported_to(superiors, leader_id):
            raise ValidationError(
                _(
                    "%(member)s cannot move to %(team)s, because %(manager)s, the manager of %(led_team)s, reports to "
                    "%(member)s; choose another team, or give %(led_team)s another manager first."
                )
                % {
                    "member": membership.display_name,
                    "team": team.name,
                    "manager": _member_name(leader_id),
                    "led_team": Team.objects.get(pk=led_team_id).name,
                }
            )


# --- people -------------------------------------------------------------------------------------


@transaction.atomic
def assignment_change(
    *,
    membership: Membership,
    actor: User | None,
    team: Team | None,
    territory: Territory | None,
    valid_from: dt.date,
    today: dt.date | None = None,
    reason: str = "",
    recompute: bool = True,
) -> Assignment | None:
    """Assign a member to a team and territory from `valid_from` on; return the new row, or None if unchanged.

    The assignment valid on `valid_from` is closed the day before (its
    `valid_to` becomes `valid_from`, which is exclusive), and rows starting
    later are removed, because the new assignment replaces them. A member
    without history first gets a row with the current Membership.team and
    territory from `active_from` (or 1900-01-01), so earlier periods keep their
    credit. Membership.team/territory follow when `valid_from` is `today` or earlier
    (default: today in the organization's time zone). Raises ValidationError
    when the new team's manager, or a parent team's, reports to the member
    (see assignment_loop_check). A change schedules a KPI recompute after
    commit, because team snapshots credit the member's deals to their current
    team. A caller that moves many members passes `recompute=False` and
    schedules one recompute itself.
    """
    organization = membership.organization
    today = today or organization_today(organization)
    # The lock makes a concurrent change of the same member wait until this one commits,
    # so both do not close the same assignment and add two overlapping ones.
    Membership.objects.select_for_update().filter(pk=membership.pk).first()
    membership.refresh_from_db(fields=["team", "territory", "active_from"])
    if (team.pk if team else None) != membership.team_id:
        assignment_loop_check(membership=membership, team=team)
    history = list(Assignment.objects.filter(membership=membership).order_by("valid_from"))
    current = next(
        (row for row in reversed(history) if row.valid_from <= valid_from and (row.valid_to is None or valid_from < row.valid_to)),
        None,
    )
    if current is None and not history and (membership.team_id or membership.territory_id):
        first_day = membership.active_from or HISTORY_START
        if first_day < valid_from:
            current = Assignment.objects.create(
                organization=organization,
                membership=membership,
                team_id=membership.team_id,
                territory_id=membership.territory_id,
                valid_from=first_day,
            )
    new_team_id = team.pk if team else None
    new_territory_id = territory.pk if territory else None
    later = [row for row in history if row.valid_from > valid_from]
    if current is not None and (current.team_id, current.territory_id) == (new_team_id, new_territory_id) and not later:
        # The member already has this assignment on that day and nothing later overrides it.
        return None

    before = None
    if current is not None:
        before = {"team_id": current.team_id, "territory_id": current.territory_id, "valid_from": current.valid_from}
    Assignment.objects.filter(pk__in=[row.pk for row in later]).delete()
    if current is not None and current.valid_from == valid_from:
        current.team_id, current.territory_id, current.valid_to = new_team_id, new_territory_id, None
        current.save(update_fields=["team", "territory", "valid_to"])
        assignment = current
    else:
        if current is not None:
            current.valid_to = valid_from
            current.save(update_fields=["valid_to"])
        assignment = Assignment.objects.create(
            organization=organization,
            membership=membership,
            team=team,
            territory=territory,
            valid_from=valid_from,
        )
    if valid_from <= today:
        membership.team, membership.territory = team, territory
        membership.save(update_fields=["team", "territory"])

    audit_write(
        organization=organization,
        actor=actor,
        action="assignment.changed",
        object_type="membership",
        object_id=membership.pk,
        before=before,
        after={"team_id": new_team_id, "territory_id": new_territory_id, "valid_from": valid_from},
        reason=reason,
    )
    if recompute:
        kpi_recompute_schedule(organization_id=organization.pk)
    logger.info(
        "Assignment changed organization_id=%s membership_id=%s assignment_id=%s",
        organization.pk,
        membership.pk,
        assignment.pk,
    )
    return assignment


@transaction.atomic
def membership_update(
    *,
    membership: Membership,
    actor: User | None,
    role: str,
    active_from: dt.date | None,
    active_to: dt.date | None,
    ramp_schedule=None,
    manager: Membership | None = None,
    reason: str | dict = "",
) -> list[str]:
    """Change a member's role, employment dates, ramp schedule and manager; return the changed fields.

    Raises ValidationError when the end date lies before the start date, the
    role is unknown, a new manager is the member or reports to them, or the
    change would take the role from the organization's only active admin. A
    role change is recorded as "membership.role_changed".
    """
    if role not in Role.values:
        raise ValidationError(_("Unknown role %(role)s; use admin, manager or rep.") % {"role": role})
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        last_admin_check(membership=membership)
    if active_from and active_to and active_to < active_from:
        raise ValidationError(_("The last day lies before the first day; correct one of the dates."))
    if manager is not None and manager.pk != membership.manager_id:
        manager_loop_check(member=membership, manager=manager)
    values = {
        "role": role,
        "active_from": active_from,
        "active_to": active_to,
        "ramp_schedule_id": ramp_schedule.pk if ramp_schedule else None,
        "manager_id": manager.pk if manager else None,
    }
    before = {name: getattr(membership, name) for name in values}
    changed = [name for name, value in values.items() if before[name] != value]
    if not changed:
        # Same values: nothing to write or record.
        return []

    for name in changed:
        setattr(membership, name, values[name])
    membership.save(update_fields=[name.removesuffix("_id") for name in changed])

    audit_write(
        organization=membership.organization,
        actor=actor,
        action="membership.role_changed" if "role" in changed else "membership.changed",
        object_type="membership",
        object_id=membership.pk,
        before={name: before[name] for name in changed},
        after={name: values[name] for name in changed},
        reason=reason,
    )
    logger.info("Membership changed organization_id=%s membership_id=%s", membership.organization_id, membership.pk)
    return changed


@transaction.atomic
def leave_period_add(
    *, membership: Membership, actor: User | None, starts_on: dt.date, ends_on: dt.date, reason: str = ""
) -> LeavePeriod:
    """Record leave on the days `[starts_on, ends_on]` (inclusive); prorated quotas exclude them.

    Raises ValidationError when the last day lies before the first or when the days
    overlap a leave period the member already has, so that no day is excluded twice.
    """
    if ends_on < starts_on:
        raise ValidationError(_("The last day lies before the first day; correct one of the dates."))
    # Locking the member serializes two additions for the same member, so both cannot pass the overlap check.
    Membership.objects.select_for_update().filter(pk=membership.pk).first()
    overlapping = (
        LeavePeriod.objects.filter(membership=membership, starts_on__lte=ends_on, ends_on__gte=starts_on)
        .order_by("starts_on", "pk")
        .first()
    )
    if overlapping is not None:
        raise ValidationError(
            _(
                "The leave from %(starts_on)s to %(ends_on)s overlaps the recorded leave from %(existing_start)s "
                "to %(existing_end)s; choose days outside it or delete that leave first."
            )
            % {
                "starts_on": short_date(starts_on),
                "ends_on": short_date(ends_on),
                "existing_start": short_date(overlapping.starts_on),
                "existing_end": short_date(overlapping.ends_on),
            }
        )
    leave = LeavePeriod.objects.create(
        organization=membership.organization, membership=membership, starts_on=starts_on, ends_on=ends_on, reason=reason
    )
    audit_write(
        organization=membership.organization,
        actor=actor,
        action="leave.added",
        object_type="membership",
        object_id=membership.pk,
        before=None,
        after={"leave_id": leave.pk, "starts_on": starts_on, "ends_on": ends_on},
        reason=reason,
    )
    return leave


@transaction.atomic
def leave_period_delete(*, leave: LeavePeriod, actor: User | None) -> None:
    before = {"leave_id": leave.pk, "starts_on": leave.starts_on, "ends_on": leave.ends_on}
    membership = leave.membership
    leave.delete()
    audit_write(
        organization=membership.organization,
        actor=actor,
        action="leave.deleted",
        object_type="membership",
        object_id=membership.pk,
        before=before,
        after=None,
    )


# --- quotas -------------------------------------------------------------------------------------


def _quota_subject_field(level: str) -> str:
    return {"rep": "membership", "team": "team", "territory": "territory"}[level]


def quota_period_check(*, organization: Organization, period_kind: str, period_start: dt.date) -> None:
    """Raise ValidationError unless `period_start` starts a fiscal period of `period_kind`."""
    if period_kind not in QuotaPeriodKind.values:
        raise ValidationError(_("Unknown period kind %(kind)s; use year, quarter or month.") % {"kind": period_kind})
    period = fiscal.period_containing(period_start, period_kind, organization.fiscal_year_start_month)
    if period.start != period_start:
        # One sentence per kind, because German inflects the period's noun.
        messages = {
            QuotaPeriodKind.YEAR: _(
                "%(day)s does not start a fiscal year; the fiscal year containing it starts on %(start)s."
            ),
            QuotaPeriodKind.QUARTER: _(
                "%(day)s does not start a fiscal quarter; the fiscal quarter containing it starts on %(start)s."
            ),
            QuotaPeriodKind.MONTH: _(
                "%(day)s does not start a fiscal month; the fiscal month containing it starts on %(start)s."
            ),
        }
        raise ValidationError(
            messages[period_kind]
            % {
                "day": date_format(period_start, "SHORT_DATE_FORMAT"),
                "start": date_format(period.start, "SHORT_DATE_FORMAT"),
            }
        )


@transaction.atomic
def quota_update(
    *,
    organization: Organization,
    actor: User | None,
    level: str,
    subject_id: int,
    period_kind: str,
    period_start: dt.date,
    metric: str,
    target: Decimal | None,
    is_prorated: bool | None = None,
    reason: str | dict = "",
) -> tuple[Quota | None, str]:
    """Set, change or remove (`target=None`) one quota; return (quota or None, outcome).

    The outcome is "created", "updated", "deleted" or "unchanged". An existing
    quota keeps its `is_prorated` unless one is given; a new one defaults to
    prorated. The period must start a fiscal period of its kind, but an
    existing off-calendar quota can still be changed or removed. A new rep
    quota needs a member with the rep role, but an existing one stays
    changeable after its member's role changed. Raises ValidationError for a
    negative target, a fraction on a count metric (won deals, activities,
    meetings), a new rep quota of a manager or admin, or an unknown level,
    metric or kind.
    """
    if level not in ("rep", "team", "territory"):
        raise ValidationError(_("Unknown level %(level)s; use rep, team or territory.") % {"level": level})
    if metric not in QuotaMetric.values:
        raise ValidationError(_("Unknown metric %(metric)s.") % {"metric": metric})
    if target is not None:
        quota_target_check(metric=metric, target=target)
    subject_field = _quota_subject_field(level)
    subject_model = {"rep": Membership, "team": Team, "territory": Territory}[level]
    # Locking the subject row makes two saves of the same cell take turns, so the second one finds
    # the first one's quota and updates it. A lock on the quota row alone locks nothing while the
    # row does not exist yet, and both saves would insert.
    subject = subject_model.objects.select_for_update().filter(organization=organization, pk=subject_id).first()
    if subject is None:
        # One sentence per level, because German needs the level's own noun and article.
        not_found = {
            "rep": _("No rep with id %(id)s in this organization; pick a row of the editor."),
            "team": _("No team with id %(id)s in this organization; pick a row of the editor."),
            "territory": _("No territory with id %(id)s in this organization; pick a row of the editor."),
        }[level]
        raise ValidationError(not_found % {"id": subject_id})
    lookup = {
        "organization": organization,
        "level": level,
        f"{subject_field}_id": subject_id,
        "period_kind": period_kind,
        "period_start": period_start,
        "metric": metric,
    }
    quota = Quota.objects.select_for_update().filter(**lookup).first()
    if quota is None and target is not None:
        quota_period_check(organization=organization, period_kind=period_kind, period_start=period_start)
        if level == "rep" and subject.role != Role.REP:
            raise ValidationError(
                _(
                    "%(name)s has the role %(role)s, and rep quotas are for members with the rep role. "
                    "Give the team or territory a quota instead, or change the role on the people page first."
                )
                % {"name": subject.display_name, "role": subject.get_role_display()},
                code="quota_subject_role",
            )
    if target is not None:
        target = round_half_up(target, 2)

    before = None if quota is None else {"target": quota.target, "is_prorated": quota.is_prorated}
    if quota is None and target is None:
        # Removing a quota that does not exist changes nothing.
        return None, "unchanged"
    if quota is not None and target is None:
        quota_id = quota.pk
        quota.delete()
        _quota_audit(organization, actor, "quota.deleted", quota_id, lookup, before, None, reason)
        return None, "deleted"
    if quota is None:
        quota = Quota.objects.create(
            **lookup, target=target, is_prorated=True if is_prorated is None else is_prorated, updated_by=actor
        )
        outcome = "created"
    else:
        new_prorated = quota.is_prorated if is_prorated is None else is_prorated
        if quota.target == target and quota.is_prorated == new_prorated:
            return quota, "unchanged"
        quota.target, quota.is_prorated, quota.updated_by = target, new_prorated, actor
        quota.save(update_fields=["target", "is_prorated", "updated_by", "updated_at"])
        outcome = "updated"

    after = {"target": quota.target, "is_prorated": quota.is_prorated}
    action = "quota.created" if outcome == "created" else "quota.changed"
    _quota_audit(organization, actor, action, quota.pk, lookup, before, after, reason)
    return quota, outcome


def quota_target_check(*, metric: str, target: Decimal) -> None:
    """Raise ValidationError for a negative target, or a fraction where `metric` counts (deals, activities, meetings)."""
    if target < 0:
        raise ValidationError(_("The target %(target)s is negative; enter 0 or more.") % {"target": number_format(target)})
    if metric in COUNT_METRICS and target != target.to_integral_value():
        raise ValidationError(
            _("%(metric)s are counted in whole numbers; enter a whole number instead of %(target)s.")
            % {"metric": QuotaMetric(metric).label, "target": number_format(target.normalize())},
            code="quota_target_fraction",
        )


def _quota_audit(organization, actor, action, quota_id, lookup, before, after, reason) -> None:
    subject = {key: value for key, value in lookup.items() if key != "organization"}
    audit_write(
        organization=organization,
        actor=actor,
        action=action,
        object_type="quota",
        object_id=quota_id,
        before=None if before is None else {**subject, **before},
        after=None if after is None else {**subject, **after},
        reason=reason,
    )
    logger.info(
        "Quota %s organization_id=%s quota_id=%s level=%s",
        action,
        organization.pk,
        quota_id,
        lookup["level"],
    )


@transaction.atomic
def quota_template_apply(
    *,
    organization: Organization,
    actor: User | None,
    template: QuotaTemplate,
    membership_ids: list[int],
    period_start: dt.date,
    reason: str = "",
) -> dict[str, int]:
    """Set the template's target as the quota of each member for the period starting `period_start`.

    Returns the number of quotas per outcome ("created", "updated", "unchanged").
    Each change is audited like an edit in the quota editor.
    """
    quota_period_check(organization=organization, period_kind=template.period_kind, period_start=period_start)
    # In id order, so two concurrent applications lock the members' rows in the same order.
    members = Membership.objects.filter(pk__in=membership_ids).order_by("pk")
    outcomes = {"created": 0, "updated": 0, "unchanged": 0}
    for membership in members:
        _quota, outcome = quota_update(
            organization=organization,
            actor=actor,
            level="rep",
            subject_id=membership.pk,
            period_kind=template.period_kind,
            period_start=period_start,
            metric=template.metric,
            target=template.target,
            is_prorated=template.is_prorated,
            reason=reason or audit_reason(REASON_QUOTA_TEMPLATE, name=template.name),
        )
        outcomes[outcome] += 1
    return outcomes


@transaction.atomic
def ramp_schedule_create(
    *, organization: Organization, actor: User | None, name: str, month_percentages: list[int]
) -> RampSchedule:
    """Create a ramp schedule such as 25/50/75/100 (percent of the full quota in the first months)."""
    name = _check_name(RampSchedule, organization, name)
    schedule = RampSchedule.objects.create(organization=organization, name=name, month_percentages=month_percentages)
    audit_write(
        organization=organization,
        actor=actor,
        action="ramp_schedule.created",
        object_type="ramp_schedule",
        object_id=schedule.pk,
        before=None,
        after={"name": name, "month_percentages": "/".join(str(value) for value in month_percentages)},
    )
    return schedule


@transaction.atomic
def quota_paste(
    *,
    organization: Organization,
    actor: User | None,
    level: str,
    metric: str,
    cells: list[tuple[int, object]],
    reason: str = "",
) -> int:
    """Save a block of already parsed editor cells [(subject_id, period), target]; return the number changed.

    The caller validates every pasted cell first and calls this only when all
    are valid, so a paste is saved completely or not at all.
    """
    if level in ("rep", "team", "territory"):
        # Lock all subjects in id order first, so two pastes over the same rows wait for each
        # other instead of each locking some rows and deadlocking on the rest.
        subject_model = {"rep": Membership, "team": Team, "territory": Territory}[level]
        subject_ids = sorted({subject_id for (subject_id, _period), _target in cells})
        list(subject_model.objects.select_for_update().filter(organization=organization, pk__in=subject_ids).order_by("pk"))
    changed = 0
    for (subject_id, period), target in cells:
        _quota, outcome = quota_update(
            organization=organization,
            actor=actor,
            level=level,
            subject_id=subject_id,
            period_kind=period.kind,
            period_start=period.start,
            metric=metric,
            target=target,
            reason=reason,
        )
        changed += outcome != "unchanged"
    return changed


DEMO_QUOTA_ROUNDING = Decimal(5000)


@transaction.atomic
def demo_quotas_set(*, organization: Organization, year: int, actor: User | None = None) -> dict[str, object]:
    """Give every rep with won deals the same quarterly won_revenue quota for fiscal `year` (demo data).

    Rule: the organization's won amount in that fiscal year (base currency),
    divided by the number of reps who won deals in it and by four, rounded to
    the nearest 5,000. Equal quotas make the reps' attainment differ the way
    their results do. Returns the quota and the counts per outcome; running it
    again changes nothing.
    """
    from django.db.models import Sum

    from pipelines.models import Deal, DealStatus

    period = fiscal.fiscal_year(year, organization.fiscal_year_start_month)
    start_at, end_at = period.utc_bounds(organization.tzinfo)
    won = Deal.objects.filter(status=DealStatus.WON, closed_at__gte=start_at, closed_at__lt=end_at, owner__role=Role.REP)
    rep_ids = sorted(set(won.values_list("owner_id", flat=True)))
    total = won.aggregate(total=Sum("base_amount"))["total"] or Decimal(0)
    outcomes = {"created": 0, "updated": 0, "unchanged": 0}
    if not rep_ids:
        # Without won deals there is no basis for a quota.
        return {"quota": None, **outcomes}

    quota = round_half_up(total / len(rep_ids) / 4 / DEMO_QUOTA_ROUNDING, 0) * DEMO_QUOTA_ROUNDING
    quarters = fiscal.periods_covering(period.start, period.last_day, fiscal.QUARTER, organization.fiscal_year_start_month)
    for membership_id in rep_ids:
        for quarter in quarters:
            _quota, outcome = quota_update(
                organization=organization,
                actor=actor,
                level="rep",
                subject_id=membership_id,
                period_kind=QuotaPeriodKind.QUARTER,
                period_start=quarter.start,
                metric=QuotaMetric.WON_REVENUE,
                target=quota,
                reason="demo_setup --quotas",
            )
            outcomes[outcome] += 1
    return {"quota": quota, **outcomes}
