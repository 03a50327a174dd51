"""Admin pages: organization settings, the quota editor and uploads, teams, territories and people.

Every view returns 404 to anyone but an admin of the organization in the URL.
"""

import logging
from decimal import InvalidOperation

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.formats import number_format
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from dashboards.analytics.periods import parse_computable_period
from goals import forms, imports, selectors, services
from goals.attainment import organization_today
from goals.models import LeavePeriod, Quota, RampSchedule, Team, Territory
from goals.parsing import parse_number
from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.models import MAX_MONEY_AMOUNT
from spm import fiscal
from spm.date_limits import planning_range
from spm.ids import id_or_404
from spm.models import Membership
from spm.security import admin_required

logger = logging.getLogger(__name__)

MAX_PASTE_CELLS = 2000


# --- settings -----------------------------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def organization_settings(request, org_slug):
    organization = request.organization
    fields = services.SETTINGS_FIELDS
    form = forms.OrganizationSettingsForm(
        request.POST or None, initial={name: getattr(organization, name) for name in fields}
    )
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in fields}
        try:
            changed = services.organization_settings_update(
                organization=organization, actor=request.user, changes=changes, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if "fiscal_year_start_month" in changed:
                messages.info(request, _("Fiscal calendar changed. Quotas keep their dates; KPIs are being recomputed."))
            elif changed:
                messages.success(request, _("Settings saved."))
            return redirect("goals_settings", org_slug=org_slug)
    return render(request, "goals/admin/settings.html", {"form": form})


# --- quota editor -------------------------------------------------------------------------------


def _grid_context(request, values: dict, **extra) -> dict:
    organization = request.organization
    grid = selectors.quota_grid(organization=organization, **values)
    return {
        "grid": grid,
        "values": values,
        "filter_form": forms.QuotaGridForm(initial=values),
        "query": urlencode(values),
        **extra,
    }


def _grid_values(request, data) -> dict:
    """Return the grid's year, granularity, level and metric from `data`, with defaults for the missing ones.

    The year defaults to today's fiscal year, or to the latest fiscal year with quotas when
    today's has none and none lies later, so a data set of earlier years opens on its quotas.
    """
    start_month = request.organization.fiscal_year_start_month
    default_year = fiscal.fiscal_year_of(timezone.localdate(), start_month)
    latest_start = Quota.objects.order_by("-period_start").values_list("period_start", flat=True).first()
    if latest_start is not None:
        latest_year = fiscal.fiscal_year_of(latest_start, start_month)
        if latest_year < default_year:
            default_year = latest_year
    return forms.QuotaGridForm(data).values(default_year)


@admin_required
def quota_editor(request, org_slug):
    values = _grid_values(request, request.GET)
    context = _grid_context(
        request,
        values,
        upload_form=forms.QuotaUploadForm(),
        apply_form=forms.QuotaTemplateApplyForm(),
        template_form=forms.QuotaTemplateForm(),
    )
    template_name = "goals/quotas/editor.html"
    if request.htmx and not request.htmx.history_restore_request:
        template_name += "#quota-grid"
    response = render(request, template_name, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _cell_from_post(request, values: dict):
    """Return (subject_id, period) named by the POST, or raise Http404 for values outside the grid."""
    periods = {period.label: period for period in selectors.quota_grid_periods(organization=request.organization, year=values["year"], granularity=values["granularity"])}
    period = periods.get(request.POST.get("period", ""))
    try:
        subject_id = int(request.POST.get("subject", ""))
    except ValueError:
        subject_id = None
    if period is None or subject_id is None:
        raise Http404("No such cell in this grid.")
    return subject_id, period


@admin_required
@require_POST
def quota_cell(request, org_slug):
    """Save one cell. htmx gets the cell and, out of band, the column's other cells and total; others a redirect."""
    values = _grid_values(request, request.POST)
    # The editor posts only ids of its own rows, so a malformed id, or one that names no rep, team or
    # territory of this organization, is a crafted request and gets a 404 like other foreign ids.
    # The service rejects such an id too, but the htmx response draws only cells of grid rows and would show no error.
    subject_model = {"rep": Membership, "team": Team, "territory": Territory}[values["level"]]
    get_object_or_404(subject_model, organization=request.organization, pk=id_or_404(request.POST.get("subject")))
    subject_id, period = _cell_from_post(request, values)
    text = request.POST.get("value", "").strip()
    error = None
    try:
        target = parse_number(text, "value") if text else None
        services.quota_update(
            organization=request.organization,
            actor=request.user,
            level=values["level"],
            subject_id=subject_id,
            period_kind=period.kind,
            period_start=period.start,
            metric=values["metric"],
            target=target,
            reason=request.POST.get("reason", "").strip()[:500],
        )
    except RowRejected as rejection:
        error = str(rejection.reason)
    except ValidationError as validation_error:
        error = " ".join(validation_error.messages)
    if error:
        error = _("%(value)s was not saved: %(error)s") % {"value": text, "error": error}

    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(f"{reverse('goals_quota_editor', kwargs={'org_slug': org_slug})}?{urlencode(values)}")

    context = _grid_context(request, values, column_label=period.label, edited_subject=subject_id, cell_error=error, cell_text=text)
    if subject_id not in {row.subject_id for row in context["grid"].rows}:
        # The response below draws only the cells of grid rows. A member who is no row, such as a rep
        # who became a manager after the page was opened, gets the whole grid with the message above it.
        response = render(request, "goals/quotas/editor.html#quota-grid", {**context, "grid_error": error})
        response["HX-Retarget"] = "#quota-grid"
        response["HX-Reswap"] = "outerHTML"
        patch_vary_headers(response, ("HX-Request",))
        return response
    column = next(index for index, column_period in enumerate(context["grid"].periods) if column_period.label == period.label)
    context["column"] = column
    context["column_cells"] = [(row, row.cells[column]) for row in context["grid"].rows]
    context["column_total"] = context["grid"].totals[column]
    response = render(request, "goals/quotas/_cell_response.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@admin_required
@require_POST
def quota_paste(request, org_slug):
    """Save a tab-separated block pasted from Excel, starting at the given cell; all cells or none."""
    values = _grid_values(request, request.POST)
    subject_id, period = _cell_from_post(request, values)
    grid = selectors.quota_grid(organization=request.organization, **values)
    row_ids = [row.subject_id for row in grid.rows]
    labels = [column_period.label for column_period in grid.periods]
    first_row, first_column = row_ids.index(subject_id) if subject_id in row_ids else -1, labels.index(period.label)
    if first_row < 0:
        raise Http404("No such row in this grid.")

    lines = request.POST.get("block", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    errors, cells = [], []
    for line_index, line in enumerate(lines):
        for column_index, text in enumerate(line.split("\t")):
            row_number, column_number = first_row + line_index, first_column + column_index
            if row_number >= len(row_ids) or column_number >= len(labels):
                errors.append(_("Row %(row)d, column %(column)d: %(value)s lies outside the grid.") % {"row": line_index + 1, "column": column_index + 1, "value": text})
                continue
            try:
                target = parse_number(text.strip(), "value") if text.strip() else None
            except RowRejected as rejection:
                errors.append(
                    _("Row %(row)d, column %(column)d (%(subject)s, %(period)s), value %(value)s: %(reason)s.")
                    % {"row": line_index + 1, "column": column_index + 1, "subject": grid.rows[row_number].label,
                       "period": labels[column_number], "value": text, "reason": rejection.reason}
                )  # fmt: skip
                continue
            cells.append(((row_ids[row_number], grid.periods[column_number]), target))
    if len(cells) + len(errors) > MAX_PASTE_CELLS:
        errors = [_("The block has more than %(count)d cells; paste a smaller block.") % {"count": MAX_PASTE_CELLS}]

    saved = 0
    if not errors:
        try:
            saved = services.quota_paste(
                organization=request.organization, actor=request.user, level=values["level"], metric=values["metric"],
                cells=cells, reason=request.POST.get("reason", "").strip()[:500],
            )  # fmt: skip
        except ValidationError as error:
            errors = error.messages
    context = _grid_context(request, values, paste_errors=errors, paste_saved=saved)
    response = render(request, "goals/quotas/editor.html#quota-grid", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@admin_required
@require_POST
def quota_upload(request, org_slug):
    values = _grid_values(request, request.GET)
    form = forms.QuotaUploadForm(request.POST, request.FILES)
    result, source_error = None, None
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = imports.quota_import(
                organization=request.organization, actor=request.user, data=upload.read(), file_name=upload.name
            )
        except ImportSourceError as error:
            source_error = str(error)
    context = _grid_context(
        request,
        values,
        upload_form=form,
        upload_result=result,
        upload_error=source_error,
        apply_form=forms.QuotaTemplateApplyForm(),
        template_form=forms.QuotaTemplateForm(),
    )
    return render(request, "goals/quotas/editor.html", context, status=400 if form.errors or source_error else 200)


def _editor_url(org_slug: str, values: dict) -> str:
    """Return the quota editor's address showing the grid of `values` (year, granularity, level, metric)."""
    return f"{reverse('goals_quota_editor', kwargs={'org_slug': org_slug})}?{urlencode(values)}"


def _editor_with_rejected_template_form(request, values: dict, **template_forms):
    """Show the editor again with a rejected template form, its input and its errors next to each field, as 400."""
    context = _grid_context(
        request,
        values,
        upload_form=forms.QuotaUploadForm(),
        apply_form=template_forms.get("apply_form") or forms.QuotaTemplateApplyForm(),
        template_form=template_forms.get("template_form") or forms.QuotaTemplateForm(),
    )
    return render(request, "goals/quotas/editor.html", context, status=400)


@admin_required
@require_POST
def quota_template_create(request, org_slug):
    # The grid's year, granularity, level and metric come in the query string, as for the upload.
    values = _grid_values(request, request.GET)
    form = forms.QuotaTemplateForm(request.POST)
    if not form.is_valid():
        return _editor_with_rejected_template_form(request, values, template_form=form)
    template = form.save(commit=False)
    template.organization = request.organization
    template.save()
    messages.success(request, _("Template %(name)s saved.") % {"name": template.name})
    return redirect(_editor_url(org_slug, values))


@admin_required
@require_POST
def quota_template_apply(request, org_slug):
    values = _grid_values(request, request.GET)
    form = forms.QuotaTemplateApplyForm(request.POST)
    if not form.is_valid():
        return _editor_with_rejected_template_form(request, values, apply_form=form)
    template = form.cleaned_data["template"]
    try:
        period = _template_apply_period(request.organization, template, form.cleaned_data["period"])
        outcomes = services.quota_template_apply(
            organization=request.organization,
            actor=request.user,
            template=template,
            membership_ids=[member.pk for member in form.cleaned_data["members"]],
            period_start=period.start,
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _editor_with_rejected_template_form(request, values, apply_form=form)
    messages.success(
        request,
        _("Template applied: %(created)d created, %(updated)d changed, %(unchanged)d unchanged.") % outcomes,
    )
    return redirect(_editor_url(org_slug, values))


def _template_apply_period(organization, template, period_text: str) -> fiscal.Period:
    """Return the period that `period_text` names after checking it and `template`.

    Raises ValidationError keyed by the apply form's field: "period" for a period that
    cannot be read, lies outside the planning range or has another kind than the
    template's, "template" for a template whose target is above the maximum.
    """
    try:
        period = parse_computable_period(period_text, organization.fiscal_year_start_month, allow_range=False)
        # Quotas are planned like the quota upload's: from 2000 to five years ahead.
        planning_range(organization_today(organization)).check_period(period, period_text)
        if period.kind != template.period_kind:
            raise ValidationError(
                _("%(period)s is not a %(kind)s; the template %(name)s sets %(kind)s quotas.")
                % {"period": period.label, "kind": template.get_period_kind_display(), "name": template.name}
            )
    except ValueError as error:
        raise ValidationError({"period": str(error)}) from None
    except ValidationError as error:
        raise ValidationError({"period": error.messages}) from None
    try:
        _template_target_check(template)
    except ValidationError as error:
        raise ValidationError({"template": error.messages}) from None
    return period


def _template_target_check(template) -> None:
    """Raise ValidationError when the template's stored target is above MAX_MONEY_AMOUNT or cannot be read.

    The template form accepted up to 18 digits before it checked the maximum. SQLite stores
    such a target as a float that Django cannot quantize back to 18 digits, so reading it
    raises decimal.InvalidOperation.
    """
    try:
        target = template.target
    except InvalidOperation:
        logger.warning("Quota template target unreadable template_id=%s", template.pk)
        target = None
    if target is None or target > MAX_MONEY_AMOUNT:
        raise ValidationError(
            _(
                "The template %(name)s has a target above the maximum of %(maximum)s, so it was not applied. "
                "Create a template with a smaller target and apply that one."
            )
            % {"name": template.name, "maximum": number_format(MAX_MONEY_AMOUNT, decimal_pos=2, force_grouping=True)}
        )


# --- teams, territories, people -----------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def structure(request, org_slug):
    """Teams and territories as trees, with forms to create, rename, move and assign a manager."""
    team_form, territory_form = forms.TeamForm(prefix="team"), forms.TerritoryForm(prefix="territory")
    ramp_form = forms.RampScheduleForm(prefix="ramp")
    edited = None
    status = 200
    if request.method == "POST":
        kind = request.POST.get("kind")
        try:
            if kind == "team":
                form = forms.TeamForm(request.POST, prefix="team")
                team = get_object_or_404(Team, pk=id_or_404(request.POST["pk"])) if request.POST.get("pk") else None
                # A rejected edit is shown at the edited team; the new-team form shows only its own input.
                if team is None:
                    team_form = form
                else:
                    edited = {"kind": "team", "pk": team.pk, "form": form}
                if form.is_valid():
                    saved = services.team_save(organization=request.organization, actor=request.user, team=team, **form.cleaned_data)
                    message = _("Team %(name)s created.") if team is None else _("Team %(name)s saved.")
                    messages.success(request, message % {"name": saved.name})
                    return redirect("goals_structure", org_slug=org_slug)
            elif kind == "territory":
                form = forms.TerritoryForm(request.POST, prefix="territory")
                territory = get_object_or_404(Territory, pk=id_or_404(request.POST["pk"])) if request.POST.get("pk") else None
                if territory is None:
                    territory_form = form
                else:
                    edited = {"kind": "territory", "pk": territory.pk, "form": form}
                if form.is_valid():
                    saved = services.territory_save(
                        organization=request.organization, actor=request.user, territory=territory, **form.cleaned_data
                    )
                    message = _("Territory %(name)s created.") if territory is None else _("Territory %(name)s saved.")
                    messages.success(request, message % {"name": saved.name})
                    return redirect("goals_structure", org_slug=org_slug)
            elif kind == "ramp":
                ramp_form = forms.RampScheduleForm(request.POST, prefix="ramp")
                if ramp_form.is_valid():
                    schedule = services.ramp_schedule_create(
                        organization=request.organization, actor=request.user,
                        name=ramp_form.cleaned_data["name"], month_percentages=ramp_form.cleaned_data["percentages"],
                    )  # fmt: skip
                    params = {"name": schedule.name, "percentages": forms.ramp_percentages_text(schedule.month_percentages)}
                    messages.success(request, _("Ramp schedule %(name)s created: %(percentages)s.") % params)
                    return redirect("goals_structure", org_slug=org_slug)
            else:
                messages.error(request, _unknown_form_message(kind, ("team", "territory", "ramp")))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        # Every accepted form redirects, so a POST that gets here was rejected.
        status = 400
    context = {
        "teams": selectors.team_tree(),
        "territories": selectors.territory_tree(),
        "team_form": team_form,
        "territory_form": territory_form,
        "ramp_form": ramp_form,
        "edited": edited,
        "ramp_schedules": [
            (schedule, forms.ramp_percentages_text(schedule.month_percentages))
            for schedule in RampSchedule.objects.order_by("name", "id")
        ],
    }
    return render(request, "goals/admin/structure.html", context, status=status)


@admin_required
@require_http_methods(["GET", "POST"])
def people(request, org_slug):
    form = forms.PeopleUploadForm(request.POST or None, request.FILES or None)
    result, source_error = None, None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = imports.people_import(
                organization=request.organization, actor=request.user, data=upload.read(), file_name=upload.name
            )
        except ImportSourceError as error:
            source_error = str(error)
    context = {"members": selectors.people_list(), "form": form, "result": result, "source_error": source_error}
    return render(request, "goals/admin/people.html", context, status=400 if form.errors or source_error else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def person(request, org_slug, membership_id):
    """Show and change one member: role and employment dates, team and territory over time, leave."""
    member = get_object_or_404(Membership.objects.select_related("user", "team", "territory"), pk=membership_id)
    member_form = forms.MemberForm(
        prefix="member",
        member=member,
        initial={
            "role": member.role, "active_from": member.active_from, "active_to": member.active_to,
            "ramp_schedule": member.ramp_schedule, "manager": member.manager,
        },
    )  # fmt: skip
    assignment_form = forms.AssignmentForm(prefix="assignment", initial={"team": member.team, "territory": member.territory, "valid_from": organization_today(request.organization)})
    leave_form = forms.LeaveForm(prefix="leave")
    status = 200
    if request.method == "POST":
        kind = request.POST.get("kind")
        try:
            if kind == "member":
                member_form = forms.MemberForm(request.POST, prefix="member", member=member)
                if member_form.is_valid():
                    data = member_form.cleaned_data
                    changed = services.membership_update(
                        membership=member, actor=request.user, role=data["role"], active_from=data["active_from"],
                        active_to=data["active_to"], ramp_schedule=data["ramp_schedule"], manager=data["manager"],
                        reason=data["reason"],
                    )  # fmt: skip
                    if "role" in changed and member.pk == request.membership.pk:
                        # The admin pages return 404 to the new role, so the person page cannot be shown again.
                        messages.success(
                            request,
                            _("You are no longer an admin of %(organization)s. Another admin can give you the role back.")
                            % {"organization": request.organization.name},
                        )
                        return redirect("organization_home", org_slug=org_slug)
                    if changed:
                        messages.success(request, _("%(name)s saved.") % {"name": member.display_name})
                    else:
                        messages.info(request, _("Nothing changed for %(name)s.") % {"name": member.display_name})
                    return redirect("goals_person", org_slug=org_slug, membership_id=member.pk)
            elif kind == "assignment":
                assignment_form = forms.AssignmentForm(request.POST, prefix="assignment")
                if assignment_form.is_valid():
                    services.assignment_change(membership=member, actor=request.user, **assignment_form.cleaned_data)
                    messages.success(request, _("Team and territory of %(name)s saved.") % {"name": member.display_name})
                    return redirect("goals_person", org_slug=org_slug, membership_id=member.pk)
            elif kind == "leave":
                leave_form = forms.LeaveForm(request.POST, prefix="leave")
                if leave_form.is_valid():
                    services.leave_period_add(membership=member, actor=request.user, **leave_form.cleaned_data)
                    messages.success(request, _("Leave of %(name)s added.") % {"name": member.display_name})
                    return redirect("goals_person", org_slug=org_slug, membership_id=member.pk)
            elif kind == "leave_delete":
                leave = get_object_or_404(LeavePeriod, pk=id_or_404(request.POST.get("leave")), membership=member)
                services.leave_period_delete(leave=leave, actor=request.user)
                messages.success(request, _("Leave of %(name)s deleted.") % {"name": member.display_name})
                return redirect("goals_person", org_slug=org_slug, membership_id=member.pk)
            else:
                messages.error(request, _unknown_form_message(kind, ("member", "assignment", "leave", "leave_delete")))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        # Every accepted form redirects, so a POST that gets here was rejected.
        status = 400
    context = {
        "member": member,
        "member_form": member_form,
        "assignment_form": assignment_form,
        "leave_form": leave_form,
        "assignments": selectors.assignment_history(membership_id=member.pk),
        # The first row of a history recorded for a member without an active_from starts on this placeholder day.
        "history_start": services.HISTORY_START,
        "leaves": LeavePeriod.objects.filter(membership=member).order_by("starts_on"),
    }
    return render(request, "goals/admin/person.html", context, status=status)


def _unknown_form_message(kind: str | None, kinds: tuple[str, ...]) -> str:
    """Return the error for a POST whose hidden `kind` field names none of the page's forms."""
    return _("The form %(kind)s is unknown; send one of: %(choices)s. Reload the page and try again.") % {
        "kind": kind or "—",
        "choices": ", ".join(kinds),
    }
