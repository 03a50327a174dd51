"""Contest pages: the list, creation and deletion by admins and managers, and one contest's standings."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from goals.attainment import COUNT_METRICS, organization_today
from goals.contests import (
    CONTEST_MAX_DAYS,
    contest_create,
    contest_delete,
    contest_get,
    contest_list,
    contest_may_delete,
    contest_standings,
)
from goals.models import ContestNormalization, QuotaMetric, Team
from goals.privacy import contest_period_key, name_policy_for
from goals.views_scorecards import render_goal_page
from pipelines.selectors import membership_list_visible, team_list_visible
from spm.date_limits import EARLIEST_DATE, planning_range, short_date
from spm.ids import IdModelMultipleChoiceField
from spm.models import Membership, Role
from spm.tenancy import membership_ids_visible
from spm.widgets import IsoDateInput


class ContestForm(forms.Form):
    """A new contest; the participant and team choices are limited to what the creator may see."""

    name = forms.CharField(label=_("Name"), max_length=200)
    metric = forms.ChoiceField(label=_("Metric"), choices=QuotaMetric.choices)
    starts_on = forms.DateField(label=_("First day"), widget=IsoDateInput())
    ends_on = forms.DateField(label=_("Last day"), widget=IsoDateInput())
    normalization = forms.ChoiceField(label=_("Ranking"), choices=ContestNormalization.choices)
    is_team_mode = forms.BooleanField(label=_("Teams compete"), required=False)
    participants = IdModelMultipleChoiceField(label=_("Participants"), queryset=None, required=False)
    teams = IdModelMultipleChoiceField(label=_("Teams"), queryset=None, required=False)

    def __init__(self, *args, membership, today, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed_days = planning_range(today)
        self.allowed_days.limit_widget(self.fields["starts_on"])
        self.allowed_days.limit_widget(self.fields["ends_on"])
        visible_members = membership_list_visible(visible_member_ids=membership_ids_visible(membership))
        self.fields["participants"].queryset = Membership.objects.filter(
            pk__in=[member.pk for member in visible_members]
        ).select_related("user")
        self.fields["participants"].label_from_instance = lambda member: member.display_name
        visible_teams = team_list_visible(membership=membership)
        self.fields["teams"].queryset = Team.objects.filter(pk__in=[team.pk for team in visible_teams])

    def clean_starts_on(self):
        return self.allowed_days.check(self.cleaned_data["starts_on"])

    def clean_ends_on(self):
        return self.allowed_days.check(self.cleaned_data["ends_on"])

    def clean(self):
        data = super().clean()
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if starts_on is None or ends_on is None:
            return data

        days = (ends_on - starts_on).days + 1
        params = {"starts_on": short_date(starts_on), "ends_on": short_date(ends_on), "days": days}
        if ends_on < starts_on:
            message = gettext("The last day %(ends_on)s is before the first day %(starts_on)s; swap them.")
            self.add_error("ends_on", message % params)
        elif days > CONTEST_MAX_DAYS:
            message = gettext(
                "The contest from %(starts_on)s to %(ends_on)s lasts %(days)s days; "
                "a contest can last at most %(max_days)s days."
            )
            self.add_error("ends_on", message % {**params, "max_days": CONTEST_MAX_DAYS})
        return data


class ContestDeleteForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that the contest and its standings are deleted for good."), required=True
    )


def _require_organizer(membership) -> None:
    if membership.role == Role.REP:
        raise Http404("Only admins and managers create and delete contests.")


def contests(request, org_slug):
    context = {
        "contests": contest_list(),
        "can_create": request.membership.role != Role.REP,
        "today": organization_today(request.organization),
    }
    return render(request, "goals/contests/list.html", context)


def contest_new(request, org_slug):
    organization, membership = request.organization, request.membership
    _require_organizer(membership)
    form = ContestForm(request.POST or None, membership=membership, today=organization_today(organization))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            contest = contest_create(
                organization=organization,
                created_by=membership,
                name=data["name"],
                metric=data["metric"],
                starts_on=data["starts_on"],
                ends_on=data["ends_on"],
                normalization=data["normalization"],
                is_team_mode=data["is_team_mode"],
                participants=list(data["participants"]),
                teams=list(data["teams"]),
            )
        except (ValidationError, PermissionDenied) as error:
            form.add_error(None, error.messages if isinstance(error, ValidationError) else str(error))
        else:
            messages.success(request, gettext("Contest %(name)s created.") % {"name": contest.name})
            return redirect("contest_detail", org_slug=organization.slug, contest_id=contest.pk)
    return render(request, "goals/contests/form.html", {"form": form}, status=400 if form.errors else 200)


def _contest_or_404(contest_id: int):
    contest = contest_get(contest_id=contest_id)
    if contest is None:
        raise Http404("No contest with this id in this organization.")
    return contest


def contest_detail(request, org_slug, contest_id):
    return _render_detail(request, _contest_or_404(contest_id))


def contest_delete_view(request, org_slug, contest_id):
    """Delete a contest after the confirmation box is ticked; admins any contest, managers their own."""
    membership = request.membership
    _require_organizer(membership)
    # The lookup comes before the method check, so an id of another organization is a 404 for every method.
    contest = _contest_or_404(contest_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not contest_may_delete(contest=contest, membership=membership):
        raise Http404("Only admins and the manager who created a contest delete it.")
    form = ContestDeleteForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, contest, delete_form=form, status=400)
    name = contest.name
    contest_delete(contest=contest, actor=membership)
    messages.success(request, gettext("Contest %(name)s deleted.") % {"name": name})
    return redirect("contest_list", org_slug=request.organization.slug)


def _render_detail(request, contest, *, delete_form=None, status=200):
    organization, viewer = request.organization, request.membership
    policy = name_policy_for(
        organization=organization,
        viewer=viewer,
        visible_ids=membership_ids_visible(viewer),
        period_key=contest_period_key(contest),
    )
    standings = contest_standings(
        organization=organization, contest=contest, policy=policy, today=organization_today(organization)
    )
    can_delete = contest_may_delete(contest=contest, membership=viewer)
    context = {
        "contest": contest,
        "standings": standings,
        "is_count": contest.metric in COUNT_METRICS,
        "privacy": organization.leaderboard_privacy,
        "earliest_date": EARLIEST_DATE,
        "max_days": CONTEST_MAX_DAYS,
        "delete_form": (delete_form or ContestDeleteForm()) if can_delete else None,
    }
    response = render_goal_page(request, "goals/contests/detail.html", "contest-standings", context)
    response.status_code = status
    return response
