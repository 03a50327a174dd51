"""Manager dashboard and rep scorecard: one URL each for the full page and its htmx fragment."""

import hashlib
from collections.abc import Callable

from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from coaching.signals import team_median_min_values
from dashboards.forms import DEFAULT_REP_SORT, DashboardFilterForm, PeriodFilterForm
from dashboards.scorecards import (
    dashboard_page,
    default_period,
    periods_grouped,
    scorecard_page,
)
from dashboards.selectors import kpi_periods_available
from dashboards.services import kpi_data_version
from pipelines.selectors import team_list_visible
from spm.models import Role
from spm.tenancy import visibility_digest, visible_team_and_member_ids

# A recompute changes the data version and a change of what the member may see changes the
# audience, so both miss the cache at once. Other changes of teams or memberships, such as a
# renamed team, show up only after this many seconds.
FRAGMENT_CACHE_SECONDS = 300


def _is_fragment_request(request) -> bool:
    # History restores (the browser's back button with an empty htmx cache) need the whole page.
    return bool(request.htmx and not request.htmx.history_restore_request)


def kpi_audience(membership, *, team_ids: set[int] | None, member_ids: set[int] | None) -> str:
    """Cache key part naming whose numbers a dashboard shows: every admin sees the same, others their own.

    `team_ids` and `member_ids` come from spm.tenancy.visible_team_and_member_ids.
    A manager's part carries their digest, so reassigning a team or a rep to
    another manager retires the cached fragment at once instead of showing the
    former manager the rep's row for minutes.
    """
    if membership.role == Role.ADMIN:
        return "admin"
    return f"member-{membership.pk}-{visibility_digest(team_ids, member_ids)}"


def scorecard_audience(membership, organization) -> str:
    """Cache key part of a member's own scorecard: its team and the rule that hides small teams' medians."""
    return f"member-{membership.pk}-team-{membership.team_id}-min-{team_median_min_values(organization)}"


def kpi_fragment_cache_key(request, *, audience: str | None = None) -> str:
    """Cache key of the `kpi-content` fragment: organization, audience, language, KPI data version and the query.

    `audience` defaults to the member. The organization's creation time guards
    against a reused id (a recreated test database) meeting fragments that a
    shared Redis kept. The full page and the htmx request of one URL share the key.
    """
    organization = request.organization
    if audience is None:
        audience = f"member-{request.membership.pk}"
    version = kpi_data_version(organization_id=organization.pk)
    query = hashlib.sha256(request.get_full_path().encode()).hexdigest()[:32]
    created = organization.created_at.timestamp() if organization.created_at else 0
    return f"spm:kpi-fragment:{organization.pk}:{created:.6f}:{audience}:{get_language()}:{version}:{query}"


def _fragment_response(html: str) -> HttpResponse:
    response = HttpResponse(html)
    patch_vary_headers(response, ("HX-Request",))
    return response


def render_kpi_page(request, template_name: str, context: dict):
    """Render the whole page, or only its `kpi-content` partial for an htmx request, and cache neither.

    The pipeline and activity pages use it. They read deals and activities
    directly, while the KPI data version in kpi_fragment_cache_key changes only
    when the KPI snapshots are recomputed, so a cached fragment could show
    numbers from before a deal change.
    """
    if _is_fragment_request(request):
        response = HttpResponse(render_to_string(f"{template_name}#kpi-content", context, request))
    else:
        response = render(request, template_name, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def render_kpi_page_cached(request, template_name: str, *, audience: str, context_build: Callable[[bool], dict]):
    """Serve a KPI page whose `kpi-content` fragment comes from the cache when it can.

    `context_build(with_page)` returns the template context, and builds the
    costly `page` only when `with_page` is true (a cache miss). An htmx request
    gets the fragment alone. A full-page request renders the page around the
    same fragment HTML, so both show the same numbers and only a miss reads
    the KPI rows.
    """
    key = kpi_fragment_cache_key(request, audience=audience)
    html = cache.get(key)
    is_fragment = _is_fragment_request(request)
    if html is not None and is_fragment:
        return _fragment_response(html)

    context = context_build(html is None)
    if html is None:
        html = render_to_string(f"{template_name}#kpi-content", context, request)
        cache.set(key, html, FRAGMENT_CACHE_SECONDS)
    if is_fragment:
        return _fragment_response(html)
    # The fragment was rendered by our own template from escaped values.
    response = render(request, template_name, {**context, "kpi_content_html": mark_safe(html)})
    patch_vary_headers(response, ("HX-Request",))
    return response


def _period_context(form, periods, organization) -> tuple:
    """Return (period, errors): the requested period if valid, else the default with the error shown."""
    errors = [message for messages in form.errors.values() for message in messages]
    period = form.cleaned_data.get("period") if "period" not in form.errors else None
    return period or default_period(periods, organization=organization), errors


def dashboard(request, org_slug):
    membership = request.membership
    if membership.role == Role.REP:
        raise Http404("The dashboard is for managers and admins.")
    team_ids, member_ids = visible_team_and_member_ids(membership)
    return render_kpi_page_cached(
        request,
        "dashboards/dashboard.html",
        audience=kpi_audience(membership, team_ids=team_ids, member_ids=member_ids),
        context_build=lambda with_page: _dashboard_context(
            request, with_page=with_page, visible=(team_ids, member_ids)
        ),
    )


def _dashboard_context(
    request, *, with_page: bool, visible: tuple[set[int] | None, set[int] | None]
) -> dict:
    """Build the dashboard's context; `visible` is what visible_team_and_member_ids returned for the viewer."""
    organization, membership = request.organization, request.membership
    visible_member_ids = visible[1]
    form = DashboardFilterForm(request.GET, organization=organization)
    form.is_valid()
    periods = kpi_periods_available(organization=organization)
    period, errors = _period_context(form, periods, organization)
    teams = team_list_visible(membership=membership, visible=visible)
    team_id = form.cleaned_data.get("team")
    team = next((team for team in teams if team.pk == team_id), None)
    if team_id is not None and team is None:
        errors.append(_("No team with id %(team)s among your teams; pick one from the list.") % {"team": team_id})
    sort = form.cleaned_data.get("sort") or DEFAULT_REP_SORT

    page = None
    if with_page and period is not None:
        page = dashboard_page(
            organization=organization,
            membership=membership,
            visible_member_ids=visible_member_ids,
            period=period,
            teams=teams,
            team=team,
            sort=sort,
            deals_url=reverse("deal_list", kwargs={"org_slug": organization.slug}),
        )
    return {
        "page": page,
        "period": period,
        "period_groups": periods_grouped(periods, period),
        "teams": teams,
        "team": team,
        "sort": sort,
        "errors": errors,
    }


def me(request, org_slug):
    return render_kpi_page_cached(
        request,
        "dashboards/me.html",
        audience=scorecard_audience(request.membership, request.organization),
        context_build=lambda with_page: _me_context(request, with_page=with_page),
    )


def _me_context(request, *, with_page: bool) -> dict:
    organization, membership = request.organization, request.membership
    form = PeriodFilterForm(request.GET, organization=organization)
    form.is_valid()
    periods = kpi_periods_available(organization=organization)
    period, errors = _period_context(form, periods, organization)
    deals_url = reverse("deal_list", kwargs={"org_slug": organization.slug})

    page = None
    if with_page and period is not None:
        page = scorecard_page(organization=organization, membership=membership, period=period, deals_url=deals_url)
    return {
        "page": page,
        "period": period,
        "period_groups": periods_grouped(periods, period),
        "errors": errors,
        "deals_url": deals_url,
    }
