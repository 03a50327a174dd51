"""Reads behind the deal pages: the visible deal list with its filters, one deal, its history.

Every function runs inside the organization scope that OrganizationMiddleware
opens, and narrows rows to what the member's role may see with
spm.tenancy, so a deal of another organization or of another rep never
reaches a page.
"""

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum

from dashboards.selectors import deal_filter_for_subject, deal_list_for_metric
from goals.models import Team, Territory
from pipelines.models import Deal, DealStageChange, Stage
from spm.fiscal import Period
from spm.models import Membership, Organization, Role
from spm.tenancy import (
    get_visible_or_404,
    visibility_digest,
    visible_team_and_member_ids,
)

# Sort keys the deal list accepts, mapped to their ORDER BY columns; "-key" sorts descending.
DEAL_SORT_FIELDS = {
    "name": ("name", "external_id"),
    "owner": ("owner__user__name", "owner__user__email"),
    "stage": ("stage__order",),
    "amount": ("base_amount",),
    "created": ("created_at",),
    "closed": ("closed_at",),
}

# The columns the deal list shows. Reading only these, and not joining the territory, cut the
# time to load a page of 50 deals by about a third (in-process, small benchmark tenant).
# A field read outside this list costs one query per deal, which the pinned query counts catch.
DEAL_LIST_COLUMNS = (
    "name",
    "external_id",
    "status",
    "currency",
    "amount",
    "base_amount",
    "created_at",
    "expected_close_on",
    "closed_at",
    "owner__user__name",
    "owner__user__email",
    "account__name",
    "stage__name",
)


@dataclass(frozen=True)
class DealFilters:
    """Validated deal-list filters; None (or empty) means "not filtered"."""

    period: Period | None = None
    metric: str = ""
    grain: str = ""
    subject_id: int | None = None
    team_ids: tuple[int, ...] = ()
    stage_id: int | None = None
    status: str = ""
    owner_id: int | None = None
    search: str = ""
    sort: str = ""
    # Pipeline analytics drill-down (dashboards.analytics.drilldown): the analysis and its key.
    analysis: str = ""
    analysis_key: str = ""


@dataclass(frozen=True)
class DealTotals:
    count: int
    base_amount: Decimal


def deal_list_visible(
    *, organization: Organization, visible_member_ids: set[int] | None, filters: DealFilters
) -> QuerySet[Deal]:
    """Return the deals owned by `visible_member_ids` (None: everyone) that match `filters`; lazy.

    Pass `spm.tenancy.membership_ids_visible(membership)`, computed once per
    request, as `visible_member_ids`. A period with a metric selects exactly the
    deals that KPI counts (dashboards.selectors.deal_list_for_metric), so the
    list's count and amount sum equal the number the user clicked. Ids outside
    the member's visibility match nothing rather than raising.
    """
    if filters.analysis:
        deals = _deal_list_for_analysis(organization=organization, filters=filters)
    elif filters.period is not None and filters.metric:
        deals = deal_list_for_metric(organization=organization, period=filters.period, metric=filters.metric)
    else:
        deals = Deal.objects.filter(organization=organization)
    if visible_member_ids is not None:
        deals = deals.filter(owner_id__in=visible_member_ids)

    if filters.grain:
        deals = deals.filter(deal_filter_for_subject(grain=filters.grain, subject_id=filters.subject_id or 0))
    if filters.team_ids:
        team_condition = Q()
        for team_id in filters.team_ids:
            team_condition |= deal_filter_for_subject(grain="team", subject_id=team_id)
        deals = deals.filter(team_condition)
    if filters.stage_id is not None:
        deals = deals.filter(stage_id=filters.stage_id)
    if filters.status:
        deals = deals.filter(status=filters.status)
    if filters.owner_id is not None:
        deals = deals.filter(owner_id=filters.owner_id)
    if filters.search:
        deals = deals.filter(Q(name__icontains=filters.search) | Q(external_id__icontains=filters.search))

    # select_related(None) drops the territory join of deal_list_for_metric, because Django
    # rejects a select_related() of a field that .only() defers.
    deals = deals.select_related(None).select_related("owner__user", "account", "stage").only(*DEAL_LIST_COLUMNS)
    if filters.sort:
        descending = filters.sort.startswith("-")
        columns = DEAL_SORT_FIELDS[filters.sort.lstrip("-")]
        order = [f"-{column}" if descending else column for column in columns]
        deals = deals.order_by(*order, "-id" if descending else "id")
    elif not (filters.period is not None and filters.metric):
        deals = deals.order_by("-created_at", "-id")
    return deals


def _deal_list_for_analysis(*, organization: Organization, filters: DealFilters) -> QuerySet[Deal]:
    """Select the deals behind a pipeline analytics number; the form has validated the analysis and key."""
    from dashboards.analytics.drilldown import analysis_deals, analysis_parse

    analysis = analysis_parse(filters.analysis, filters.analysis_key, filters.period)
    deals = Deal.objects.filter(organization=organization)
    return analysis_deals(deals, organization=organization, analysis=analysis, period=filters.period)


def deal_totals(deals: QuerySet[Deal]) -> DealTotals:
    """Count and sum the base-currency amounts of every deal in `deals`, in one query.

    Deals without an amount count but add nothing, as in the KPI snapshots.
    """
    totals = deals.order_by().aggregate(count=Count("id"), base_amount=Sum("base_amount"))
    return DealTotals(count=totals["count"], base_amount=totals["base_amount"] or Decimal("0"))


# At most this old, for writers that change deals without bumping the KPI data version.
DEAL_TOTALS_CACHE_SECONDS = 120


def deal_totals_cached(
    deals: QuerySet[Deal], *, organization: Organization, visible_member_ids: set[int] | None, filters: DealFilters
) -> DealTotals:
    """Return `deal_totals(deals)` from the cache, keyed by organization, data version, visibility and filters.

    The totals scan every matching deal (a million for an admin's unfiltered
    list) while the page reads 50. Imports, stage moves and recomputes change
    the organization's deal data version (dashboards.services.deal_data_version),
    which retires every cached total; any other change shows after
    DEAL_TOTALS_CACHE_SECONDS. `deals` must be the list of `filters` for
    `visible_member_ids`; the sort order does not change the totals.
    """
    from dashboards.services import deal_cache_key

    visible = visibility_digest(None, visible_member_ids)
    selection = f"{visible}|{dataclasses.replace(filters, sort='')!r}"
    key = deal_cache_key(organization=organization, kind="deal-totals", selection=selection)
    totals = cache.get(key)
    if totals is None:
        totals = deal_totals(deals)
        cache.set(key, totals, DEAL_TOTALS_CACHE_SECONDS)
    return totals


def deal_get_visible(*, membership: Membership, deal_id: int) -> Deal:
    """Fetch one deal the member may see with its related rows; Http404 for anything else."""
    deals = Deal.objects.select_related("owner__user", "account", "product", "territory", "stage", "pipeline")
    return get_visible_or_404(deals, membership, pk=deal_id)


def deal_stage_history(*, deal: Deal) -> list[DealStageChange]:
    """Return the deal's stage changes, oldest first, with both stages loaded."""
    return list(
        DealStageChange.objects.filter(deal=deal).select_related("from_stage", "to_stage").order_by("changed_at", "id")
    )


def team_list_visible(
    *, membership: Membership, visible: tuple[set[int] | None, set[int] | None] | None = None
) -> list[Team]:
    """Return the teams whose numbers `membership` may see, by name.

    They are the teams of spm.tenancy.visible_team_and_member_ids: every team for
    an admin, none for a rep, and for a manager the teams led by them or by anyone
    who reports to them, with the sub-teams. `visible` passes on what
    visible_team_and_member_ids(membership) returned when the caller has read it.
    No query for a rep, one for an admin, two for a manager (one with `visible`).
    """
    if membership.role == Role.REP:
        return []
    teams = list(Team.objects.order_by("name"))
    if visible is None:
        visible = visible_team_and_member_ids(
            membership, teams=[(team.pk, team.parent_id, team.manager_id) for team in teams]
        )
    team_ids, _member_ids = visible
    if team_ids is None:
        return teams
    return [team for team in teams if team.pk in team_ids]


def membership_list_visible(*, visible_member_ids: set[int] | None) -> list[Membership]:
    """Return the members in `visible_member_ids` (None: everyone) with users loaded, by name."""
    members = Membership.objects.select_related("user").order_by("user__name", "user__email")
    if visible_member_ids is not None:
        members = members.filter(pk__in=visible_member_ids)
    return list(members)


@dataclass(frozen=True)
class OwnerChoice:
    """A member offered in the deal list's owner filter: the membership id and the name shown."""

    pk: int
    display_name: str


def owner_choices_visible(*, visible_member_ids: set[int] | None) -> list[OwnerChoice]:
    """Return the members in `visible_member_ids` (None: everyone) as owner filter choices, by name.

    Reads three columns instead of two model instances per member, because the filter
    lists every rep of the organization (300 in the benchmark tenant) on every deal list request.
    The names match `Membership.display_name` (the user's name, else the e-mail address).
    """
    members = Membership.objects.order_by("user__name", "user__email")
    if visible_member_ids is not None:
        members = members.filter(pk__in=visible_member_ids)
    return [
        OwnerChoice(pk=pk, display_name=name or email)
        for pk, name, email in members.values_list("pk", "user__name", "user__email")
    ]


def stage_list() -> list[Stage]:
    """Return the organization's stages in pipeline order, with their pipeline loaded."""
    return list(Stage.objects.select_related("pipeline").order_by("pipeline__name", "order"))


def territory_get(*, territory_id: int) -> Territory | None:
    return Territory.objects.filter(pk=territory_id).first()
