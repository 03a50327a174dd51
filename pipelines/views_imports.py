"""Import pages for admins: upload, column mapping, dry run, the import with its progress, rejected rows, rates.

Every view returns 404 to managers and reps, like any page they may not see, and the
organization scope makes runs of other organizations 404 as well.
"""

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from dashboards.templatetags.spm_format import format_number
from pipelines.forms import ExchangeRateUploadForm, ImportMappingForm, ImportUploadForm
from pipelines.importers.base import ImportSourceError, RowError
from pipelines.importers.generic import generic_table_find, mapping_suggest
from pipelines.models import ImportRun, ImportRunStatus
from pipelines.services_imports import (
    ImportUploadError,
    _safe_name,
    import_count_rows,
    import_directory,
    import_mapping_get,
    import_mapping_save,
    import_people_created,
    import_rejected_rows,
    import_rejected_table,
    import_run_create,
    import_run_enqueue,
    import_run_message,
    preview_rows_for_display,
    rejected_rows_table,
    source_needs_mapping,
)
from pipelines.services_rates import exchange_rates_import
from pipelines.upload_limits import upload_too_large_message
from spm.exports import csv_response
from spm.security import admin_required

RUNS_LISTED = 50
# Rejected rows listed on the run's page and for the last rate upload; the CSV download has all of them.
REJECTED_SHOWN = 20
# The session keeps the rejected rows of the admin's last rate upload for the imports page and its CSV.
RATES_REJECTED_SESSION_KEY = "exchange_rates_rejected"
# Maximum rejected rate rows kept in the session: about 27 years of daily rates, because a
# rate file has one row per day. The page states how many rows the CSV leaves out.
RATES_REJECTED_STORED = 10_000


def _run_get(pk: int) -> ImportRun:
    # The organization scope limits the lookup to this organization's runs.
    return get_object_or_404(ImportRun.objects.select_related("created_by"), pk=pk)


@admin_required
@require_http_methods(["GET", "POST"])
def import_list(request, org_slug):
    form = ImportUploadForm()
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                run = import_run_create(
                    organization=request.organization,
                    source=form.cleaned_data["source"],
                    files=form.cleaned_data["files"],
                    actor=request.user,
                    language=request.LANGUAGE_CODE,
                    currency=form.cleaned_data["currency"],
                    date_order=form.cleaned_data["date_order"],
                )
            except ImportUploadError as error:
                form.add_error("files", str(error))
            else:
                if source_needs_mapping(run.source):
                    return redirect("import_mapping", org_slug=org_slug, pk=run.pk)
                import_run_enqueue(run=run, dry_run=True, actor=request.user)
                return redirect("import_detail", org_slug=org_slug, pk=run.pk)
    runs = ImportRun.objects.select_related("created_by")[:RUNS_LISTED]
    context = {"form": form, "rates_form": ExchangeRateUploadForm(), "runs": runs}
    rates_rejected = _rates_rejected_get(request)
    if rates_rejected is not None:
        rows = rates_rejected["rows"]
        context["rates_rejected"] = {
            "file": rates_rejected["file"],
            "count": rates_rejected["count"],
            "shown": [RowError.from_json(row) for row in rows[:REJECTED_SHOWN]],
            "stored": len(rows),
        }
    return render(request, "pipelines/imports/import_list.html", context, status=400 if form.errors else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def import_mapping(request, org_slug, pk):
    run = _run_get(pk)
    if not source_needs_mapping(run.source) or run.status not in (ImportRunStatus.UPLOADED, ImportRunStatus.PREVIEWED, ImportRunStatus.FAILED):
        return redirect("import_detail", org_slug=org_slug, pk=run.pk)
    try:
        table = generic_table_find(import_directory(run))
    except ImportSourceError as error:
        return render(request, "pipelines/imports/import_mapping.html", {"run": run, "error": str(error)}, status=400)

    saved = import_mapping_get(organization=request.organization, source=run.source)
    # A saved mapping wins; fields it leaves open get the column that carries their name.
    initial = {
        field: column for field, column in mapping_suggest(table.header).items() if column not in saved.values()
    }
    initial.update({field: column for field, column in saved.items() if column in table.header})
    form = ImportMappingForm(request.POST or None, columns=table.header, initial=initial)
    if request.method == "POST" and form.is_valid():
        mapping = form.mapping()
        import_mapping_save(organization=request.organization, source=run.source, columns=mapping, actor=request.user)
        run.options = {**run.options, "mapping": mapping}
        run.save(update_fields=["options"])
        import_run_enqueue(run=run, dry_run=True, actor=request.user)
        return redirect("import_detail", org_slug=org_slug, pk=run.pk)
    sample = [[row.get(column, "") for column in table.header] for _line, row in table.rows[:3]]
    context = {"run": run, "form": form, "columns": table.header, "sample": sample}
    return render(request, "pipelines/imports/import_mapping.html", context, status=400 if form.errors else 200)


@admin_required
@require_http_methods(["GET", "POST"])
def import_detail(request, org_slug, pk):
    run = _run_get(pk)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "preview":
            import_run_enqueue(run=run, dry_run=True, actor=request.user)
        elif action == "start":
            import_run_enqueue(run=run, dry_run=False, actor=request.user)
        return redirect("import_detail", org_slug=org_slug, pk=run.pk)
    return _progress_render(request, run)


@admin_required
def import_progress(request, org_slug, pk):
    """Render the run's status, progress bar and outcome: the whole page, or only its fragment for htmx polling."""
    return _progress_render(request, _run_get(pk))


def _progress_render(request, run: ImportRun):
    template_name = "pipelines/imports/import_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        template_name += "#import-status"
    summary = run.summary or {}
    people_created = import_people_created(run)
    context = {
        "run": run,
        "run_message": import_run_message(run),
        "preview": preview_rows_for_display(run),
        "rejected_shown": import_rejected_rows(run, limit=REJECTED_SHOWN),
        "count_rows": import_count_rows(run),
        "people_created": people_created,
        "people_created_count": summary.get("people_created_count", 0),
        "people_created_hidden": summary.get("people_created_count", 0) - len(people_created),
    }
    response = render(request, template_name, context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@admin_required
def import_rejected_download(request, org_slug, pk):
    run = _run_get(pk)
    return csv_response(import_rejected_table(run))


@admin_required
@require_POST
def exchange_rates_upload(request, org_slug):
    # The page shows the rejected rows of the latest upload only, so an upload that fails
    # as a whole must not leave the rows of an earlier one in view.
    request.session.pop(RATES_REJECTED_SESSION_KEY, None)
    form = ExchangeRateUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("file", []):
            messages.error(request, error)
        return redirect("import_list", org_slug=org_slug)
    upload = form.cleaned_data["file"]
    if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
        messages.error(request, upload_too_large_message(settings.IMPORT_MAX_UPLOAD_BYTES))
        return redirect("import_list", org_slug=org_slug)

    # The file is only read during this request, so it goes to a temporary directory that is
    # deleted afterwards. A directory of its own keeps the uploader's file name, which messages show.
    with tempfile.TemporaryDirectory(prefix="spm-rates-") as directory:
        path = Path(directory) / _safe_name(upload.name)
        with open(path, "wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        try:
            outcome = exchange_rates_import(
                organization=request.organization,
                path=path,
                actor=request.user,
                date_order=form.cleaned_data["date_order"],
            )
        except ImportSourceError as error:
            messages.error(request, str(error))
            return redirect("import_list", org_slug=org_slug)
    messages.success(request, _rates_summary(outcome))
    errors = outcome["errors"]
    if errors:
        # Stored as message ids, so the page and the CSV show the reasons in the reader's language.
        request.session[RATES_REJECTED_SESSION_KEY] = {
            "organization": request.organization.pk,
            "file": path.name,
            "count": len(errors),
            "rows": [error.as_json() for error in errors[:RATES_REJECTED_STORED]],
        }
    return redirect(reverse("import_list", kwargs={"org_slug": org_slug}))


def _rates_rejected_get(request) -> dict | None:
    """Return the rejected rows of the last rate upload in this organization from the session, or None."""
    stored = request.session.get(RATES_REJECTED_SESSION_KEY)
    if not stored or stored.get("organization") != request.organization.pk:
        return None
    return stored


@admin_required
def exchange_rates_rejected_download(request, org_slug):
    """Download the rejected rows of the last rate upload as CSV; without one the CSV has only its header row."""
    stored = _rates_rejected_get(request) or {"rows": []}
    errors = [RowError.from_json(row) for row in stored["rows"]]
    return csv_response(rejected_rows_table(errors, name=gettext("rejected-rate-rows")))


def _rates_summary(outcome: dict) -> str:
    """Return the message after a rate upload, each count with its own singular or plural form."""
    created, updated, unchanged = outcome["created"], outcome["updated"], outcome["unchanged"]
    rejected, deals = len(outcome["errors"]), outcome["deals_recomputed"]
    parts = {
        "created": ngettext("%(count)s new", "%(count)s new", created) % {"count": format_number(created)},
        "updated": ngettext("%(count)s changed", "%(count)s changed", updated) % {"count": format_number(updated)},
        "unchanged": ngettext("%(count)s unchanged", "%(count)s unchanged", unchanged) % {"count": format_number(unchanged)},
        "rejected": ngettext("%(count)s row rejected", "%(count)s rows rejected", rejected) % {"count": format_number(rejected)},
        "deals": ngettext("%(count)s deal converted again", "%(count)s deals converted again", deals)
        % {"count": format_number(deals)},
    }
    return gettext("Exchange rates: %(created)s, %(updated)s, %(unchanged)s, %(rejected)s; %(deals)s.") % parts
