"""The forecast page, forecast submissions, per-deal category overrides and the admin's forecast settings.

Reps see and submit only their own forecast, managers also their reports' (and adjust
them), admins everyone's; any other member id or deal returns 404.
"""

from babel.lists import format_list
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from dashboards.forms import PeriodField
from dashboards.templatetags.spm_format import current_locale, format_money, period_name
from goals.attainment import organization_today
from goals.forecasts import categories, rollup
from goals.forecasts.page import (
    forecast_page_build,
    forecast_period_choices,
    forecast_period_default,
)
from goals.forms import AmountField
from goals.models import ForecastCategory, ForecastPeriodKind
from goals.views_scorecards import render_goal_page
from pipelines.models import Deal
from spm.ids import id_parse
from spm.models import Membership, Role
from spm.security import admin_required
from spm.tenancy import get_visible_or_404


class SubmissionForm(forms.Form):
    # The page sends both hidden fields, so only a crafted request leaves them invalid.
    HIDDEN_FIELDS = ("subject", "period")

    subject = forms.IntegerField(widget=forms.HiddenInput)
    period = forms.CharField(widget=forms.HiddenInput)
    commit_amount = AmountField(label=gettext_lazy("Commit"))
    best_case_amount = AmountField(label=gettext_lazy("Best case"))
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=2000, widget=forms.Textarea)

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean(self):
        cleaned = super().clean()
        commit, best_case = cleaned.get("commit_amount"), cleaned.get("best_case_amount")
        # rollup.forecast_submit makes the same check. Repeating it here puts the error at the best case field.
        if commit is not None and best_case is not None and best_case < commit:
            self.add_error(
                "best_case_amount",
                _("Best case (%(best_case)s) is below commit (%(commit)s); best case includes the commit, so enter at least the commit.")
                % {"best_case": format_money(best_case, self.currency), "commit": format_money(commit, self.currency)},
            )
        return cleaned


class PeriodForm(forms.Form):
    period = PeriodField(label="period", required=False)


def _member_or_404(request, member_id: int) -> Membership:
    members = Membership.objects.select_related("user", "team")
    return get_visible_or_404(members, request.membership, owner_field="pk", pk=member_id)


def _period_from_request(request, data) -> tuple:
    organization = request.organization
    today = organization_today(organization)
    form = PeriodForm(data)
    form.fields["period"].fiscal_year_start_month = organization.fiscal_year_start_month
    errors = []
    period = form.cleaned_data.get("period") if form.is_valid() else None
    errors += [message for field_errors in form.errors.values() for message in field_errors]
    default = forecast_period_default(organization, today)
    if period is not None and period.kind != default.kind:
        # One sentence per kind, because a kind label inside a sentence reads wrong ("per Quarter").
        if default.kind == ForecastPeriodKind.MONTH:
            wrong_kind = _("The forecast runs by month. %(value)s is not a month, so %(default)s is shown.")
        else:
            wrong_kind = _("The forecast runs by quarter. %(value)s is not a quarter, so %(default)s is shown.")
        errors.append(wrong_kind % {"value": period_name(period), "default": period_name(default)})
        period = None
    return period or default, errors, today


def _render(
    request,
    subject: Membership | None,
    period,
    today,
    *,
    page_url: str,
    errors=(),
    draft: SubmissionForm | None = None,
    submission_errors=(),
):
    """Render the forecast page of `subject` (None: the organization) for `period`.

    `page_url` is the page's own address, which the period filter reloads; it differs from
    request.path when a rejected submission is shown again. `draft` is that rejected
    submission, whose values and errors replace the saved figures in the form for its subject.
    """
    organization = request.organization
    page = forecast_page_build(
        organization=organization, viewer=request.membership, subject=subject, period=period, today=today
    )
    draft_subject_id = draft.cleaned_data.get("subject") if draft is not None else None
    context = {
        "page": page,
        "page_url": page_url,
        "period": period,
        "periods": forecast_period_choices(organization, today, page_period=period),
        "errors": errors,
        "submission_errors": submission_errors,
        "own_draft": draft if subject is not None and draft_subject_id == subject.pk else None,
        "lines": [(line, draft if draft_subject_id == line.member_id else None) for line in page.lines],
        "is_own": subject is not None and subject.pk == request.membership.pk,
        "categories": [(value, label) for value, label in ForecastCategory.choices if value in categories.OPEN_CATEGORIES],
    }
    return render_goal_page(request, "goals/forecast.html", "forecast-content", context)


def _own_page_subject(viewer: Membership) -> Membership | None:
    """Return the subject of the viewer's own forecast page: the viewer, or None (the organization) for admins."""
    return None if viewer.role == Role.ADMIN else viewer


def forecast(request, org_slug):
    """Show the member's own forecast with the roll-up of everyone below them; admins see the organization."""
    period, errors, today = _period_from_request(request, request.GET)
    subject = _own_page_subject(request.membership)
    return _render(request, subject, period, today, page_url=request.path, errors=errors)


def forecast_member(request, org_slug, member_id):
    """Show one member's forecast and roll-up; 404 unless the viewer may see that member."""
    subject = _member_or_404(request, member_id)
    period, errors, today = _period_from_request(request, request.GET)
    return _render(request, subject, period, today, page_url=request.path, errors=errors)


def _back_to_page(org_slug: str, page_member: str, period_label: str):
    member_id = id_parse(page_member)
    if member_id is not None:
        url = reverse("forecast_member", kwargs={"org_slug": org_slug, "member_id": member_id})
    else:
        url = reverse("forecast", kwargs={"org_slug": org_slug})
    return redirect(f"{url}?{urlencode({'period': period_label})}")


def _submission_rejected(request, form: SubmissionForm, subject: Membership, page_member: str, period, today):
    """Render the page the form was sent from again, with status 400 and the entered values kept.

    Each field error shows at its field in the subject's form. The alert above names the
    person and the fields, because the error messages of a field need not name it.
    """
    org_slug = request.organization.slug
    member_id = id_parse(page_member)
    if member_id is not None:
        page_subject = _member_or_404(request, member_id)
        page_url = reverse("forecast_member", kwargs={"org_slug": org_slug, "member_id": member_id})
    else:
        page_subject = _own_page_subject(request.membership)
        page_url = reverse("forecast", kwargs={"org_slug": org_slug})

    summary = [_("Your forecast for %(name)s was not saved.") % {"name": subject.display_name}]
    summary += form.non_field_errors()
    field_labels = [str(field.label) for name, field in form.fields.items() if name in form.errors]
    if field_labels:
        fields = format_list(field_labels, locale=current_locale())
        summary.append(_("Check %(fields)s, then submit the forecast again.") % {"fields": fields})
    response = _render(
        request, page_subject, period, today, page_url=page_url, draft=form, submission_errors=summary
    )
    response.status_code = 400
    return response


@require_POST
def forecast_submit(request, org_slug):
    """Append a forecast call for the viewer or, for managers and admins, for someone they may see.

    A valid call redirects to the page it was sent from. Invalid amounts or a call the
    service rejects render that page again with status 400 and save nothing.
    """
    form = SubmissionForm(request.POST, currency=request.organization.currency)
    page_member = request.POST.get("page_member", "")
    if any(form.has_error(name) for name in SubmissionForm.HIDDEN_FIELDS):
        for name in SubmissionForm.HIDDEN_FIELDS:
            for message in form.errors.get(name, []):
                messages.error(request, message)
        return _back_to_page(org_slug, page_member, request.POST.get("period", ""))
    subject = _member_or_404(request, form.cleaned_data["subject"])
    period, errors, today = _period_from_request(request, {"period": form.cleaned_data["period"]})
    if errors:
        # The page the user returns to shows the default period. The message states that the
        # figures entered for the rejected period were dropped, not saved for the default one.
        errors.append(_("Your forecast for %(name)s was not saved.") % {"name": subject.display_name})
        for message in errors:
            messages.error(request, message)
        return _back_to_page(org_slug, page_member, period.label)
    if form.is_valid():
        try:
            rollup.forecast_submit(
                organization=request.organization,
                subject=subject,
                submitted_by=request.membership,
                period=period,
                commit_amount=form.cleaned_data["commit_amount"],
                best_case_amount=form.cleaned_data["best_case_amount"],
                comment=form.cleaned_data["comment"],
                today=today,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Forecast for %(name)s saved.") % {"name": subject.display_name})
            return _back_to_page(org_slug, page_member, period.label)
    return _submission_rejected(request, form, subject, page_member, period, today)


def forecast_deal_category(request, org_slug, deal_id):
    """Override or clear the forecast category of an open deal the viewer may see.

    The deal is looked up before the method is checked, so a deal the viewer may not
    see returns 404 for every method and its existence stays hidden.
    """
    deal = get_visible_or_404(Deal.objects.select_related("owner"), request.membership, pk=deal_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    category = request.POST.get("category", "")
    try:
        changed = categories.deal_category_set(
            organization=request.organization, deal=deal, actor=request.membership, category=category
        )
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        if changed:
            messages.success(request, _("Forecast category of %(deal)s saved.") % {"deal": deal})
    return _back_to_page(org_slug, request.POST.get("page_member", ""), request.POST.get("period", ""))


@admin_required
@require_http_methods(["GET", "POST"])
def forecast_settings(request, org_slug):
    """Let the admin choose the forecast period and the category of each open stage."""
    organization = request.organization
    rows = categories.stage_category_rows()
    settings = categories.forecast_settings_get(organization)
    if request.method == "POST":
        chosen = {
            row["stage"].pk: request.POST.get(f"stage-{row['stage'].pk}", row["category"]) for row in rows if row["is_open"]
        }
        try:
            changed = categories.forecast_settings_update(
                organization=organization,
                actor=request.user,
                period_kind=request.POST.get("period_kind", settings.period_kind),
                categories=chosen,
            )
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(
                request, _("Forecast settings saved.") if changed else _("No changes to save.")
            )
            return redirect("forecast_settings", org_slug=org_slug)
    context = {
        "rows": rows,
        "settings": settings,
        "period_kinds": ForecastPeriodKind.choices,
        "categories": [(value, label) for value, label in ForecastCategory.choices if value in categories.OPEN_CATEGORIES],
    }
    return render(request, "goals/forecast_settings.html", context)


