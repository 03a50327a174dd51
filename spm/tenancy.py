"""Role-based visibility inside the current organization's scope, and the rule that keeps one admin."""

import hashlib

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from spm.models import Membership, Role


def membership_ids_visible(membership: Membership) -> set[int] | None:
    """Return the ids of the members whose numbers `membership` may see, or None for everyone.

    Admins see everyone. Managers see themselves and every member who reports
    to them directly or transitively, through the `manager` field or through a
    team they lead (sub-teams included). Reps see only themselves.
    """
    if membership.role == Role.ADMIN:
        return None
    if membership.role == Role.REP:
        return {membership.pk}
    _team_ids, member_ids = manager_visible_ids(membership)
    return member_ids


def visible_team_and_member_ids(
    membership: Membership, *, teams: list[tuple[int, int | None, int | None]] | None = None
) -> tuple[set[int] | None, set[int] | None]:
    """Return (team ids, member ids) whose numbers `membership` may see; (None, None) for an admin, who sees all.

    The member ids equal membership_ids_visible(membership). A rep sees no team
    and only themselves. Two queries for a manager, none otherwise; one for a
    manager when `teams` passes on (id, parent_id, manager_id) of every team.
    """
    if membership.role == Role.ADMIN:
        return None, None
    if membership.role == Role.REP:
        return set(), {membership.pk}
    return manager_visible_ids(membership, teams=teams)


def visibility_digest(team_ids: set[int] | None, member_ids: set[int] | None) -> str:
    """Return a short digest of visible team and member ids (as from visible_team_and_member_ids) for cache keys.

    A cache entry keyed with it is missed as soon as a team's manager, a
    member's manager or a member's team changes what the viewer may see.
    """
    if team_ids is None and member_ids is None:
        return "all"
    teams = ",".join(map(str, sorted(team_ids or ())))
    members = ",".join(map(str, sorted(member_ids or ())))
    return hashlib.sha256(f"teams={teams}|members={members}".encode()).hexdigest()[:32]


def manager_visible_ids(
    membership: Membership, *, teams: list[tuple[int, int | None, int | None]] | None = None
) -> tuple[set[int], set[int]]:
    """Return (team ids, member ids) that a manager may see: everyone below them in the reporting tree.

    A member reports to their `manager` and to the manager of their team or of
    any parent team. Both links chain: the reps of a team led by one of the
    manager's direct reports are visible too, and so are the direct reports of
    a manager in one of their teams. The result contains the manager's subtree
    of goals.forecasts.rollup.forecast_tree, so their forecast roll-up contains no
    member whose pages they cannot open; the subtree can be smaller, because the
    tree ignores links to members with the rep role and this closure follows them.
    The teams are the ones led by a visible member, with their sub-teams.

    `teams` takes (id, parent_id, manager_id) of every team when the caller has
    read them, which saves a query; otherwise two queries.
    """
    from goals.models import Team

    if teams is None:
        teams = list(Team.objects.values_list("id", "parent_id", "manager_id"))
    people = list(Membership.objects.values_list("id", "manager_id", "team_id"))
    team_ids: set[int] = set()
    visible = {membership.pk}
    new_members = {membership.pk}
    while new_members:
        new_teams = {team_id for team_id, _parent, manager_id in teams if manager_id in new_members} - team_ids
        sub_teams = set(new_teams)
        while sub_teams:
            sub_teams = {team_id for team_id, parent_id, _m in teams if parent_id in sub_teams} - team_ids - new_teams
            new_teams |= sub_teams
        team_ids |= new_teams
        new_members = {
            pk for pk, manager_id, team_id in people if manager_id in new_members or team_id in new_teams
        } - visible
        visible |= new_members
    return team_ids, visible


def restrict_to_visible(queryset: QuerySet, membership: Membership, owner_field: str = "owner") -> QuerySet:
    ids = membership_ids_visible(membership)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{owner_field}__in": ids})


def get_visible_or_404(queryset: QuerySet, membership: Membership, owner_field: str = "owner", **lookup):
    """Fetch one object the member may see; anything else, including other tenants' rows, is a 404."""
    try:
        return restrict_to_visible(queryset, membership, owner_field).get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404("Not found.") from None


def last_admin_check(*, membership: Membership) -> None:
    """Raise ValidationError when `membership` is the organization's only active admin.

    Call it inside the transaction of any change that takes the admin role or the
    login away from `membership` (a role change, an erasure), before writing. An
    admin counts as active while their user account may log in (`User.is_active`).
    The organization's admin rows are locked, so two admins who demote each other
    at the same time cannot both succeed on PostgreSQL.
    """
    if membership.role != Role.ADMIN or not membership.user.is_active:
        # Only an active admin's change can remove the last active admin.
        return
    admins = Membership.objects.select_for_update(of=("self",)).filter(
        organization_id=membership.organization_id, role=Role.ADMIN, user__is_active=True
    )
    other_admin_ids = [pk for pk in admins.values_list("pk", flat=True) if pk != membership.pk]
    if not other_admin_ids:
        raise ValidationError(
            _(
                "%(name)s is the only active admin of %(organization)s, and without an admin nobody can manage "
                "the organization. Make another member an admin first."
            )
            % {"name": membership.display_name, "organization": membership.organization.name},
            code="last_admin",
        )
