"""The leaderboard: one URL for the full page and the fragment that htmx polls every 30 seconds."""

from django import forms
from django.utils.translation import gettext_lazy as _

from goals.attainment import COUNT_METRICS, organization_today
from goals.contests import contest_badges
from goals.leaderboards import PERCENT, RANKINGS, leaderboard_build
from goals.models import QuotaLevel, QuotaMetric
from goals.privacy import name_policy_for
from goals.views_scorecards import period_from_request, render_goal_page
from spm.tenancy import membership_ids_visible

# Seconds between the fragment's refreshes; the template's hx-trigger reads it.
POLL_SECONDS = 30


class LeaderboardForm(forms.Form):
    """Query parameters of the leaderboard; an invalid value is reported and the default used."""

    metric = forms.ChoiceField(label=_("Metric"), required=False, choices=QuotaMetric.choices)
    level = forms.ChoiceField(
        label=_("Compare"), required=False, choices=[(QuotaLevel.REP, _("Reps")), (QuotaLevel.TEAM, _("Teams"))]
    )
    ranking = forms.ChoiceField(label=_("Rank by"), required=False, choices=list(RANKINGS.items()))


def leaderboard(request, org_slug):
    organization, viewer = request.organization, request.membership
    period, errors, period_groups = period_from_request(request)
    form = LeaderboardForm(request.GET)
    form.is_valid()
    errors += [message for messages in form.errors.values() for message in messages]
    metric = form.cleaned_data.get("metric") or QuotaMetric.WON_REVENUE
    level = form.cleaned_data.get("level") or QuotaLevel.REP
    ranking = form.cleaned_data.get("ranking") or PERCENT

    today = organization_today(organization)
    policy = name_policy_for(
        organization=organization, viewer=viewer, visible_ids=membership_ids_visible(viewer), period_key=period.label
    )
    board = leaderboard_build(
        organization=organization, policy=policy, period=period, metric=metric, level=level, ranking=ranking, today=today
    )
    badges = contest_badges(organization=organization, policy=policy, period=period, today=today)
    for entry in board.ranked + board.unranked:
        entry.badges = badges.get((level, entry.subject_id), [])
    context = {
        "board": board,
        "form": form,
        "period": period,
        "period_groups": period_groups,
        "metric": metric,
        "metric_label": QuotaMetric(metric).label,
        "is_count": metric in COUNT_METRICS,
        "level": level,
        "ranking": ranking,
        "rankings": RANKINGS,
        "metrics": QuotaMetric.choices,
        "errors": errors,
        "privacy": organization.leaderboard_privacy,
        "poll_seconds": POLL_SECONDS,
    }
    return render_goal_page(request, "goals/leaderboard.html", "leaderboard-content", context)
