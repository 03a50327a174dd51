"""Reads for the integrations page; they run inside the organization's scope."""

from django.db.models import OuterRef, Subquery

from integrations.sync.models import CrmConnection, CrmSyncRun

RUNS_LISTED = 30


def crm_connections_with_last_run() -> list[CrmConnection]:
    """Return the organization's connections, each with `last_run` (its newest run, or None), in two queries."""
    newest = CrmSyncRun.objects.filter(connection=OuterRef("pk")).order_by("-created_at", "-id").values("pk")[:1]
    connections = list(CrmConnection.objects.annotate(last_run_id=Subquery(newest)))
    runs = CrmSyncRun.objects.in_bulk([connection.last_run_id for connection in connections if connection.last_run_id])
    for connection in connections:
        connection.last_run = runs.get(connection.last_run_id)
    return connections


def crm_sync_runs_recent(*, connection: CrmConnection) -> list[CrmSyncRun]:
    return list(CrmSyncRun.objects.filter(connection=connection).select_related("requested_by")[:RUNS_LISTED])
