"""The integrations page for admins: CRM connections, their sync status, "sync now" and run history.

Every view returns 404 to managers and reps, like any page they may not see, and the
organization scope makes connections and runs of other organizations 404 as well.
"""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from integrations.sync import selectors, services
from integrations.sync.forms import CrmConnectionCreateForm, CrmConnectionSettingsForm
from integrations.sync.http import CrmError
from integrations.sync.models import CrmConnection, CrmSyncRun, SyncTrigger
from spm.http import lookup_then_post_only
from spm.security import admin_required


def _connection_get(pk: int) -> CrmConnection:
    # The organization scope limits the lookup to this organization's connections.
    return get_object_or_404(CrmConnection, pk=pk)


def _connection_lookup(request, pk):
    return {"connection": _connection_get(pk)}


@admin_required
@require_http_methods(["GET", "POST"])
def integration_list(request, org_slug):
    """List the connections with status, last run, counts and errors; POST adds a connection."""
    connections = selectors.crm_connections_with_last_run()
    taken = {connection.provider for connection in connections}
    form = CrmConnectionCreateForm(request.POST or None, taken=taken)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.crm_connection_create(
                organization=request.organization,
                provider=form.cleaned_data["provider"],
                access_token=form.cleaned_data["access_token"],
                base_url=form.cleaned_data["base_url"],
                actor=request.user,
            )
        except CrmError as error:
            form.add_error("access_token" if error.status in (401, 403) else None, error.message)
        else:
            messages.success(request, gettext("Connected. Choose the pipelines to sync."))
            return redirect("integration_detail", org_slug=org_slug, pk=connection.pk)

    template_name = "sync/integration_list.html"
    if request.htmx and not request.htmx.history_restore_request and request.method == "GET":
        template_name += "#connection-table"
    context = {
        "connections": connections,
        "form": form,
        # While a run is queued or running, the table reloads itself until it has finished.
        "any_busy": any(connection.is_busy for connection in connections),
    }
    response = render(request, template_name, context, status=400 if form.errors else 200)
    patch_vary_headers(response, ("HX-Request",))
    return response


@admin_required
@require_http_methods(["GET", "POST"])
def integration_detail(request, org_slug, pk):
    """Show one connection's settings, cursor and run history; POST saves its settings."""
    connection = _connection_get(pk)
    form = CrmConnectionSettingsForm(request.POST or None, connection=connection)
    if request.method == "POST" and form.is_valid():
        try:
            services.crm_connection_update(
                connection=connection,
                actor=request.user,
                access_token=form.cleaned_data["access_token"],
                base_url=form.cleaned_data["base_url"],
                pipeline_ids=form.cleaned_data["pipeline_ids"],
                is_enabled=form.cleaned_data["is_enabled"],
            )
        except CrmError as error:
            form.add_error("access_token" if error.status in (401, 403) else None, error.message)
        except ValueError as error:
            form.add_error("pipeline_ids", str(error))
        else:
            messages.success(request, gettext("Settings saved."))
            return redirect("integration_detail", org_slug=org_slug, pk=connection.pk)
        connection.refresh_from_db()

    template_name = "sync/integration_detail.html"
    if request.htmx and not request.htmx.history_restore_request and request.method == "GET":
        template_name += "#sync-status"
    context = {"connection": connection, "form": form, "runs": selectors.crm_sync_runs_recent(connection=connection)}
    response = render(request, template_name, context, status=400 if form.errors else 200)
    patch_vary_headers(response, ("HX-Request",))
    return response


@admin_required
@lookup_then_post_only(_connection_lookup)
def integration_sync(request, org_slug, connection):
    """Queue a sync run now ("sync now")."""
    run = services.crm_sync_request(connection=connection, trigger=SyncTrigger.MANUAL, actor=request.user)
    if run is None:
        messages.info(request, gettext("A sync of this connection is already queued or running."))
    else:
        messages.success(request, gettext("Sync queued. This page shows its result when it has finished."))
    return redirect("integration_detail", org_slug=org_slug, pk=connection.pk)


@admin_required
@lookup_then_post_only(_connection_lookup)
def integration_pipelines_refresh(request, org_slug, connection):
    try:
        services.crm_pipelines_refresh(connection=connection)
    except CrmError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, gettext("Pipelines reloaded from the CRM."))
    return redirect("integration_detail", org_slug=org_slug, pk=connection.pk)


@admin_required
@lookup_then_post_only(_connection_lookup)
def integration_delete(request, org_slug, connection):
    services.crm_connection_delete(connection=connection, actor=request.user)
    messages.success(request, gettext("Connection removed. Synced deals stay."))
    return redirect("integration_list", org_slug=org_slug)


@admin_required
def integration_run(request, org_slug, pk, run_pk):
    """Show one run: counts per entity, the cursor before and after, and every rejected record."""
    connection = _connection_get(pk)
    run = get_object_or_404(CrmSyncRun.objects.select_related("requested_by"), pk=run_pk, connection=connection)
    return render(request, "sync/integration_run.html", {"connection": connection, "run": run})
