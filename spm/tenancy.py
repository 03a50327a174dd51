"""Role-based visibility inside the current organization's scope."""

from django.db.models import QuerySet
from django.http import Http404

from spm.models import Membership, Role


def membership_ids_visible(membership: Membership) -> set[int] | None:
    """Return the ids of the members whose numbers `membership` may see, or None for everyone.

    Admins see everyone. Managers see themselves, every member who reports to
    them directly or transitively, and every member of the teams they manage,
    including sub-teams. Reps see only themselves.
    """
    if membership.role == Role.ADMIN:
        return None
    if membership.role == Role.REP:
        return {membership.pk}

    from goals.models import Team

    teams = list(Team.objects.values_list("id", "parent_id", "manager_id"))
    team_ids = {team_id for team_id, _parent, manager_id in teams if manager_id == membership.pk}
    frontier = set(team_ids)
    while frontier:
        frontier = {team_id for team_id, parent_id, _m in teams if parent_id in frontier} - team_ids
        team_ids |= frontier

    people = list(Membership.objects.values_list("id", "manager_id", "team_id"))
    visible = {membership.pk} | {pk for pk, _manager, team_id in people if team_id in team_ids}
    frontier = {membership.pk}
    while frontier:
        frontier = {pk for pk, manager_id, _team in people if manager_id in frontier} - visible
        visible |= frontier
    return visible


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
