"""The audit log page of an organization: filter and export (admins only)."""

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from spm import audit
from spm.audit_display import (
    OBJECT_TYPES_WITH_NAME_IDS,
    audit_entries_display,
    audit_json,
)
from spm.date_limits import FilterDateField
from spm.exports import Column, Table, csv_response, xlsx_response
from spm.models import Membership
from spm.security import admin_required

ROWS_PER_PAGE = 50
# An export is capped so one request cannot stream an unbounded table; narrow the filter for more.
MAX_EXPORT_ROWS = 100_000


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(label=_("Action"), required=False)
    actor = forms.TypedChoiceField(label=_("Actor"), required=False, coerce=int, empty_value=None)
    created_from = FilterDateField(label=_("From"), required=False)
    created_to = FilterDateField(label=pgettext_lazy("end of a date range", "To"), required=False)
    object_type = forms.CharField(label=_("Object type"), required=False, max_length=64)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=64)

    def __init__(self, *args, actions: list[str], members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", _("Any action"))] + [
            (action, audit.ACTION_LABELS.get(action, action)) for action in actions
        ]
        self.fields["actor"].choices = [("", _("Anyone"))] + [(member.user_id, member.display_name) for member in members]
        # The template renders plain `{{ field }}`, so Bootstrap's classes go on the widgets.
        for field in self.fields.values():
            css_class = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs["class"] = css_class

    def clean(self):
        cleaned = super().clean()
        object_id = cleaned.get("object_id") or ""
        is_number = object_id.isascii() and object_id.isdigit()
        if object_id and not is_number and cleaned.get("object_type") not in OBJECT_TYPES_WITH_NAME_IDS:
            self.add_error(
                "object_id",
                _("Invalid object id %(value)r; enter a number, or set the object type to import or exchange_rate.")
                % {"value": object_id},
            )
        start, end = cleaned.get("created_from"), cleaned.get("created_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date must not be after the end date."))
        return cleaned


def _export_rows(entries) -> list[list]:
    header = [
        str(_("Time")),
        str(_("Action")),
        str(_("Actor")),
        str(_("Object type")),
        str(_("Object id")),
        str(_("Before")),
        str(_("After")),
    ]
    rows = [header]
    for entry in entries[:MAX_EXPORT_ROWS]:
        rows.append(
            [
                entry.created_at.isoformat(),
                entry.action,
                entry.actor.email if entry.actor else "",
                entry.object_type,
                entry.object_id,
                audit_json(entry.before),
                audit_json(entry.after),
            ]
        )
    return rows


@admin_required
def audit_log(request, org_slug):
    organization = request.organization
    members = Membership.objects.select_related("user").order_by("user__email")
    form = AuditFilterForm(request.GET, actions=audit.audit_actions_present(), members=members)
    is_valid = form.is_valid()
    filters = form.cleaned_data if is_valid else {}
    entries = audit.audit_log_filtered(
        action=filters.get("action") or "",
        actor_id=filters.get("actor"),
        created_from=filters.get("created_from"),
        created_to=filters.get("created_to"),
        object_type=filters.get("object_type") or "",
        object_id=filters.get("object_id") or "",
        time_zone=organization.tzinfo,
    )

    export_format = request.GET.get("export")
    if export_format in ("csv", "xlsx") and is_valid:
        audit.audit_record(
            organization=organization,
            actor=request.user,
            action=audit.AUDIT_EXPORTED,
            object_type="audit",
            after={"format": export_format, "filters": {key: str(value) for key, value in filters.items() if value}},
        )
        return _tabular_response(_export_rows(entries), file_name=f"audit-{organization.slug}", file_format=export_format)

    page = Paginator(entries, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    context = {
        "form": form,
        "page": page,
        "rows": audit_entries_display(page, organization=organization),
        "query": query.urlencode(),
    }
    status = 200 if is_valid else 400
    return render(request, "spm/audit_log.html", context, status=status)


def _tabular_response(rows: list[list], *, file_name: str, file_format: str):
    """Return `rows` (header first) as a CSV or XLSX download; spm.exports escapes formula-like text."""
    header, *body = rows
    table = Table(name=file_name, columns=[Column(str(title)) for title in header], rows=body)
    return xlsx_response(table) if file_format == "xlsx" else csv_response(table)
