"""Works-council pages: the scorecard view log (admins) and the register of personal metrics (everyone)."""

import datetime as dt

from django import forms
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from goals.privacy import PERSONAL_METRICS, personal_metrics_table, scorecard_view_list, viewer_choices
from goals.views_scorecards import render_goal_page
from spm.date_limits import FilterDateField
from spm.exports import csv_response
from spm.fiscal import local_midnight
from spm.models import Role

PAGE_SIZE = 50


class ViewLogFilterForm(forms.Form):
    viewer = forms.TypedChoiceField(label=_("Viewer"), required=False, coerce=int, empty_value=None)
    subject = forms.TypedChoiceField(label=_("Viewed member"), required=False, coerce=int, empty_value=None)
    since = FilterDateField(label=_("From"), required=False)
    until = FilterDateField(label=_("Until (inclusive)"), required=False)

    def __init__(self, data, **kwargs):
        super().__init__(data, **kwargs)
        choices = [("", gettext("Everyone"))] + [(member.pk, member.display_name) for member in viewer_choices()]
        self.fields["viewer"].choices = choices
        self.fields["subject"].choices = choices

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        return cleaned


def scorecard_views(request, org_slug):
    """Show admins the log of who opened whose scorecard, filtered by viewer, viewed member and dates."""
    if request.membership.role != Role.ADMIN:
        raise Http404("The scorecard view log is for admins.")
    form = ViewLogFilterForm(request.GET)
    if form.is_valid():
        data = form.cleaned_data
        tz = request.organization.tzinfo
        since = local_midnight(data["since"], tz) if data.get("since") else None
        until = local_midnight(data["until"] + dt.timedelta(days=1), tz) if data.get("until") else None
        views = scorecard_view_list(
            viewer_id=data.get("viewer"), subject_id=data.get("subject"), since=since, until=until
        )
    else:
        # The page lists the errors in place of the table, so no unfiltered rows pass for filtered ones.
        views = []
    page = Paginator(views, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    response = render_goal_page(request, "goals/privacy/views.html", "view-log", context)
    if form.errors:
        # spm.js has htmx swap a 400 response, so the errors replace #view-log there too.
        response.status_code = 400
    return response


def personal_metrics(request, org_slug):
    """List every metric computed about a person, its purpose and its audience; `?format=csv` downloads it."""
    if request.GET.get("format") == "csv":
        return csv_response(personal_metrics_table())
    return render(request, "goals/privacy/metrics.html", {"metrics": PERSONAL_METRICS})
