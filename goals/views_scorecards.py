"""Attainment scorecards: the member's own panel (embedded in /me/) and a manager's view of a rep."""

import datetime as dt

from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

from dashboards.forms import PeriodField
from dashboards.scorecards import periods_grouped
from dashboards.selectors import kpi_periods_available
from goals.attainment import organization_today
from goals.contests import contest_badges
from goals.privacy import (
    name_policy_for,
    scorecard_view_record,
    scorecard_view_record_fragment,
)
from goals.scorecards import rep_scorecard_build
from goals.selectors import default_goal_period
from spm.fiscal import MONTH, QUARTER, YEAR, Period, period_containing
from spm.models import Membership, Organization, Role
from spm.tenancy import get_visible_or_404, membership_ids_visible


class GoalPeriodForm(forms.Form):
    """The `period` query parameter of goal pages; empty means the current quarter."""

    period = PeriodField(label="period", required=False)

    def __init__(self, data, *, organization: Organization, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["period"].fiscal_year_start_month = organization.fiscal_year_start_month


def period_choices(organization: Organization, today: dt.date) -> list[Period]:
    """Return the periods offered in goal pickers, newest first.

    These are two fiscal years, six quarters and six months up to today's, plus
    every period that has KPI data, so an organization whose data ends in the
    past can still pick its periods.
    """
    start_month = organization.fiscal_year_start_month
    choices = []
    for kind, count in ((YEAR, 2), (QUARTER, 6), (MONTH, 6)):
        period = period_containing(today, kind, start_month)
        for _index in range(count):
            choices.append(period)
            period = period_containing(period.start - dt.timedelta(days=1), kind, start_month)
    recent = set(choices)
    choices += [period for period in kpi_periods_available(organization=organization) if period not in recent]
    return sorted(choices, key=lambda period: period.start, reverse=True)


def period_from_request(request) -> tuple[Period, list[str], list]:
    """Return (period, errors, picker groups) from `?period=`; a missing or invalid value gives the default period."""
    organization = request.organization
    today = organization_today(organization)
    form = GoalPeriodForm(request.GET, organization=organization)
    form.is_valid()
    errors = [message for messages in form.errors.values() for message in messages]
    period = form.cleaned_data.get("period") if "period" not in form.errors else None
    period = period or default_goal_period(organization, today)
    return period, errors, periods_grouped(period_choices(organization, today), period)


def render_goal_page(request, template_name: str, partial: str, context: dict):
    """Render the whole page, or only its `partial` for an htmx request (not for a history restore)."""
    if request.htmx and not request.htmx.history_restore_request:
        template_name = f"{template_name}#{partial}"
    response = render(request, template_name, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _scorecard_context(request, subject: Membership) -> dict:
    organization = request.organization
    period, errors, period_groups = period_from_request(request)
    today = organization_today(organization)
    scorecard = rep_scorecard_build(organization=organization, subject=subject, period=period, today=today)
    policy = name_policy_for(
        organization=organization,
        viewer=request.membership,
        visible_ids=membership_ids_visible(request.membership),
        period_key=period.label,
    )
    badges = contest_badges(organization=organization, policy=policy, period=period, today=today)
    scorecard.badges = badges.get(("rep", subject.pk), [])
    return {
        "scorecard": scorecard,
        "subject": subject,
        "period": period,
        "period_groups": period_groups,
        "errors": errors,
        "is_own": subject.pk == request.membership.pk,
    }


def my_attainment(request, org_slug):
    """Render the member's own attainment panel: a fragment that /me/ loads, or a page of its own."""
    return render_goal_page(
        request, "goals/scorecard.html", "attainment-panel", _scorecard_context(request, request.membership)
    )


def rep_scorecard(request, org_slug, member_id):
    """Render a rep's attainment scorecard for managers and admins who may see the rep; 404 for anyone else.

    Every opening of another member's scorecard (a full-page request) is logged
    for the works council. An htmx period switch is logged only without a recent view.
    """
    viewer = request.membership
    if viewer.role == Role.REP:
        raise Http404("Scorecards of other members are for managers and admins.")
    members = Membership.objects.select_related("user", "team")
    subject = get_visible_or_404(members, viewer, owner_field="pk", pk=member_id)
    if request.htmx and not request.htmx.history_restore_request:
        scorecard_view_record_fragment(organization=request.organization, viewer=viewer, subject=subject)
    else:
        scorecard_view_record(organization=request.organization, viewer=viewer, subject=subject)
    return render_goal_page(request, "goals/scorecard.html", "attainment-panel", _scorecard_context(request, subject))

