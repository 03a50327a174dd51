"""The forecast page, forecast submissions, per-deal category overrides and the admin's forecast settings.

Reps see and submit only their own forecast, managers also their reports' (and adjust
them), admins everyone's; any other member id or deal returns 404.
"""

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
from dashboards.templatetags.spm_format import period_name
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
    subject = forms.IntegerField(widget=forms.HiddenInput)
    period = forms.CharField(widget=forms.HiddenInput)
    commit_amount = AmountField(label=gettext_lazy("Commit"))
    best_case_amount = AmountField(label=gettext_lazy("Best case"))
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, max_length=2000, widget=forms.Textarea)


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


def _render(request, subject: Membership | None):
    organization = request.organization
    period, errors, today = _period_from_request(request, request.GET)
    page = forecast_page_build(
        organization=organization, viewer=request.membership, subject=subject, period=period, today=today
    )
    context = {
        "page": page,
        "period": period,
        "periods": forecast_period_choices(organization, today),
        "errors": errors,
        "is_own": subject is not None and subject.pk == request.membership.pk,
        "categories": [(value, label) for value, label in ForecastCategory.choices if value in categories.OPEN_CATEGORIES],
    }
    return render_goal_page(request, "goals/forecast.html", "forecast-content", context)


def forecast(request, org_slug):
    """Show the member's own forecast with the roll-up of everyone below them; admins see the organization."""
    viewer = request.membership
    return _render(request, None if viewer.role == Role.ADMIN else viewer)


def forecast_member(request, org_slug, member_id):
    """Show one member's forecast and roll-up; 404 unless the viewer may see that member."""
    return _render(request, _member_or_404(request, member_id))


def _back_to_page(org_slug: str, page_member: str, period_label: str):
    member_id = id_parse(page_member)
    if member_id is not None:
        url = reverse("forecast_member", kwargs={"org_slug": org_slug, "member_id": member_id})
    else:
        url = reverse("forecast", kwargs={"org_slug": org_slug})
    return redirect(f"{url}?{urlencode({'period': period_label})}")


@require_POST
def forecast_submit(request, org_slug):
    """Append a forecast call for the viewer or, for managers and admins, for someone they may see."""
    form = SubmissionForm(request.POST)
    page_member = request.POST.get("page_member", "")
    if not form.is_valid():
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, message)
        return _back_to_page(org_slug, page_member, request.POST.get("period", ""))
    subject = _member_or_404(request, form.cleaned_data["subject"])
    period, errors, today = _period_from_request(request, {"period": form.cleaned_data["period"]})
    try:
        if errors:
            # The page the user returns to shows the default period. The message states that the
            # figures entered for the rejected period were dropped, not saved for the default one.
            errors.append(_("Your forecast for %(name)s was not saved.") % {"name": subject.display_name})
            raise ValidationError(errors)
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
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _("Forecast for %(name)s saved.") % {"name": subject.display_name})
    return _back_to_page(org_slug, page_member, period.label)


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


