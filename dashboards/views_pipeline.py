"""Pipeline analytics page, activity page, their CSV/XLSX exports, and the stage stall settings.

Reps may open both pages: every number is computed over the deals and
activities of the members the viewer may see (spm.tenancy), so a rep sees
their own pipeline, a manager their teams', an admin everyone's. The stage
settings page is for admins only; anyone else gets a 404.
"""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from dashboards.analytics import tables
from dashboards.analytics.base import pipeline_list
from dashboards.analytics.definitions import PIPELINE_KPIS
from dashboards.analytics.forms import PipelineFilterForm, StageThresholdFormSet
from dashboards.analytics.page import activity_page, pipeline_page
from dashboards.analytics.stage_settings import stage_thresholds_update
from dashboards.scorecards import default_period, periods_grouped
from dashboards.selectors import kpi_periods_available
from dashboards.views import render_kpi_page
from pipelines.models import ActivityKind, Stage
from spm.date_limits import COMPUTABLE_RANGE
from spm.exports import csv_response, xlsx_response
from spm.models import Role
from spm.tenancy import membership_ids_visible

EXPORT_FORMATS = ("csv", "xlsx")


def _filters(request):
    """Parse the query string; return (form, period, errors, periods) with the default period on error."""
    organization = request.organization
    form = PipelineFilterForm(request.GET, organization=organization)
    form.is_valid()
    periods = kpi_periods_available(organization=organization)
    errors = [message for field_errors in form.errors.values() for message in field_errors]
    period = form.cleaned_data.get("period") if "period" not in form.errors else None
    return form, period or default_period(periods, organization=organization), errors, periods


def _pipeline_context(request):
    organization, membership = request.organization, request.membership
    form, period, errors, periods = _filters(request)
    pipelines = pipeline_list()
    pipeline_id = form.cleaned_data.get("pipeline")
    pipeline = next((item for item in pipelines if item.pk == pipeline_id), None) if pipeline_id else None
    if pipeline_id is not None and pipeline is None:
        errors.append(_("No pipeline with id %(pipeline)s; pick one from the list.") % {"pipeline": pipeline_id})
    pipeline = pipeline or (pipelines[0] if pipelines else None)
    as_of_day = form.cleaned_data.get("as_of") or (period.start if period is not None else timezone.localdate())

    page = None
    if period is not None:
        page = pipeline_page(
            organization=organization,
            membership=membership,
            visible_member_ids=membership_ids_visible(membership),
            period=period,
            pipeline=pipeline,
            as_of_day=as_of_day,
            dimension=form.dimension_value,
            deals_url=reverse("deal_list", kwargs={"org_slug": organization.slug}),
        )
    return {
        "page": page,
        "period": period,
        "period_groups": periods_grouped(periods, period),
        "pipelines": pipelines,
        "pipeline": pipeline,
        "as_of_day": as_of_day,
        "as_of_range": COMPUTABLE_RANGE,
        "dimension": form.dimension_value,
        "dimensions": tables.dimension_choices(),
        "errors": errors,
        "kpis": PIPELINE_KPIS,
        "waterfall_labels": tables.WATERFALL_LABELS,
    }


def pipeline(request, org_slug):
    context = _pipeline_context(request)
    context["export_tables"] = tables.PIPELINE_TABLES
    response = render_kpi_page(request, "dashboards/pipeline.html", context)
    return response


def _activity_context(request):
    organization, membership = request.organization, request.membership
    _form, period, errors, periods = _filters(request)
    page = None
    if period is not None:
        page = activity_page(
            organization=organization,
            visible_member_ids=membership_ids_visible(membership),
            period=period,
            feed_page=request.GET.get("page"),
            deals_url=reverse("deal_list", kwargs={"org_slug": organization.slug}),
        )
    return {
        "page": page,
        "period": period,
        "period_groups": periods_grouped(periods, period),
        "errors": errors,
        "kpis": PIPELINE_KPIS,
    }


def activities(request, org_slug):
    context = _activity_context(request)
    context["export_tables"] = tables.ACTIVITY_TABLES
    context["activity_kinds"] = ActivityKind.choices
    return render_kpi_page(request, "dashboards/pipeline_activities.html", context)


def pipeline_export(request, org_slug):
    """Download one table of the pipeline or activity page as CSV or XLSX.

    `table` (default funnel) names the table and `format` (csv or xlsx, default
    csv) the file type; the other parameters are the page's own, so the file
    has the numbers the page shows. Without KPI data the file has only its
    header row. An unknown table or format is a 404. An invalid filter (such
    as an unknown win/loss dimension) is a 400 whose plain-text body lists the
    page's filter messages, instead of a file of the default selection.
    """
    table = request.GET.get("table", "funnel")
    export_format = request.GET.get("format", "csv")
    if export_format not in EXPORT_FORMATS or table not in {**tables.PIPELINE_TABLES, **tables.ACTIVITY_TABLES}:
        raise Http404("Unknown table or format.")
    # NOTE: this reads every table of the page to export one, so a download costs a page load.
    if table in tables.PIPELINE_TABLES:
        context = _pipeline_context(request)
    else:
        context = _activity_context(request)
    if context["errors"]:
        response = HttpResponse("\n".join(context["errors"]) + "\n", status=400, content_type="text/plain; charset=utf-8")
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response

    export = tables.table_build(table, context["page"], organization=request.organization)
    response = csv_response(export) if export_format == "csv" else xlsx_response(export)
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response


def stage_settings(request, org_slug):
    """List every stage with its stall threshold; admins save changes, each one audit-logged."""
    membership = request.membership
    if membership.role != Role.ADMIN:
        raise Http404("Stage settings are for admins.")

    stages = list(Stage.objects.select_related("pipeline").order_by("pipeline__name", "order", "id"))
    initial = [{"stage_id": stage.pk, "stalled_after_days": stage.stalled_after_days} for stage in stages]
    if request.method == "POST":
        formset = StageThresholdFormSet(request.POST, initial=initial)
        if formset.is_valid():
            known = {stage.pk for stage in stages}
            thresholds = {
                form.cleaned_data["stage_id"]: form.cleaned_data["stalled_after_days"]
                for form in formset
                if form.cleaned_data.get("stage_id") in known
            }
            changed = stage_thresholds_update(membership=membership, thresholds=thresholds)
            messages.success(
                request,
                ngettext("Saved: %(count)s stage changed.", "Saved: %(count)s stages changed.", changed)
                % {"count": changed},
            )
            return redirect("stage_settings", org_slug=org_slug)
    else:
        formset = StageThresholdFormSet(initial=initial)
    rows = list(zip(stages, formset.forms))
    return render(request, "dashboards/pipeline_stage_settings.html", {"formset": formset, "rows": rows})
