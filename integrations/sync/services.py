"""Writes of the CRM sync: connections (audited), queuing a run, and running one.

A run fetches the changes since the connection's cursor over HTTP, outside any
transaction. It then hands them to the shared record import core and stores the new
cursor in the same transaction, so the cursor never moves past data that was not committed. Sending
records twice changes nothing, so a run that fails after the import is simply repeated.
"""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from kombu.exceptions import OperationalError as BrokerOperationalError

from integrations.sync import importing
from integrations.sync.http import CrmError
from integrations.sync.models import (
    DEFAULT_BASE_URLS,
    CrmConnection,
    CrmProvider,
    CrmSyncRun,
    SyncStatus,
    SyncTrigger,
)
from integrations.sync.providers import hubspot, pipedrive
from spm.audit import audit_record
from spm.models import Organization, User

logger = logging.getLogger(__name__)

CONNECTION_CREATED = "crm_connection.created"
CONNECTION_CHANGED = "crm_connection.changed"
CONNECTION_DELETED = "crm_connection.deleted"
# A run still marked running after this long lost its worker; the next request may start anew.
STALE_RUN_AFTER = dt.timedelta(hours=1)
# Rejected records kept on a run for the page; the counts include all of them.
MAX_ERRORS_STORED = 200


def _source(connection: CrmConnection, sleep=None):
    if connection.provider == CrmProvider.HUBSPOT:
        return hubspot.HubSpotSource(
            hubspot.hubspot_client(base_url=connection.base_url, access_token=connection.access_token, sleep=sleep),
            time_zone=connection.organization.tzinfo,
        )
    return pipedrive.PipedriveSource(
        pipedrive.pipedrive_client(base_url=connection.base_url, access_token=connection.access_token, sleep=sleep)
    )


def _audit_values(connection: CrmConnection) -> dict:
    # The token itself never goes into the audit log; its masked form shows that it changed.
    return {
        "provider": connection.provider,
        "base_url": connection.base_url,
        "token": connection.token_masked,
        "pipeline_ids": list(connection.pipeline_ids),
        "is_enabled": connection.is_enabled,
    }


def crm_connection_create(
    *, organization: Organization, provider: str, access_token: str, base_url: str = "", actor: User | None
) -> CrmConnection:
    """Create the organization's connection to `provider` and fetch its pipelines for the picker.

    Raises CrmError (nothing is stored) when the CRM rejects the token or cannot be
    reached, so a typo shows at once. The scheduled sync starts once pipelines are chosen.
    """
    connection = CrmConnection(
        organization=organization,
        provider=provider,
        base_url=(base_url or DEFAULT_BASE_URLS[provider]).rstrip("/"),
        access_token=access_token.strip(),
        created_by=actor,
    )
    connection.available_pipelines = _pipelines_list(connection)

    with transaction.atomic():
        connection.save()
        audit_record(
            organization=organization,
            actor=actor,
            action=CONNECTION_CREATED,
            object_type="crm_connection",
            object_id=connection.pk,
            after=_audit_values(connection),
        )
    logger.info(
        "CRM connection created organization_id=%s connection_id=%s provider=%s",
        organization.pk,
        connection.pk,
        provider,
    )
    return connection


def crm_connection_update(
    *,
    connection: CrmConnection,
    actor: User | None,
    access_token: str = "",
    base_url: str | None = None,
    pipeline_ids: list[str] | None = None,
    is_enabled: bool | None = None,
) -> CrmConnection:
    """Change the token, API address, synced pipelines or schedule of a connection; audited.

    An empty `access_token` keeps the stored one. A new token or address is checked by
    fetching the pipelines again, and CrmError leaves the connection unchanged. Pipeline
    ids must be among the CRM's pipelines (ValueError otherwise).
    """
    before = _audit_values(connection)
    token_changed = bool(access_token.strip()) and access_token.strip() != connection.access_token
    if access_token.strip():
        connection.access_token = access_token.strip()
    if base_url is not None:
        connection.base_url = (base_url or DEFAULT_BASE_URLS[connection.provider]).rstrip("/")
    if access_token.strip() or connection.base_url != before["base_url"]:
        connection.available_pipelines = _pipelines_list(connection)
    if pipeline_ids is not None:
        known = {str(entry["id"]) for entry in connection.available_pipelines}
        unknown = [pipeline_id for pipeline_id in pipeline_ids if str(pipeline_id) not in known]
        if unknown:
            raise ValueError(
                gettext("Pipeline %(id)s is not a pipeline of this CRM; reload the pipelines and choose again.")
                % {"id": unknown[0]}
            )
        connection.pipeline_ids = [str(pipeline_id) for pipeline_id in pipeline_ids]
    if is_enabled is not None:
        connection.is_enabled = is_enabled
    after = _audit_values(connection)
    # Nothing changed: no write and no audit entry.
    if after == before and not token_changed:
        return connection
    # A new token may end in the same four characters as the old one; the entry still names it.
    changed = {key for key in after if after[key] != before[key]} | ({"token"} if token_changed else set())

    with transaction.atomic():
        connection.save()
        audit_record(
            organization=connection.organization_id,
            actor=actor,
            action=CONNECTION_CHANGED,
            object_type="crm_connection",
            object_id=connection.pk,
            before={key: before[key] for key in sorted(changed)},
            after={key: after[key] for key in sorted(changed)},
        )
    logger.info("CRM connection changed organization_id=%s connection_id=%s", connection.organization_id, connection.pk)
    return connection


def crm_pipelines_refresh(*, connection: CrmConnection) -> CrmConnection:
    """Fetch the CRM's pipelines again for the picker; raises CrmError when the CRM refuses."""
    connection.available_pipelines = _pipelines_list(connection)
    connection.save(update_fields=["available_pipelines", "updated_at"])
    return connection


def _pipelines_list(connection: CrmConnection) -> list[dict]:
    return [{"id": pipeline.external_id, "label": pipeline.name} for pipeline in _source(connection).pipelines_fetch()]


def crm_connection_delete(*, connection: CrmConnection, actor: User | None) -> None:
    """Delete the connection and its run history; synced deals stay, because KPIs were computed from them."""
    with transaction.atomic():
        audit_record(
            organization=connection.organization_id,
            actor=actor,
            action=CONNECTION_DELETED,
            object_type="crm_connection",
            object_id=connection.pk,
            before=_audit_values(connection),
        )
        connection.delete()
    logger.info("CRM connection deleted organization_id=%s connection_id=%s", connection.organization_id, connection.pk)


def _busy_filter(now: dt.datetime) -> Q:
    return Q(status__in=(SyncStatus.QUEUED, SyncStatus.RUNNING), last_run_at__gte=now - STALE_RUN_AFTER)


def crm_sync_request(*, connection: CrmConnection, trigger: str, actor: User | None = None) -> CrmSyncRun | None:
    """Queue a run of the connection and send its task after commit; None when one is already queued or running.

    The conditional update on the connection's status is the lock: two requests at the
    same moment (a click and the schedule) queue one run. A run that has been busy for
    longer than STALE_RUN_AFTER lost its worker and no longer blocks.
    """
    from integrations.sync.tasks import crm_sync_run as crm_sync_run_task

    now = timezone.now()
    with transaction.atomic():
        claimed = (
            CrmConnection.objects.filter(pk=connection.pk)
            .exclude(_busy_filter(now))
            .update(status=SyncStatus.QUEUED, last_run_at=now)
        )
        # Another run is queued or running: the click or tick has nothing to add.
        if not claimed:
            return None
        run = CrmSyncRun.objects.create(
            organization_id=connection.organization_id,
            connection=connection,
            trigger=trigger,
            requested_by=actor,
            is_backfill=not connection.is_backfilled,
            cursor_before=dict(connection.cursor),
        )
        organization_id, run_id = connection.organization_id, run.pk

        def task_send() -> None:
            try:
                crm_sync_run_task.delay(organization_id=organization_id, run_id=run_id)
            except BrokerOperationalError:
                message = gettext("The task queue is not reachable; the sync was not started. Try again later.")
                CrmSyncRun.objects.filter(pk=run_id).update(
                    status=SyncStatus.FAILED, message=message, finished_at=timezone.now()
                )
                CrmConnection.objects.filter(pk=connection.pk).update(status=SyncStatus.FAILED, last_error=message)
                logger.warning(
                    "CRM sync not queued, broker unreachable organization_id=%s run_id=%s", organization_id, run_id
                )

        transaction.on_commit(task_send)
    logger.info(
        "CRM sync queued organization_id=%s connection_id=%s run_id=%s trigger=%s",
        organization_id,
        connection.pk,
        run_id,
        trigger,
    )
    return run


def crm_sync_run(*, run: CrmSyncRun, sleep=None) -> CrmSyncRun:
    """Fetch the connection's changes since its cursor and import them; record counts, errors and the new cursor.

    The first run (no deal cursor) reads every deal with its full stage history. A CRM
    error (bad token, rate limit that does not clear, unreachable host) fails the run with
    its message and keeps the cursor. `sleep` replaces time.sleep for waits after a 429.
    """
    try:
        return _crm_sync_execute(run=run, sleep=sleep)
    except Exception:
        # A bug or a lost database connection: the run must not stay "running" for an hour.
        logger.exception("CRM sync crashed organization_id=%s run_id=%s", run.organization_id, run.pk)
        _run_fail(
            run,
            run.connection,
            gettext("The sync stopped with an internal error; the worker log has the details."),
            request_count=run.request_count,
        )
        raise


def _crm_sync_execute(*, run: CrmSyncRun, sleep) -> CrmSyncRun:
    from pipelines.services_records import RecordsSourceError, records_import

    connection = run.connection
    started_at = timezone.now()
    CrmSyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.RUNNING, started_at=started_at)
    CrmConnection.objects.filter(pk=connection.pk).update(status=SyncStatus.RUNNING, last_run_at=started_at)
    run.status, run.started_at = SyncStatus.RUNNING, started_at
    logger.info(
        "CRM sync started organization_id=%s connection_id=%s run_id=%s backfill=%s",
        connection.organization_id,
        connection.pk,
        run.pk,
        run.is_backfill,
    )

    source = _source(connection, sleep=sleep)
    try:
        if not connection.pipeline_ids:
            raise CrmError(gettext("No pipeline is chosen for this connection; choose the pipelines to sync."))
        fetch = hubspot.changes_fetch if connection.provider == CrmProvider.HUBSPOT else pipedrive.changes_fetch
        changes = fetch(
            source, cursor=dict(connection.cursor), pipeline_ids=set(connection.pipeline_ids), started_at=started_at
        )
    except CrmError as error:
        return _run_fail(run, connection, error.message, request_count=source.client.request_count)

    records, newly_deleted = importing.records_build(
        provider=connection.provider, changes=changes, organization=connection.organization
    )
    try:
        with transaction.atomic():
            result = records_import(
                organization=connection.organization,
                source=connection.provider,
                label=f"sync:{connection.provider}",
                **records,
            )
            CrmConnection.objects.filter(pk=connection.pk).update(
                cursor=changes.cursor,
                status=SyncStatus.SUCCEEDED,
                last_success_at=timezone.now(),
                last_error="",
            )
    except RecordsSourceError as error:
        return _run_fail(run, connection, str(error), request_count=changes.request_count)

    run.counts = _counts(result, newly_deleted)
    run.errors = _errors(result)[:MAX_ERRORS_STORED]
    run.warnings = _warnings(result)[:MAX_ERRORS_STORED]
    run.cursor_after = changes.cursor
    run.request_count = changes.request_count
    run.status = SyncStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["counts", "errors", "warnings", "cursor_after", "request_count", "status", "finished_at"])
    connection.cursor = changes.cursor
    logger.info(
        "CRM sync finished organization_id=%s connection_id=%s run_id=%s requests=%s deals_created=%s deals_updated=%s "
        "deals_unchanged=%s deals_deleted=%s rejected=%s",
        connection.organization_id,
        connection.pk,
        run.pk,
        run.request_count,
        run.counts["deals"]["created"],
        run.counts["deals"]["updated"],
        run.counts["deals"]["unchanged"],
        run.counts["deals"]["deleted"],
        len(run.errors),
    )
    return run


def _run_fail(run: CrmSyncRun, connection: CrmConnection, message: str, *, request_count: int) -> CrmSyncRun:
    finished_at = timezone.now()
    run.status, run.message, run.finished_at, run.request_count = SyncStatus.FAILED, message, finished_at, request_count
    run.save(update_fields=["status", "message", "finished_at", "request_count"])
    CrmConnection.objects.filter(pk=connection.pk).update(status=SyncStatus.FAILED, last_error=message)
    logger.warning(
        "CRM sync failed organization_id=%s connection_id=%s run_id=%s requests=%s",
        connection.organization_id,
        connection.pk,
        run.pk,
        request_count,
    )
    return run


def _counts(result, newly_deleted: int) -> dict[str, dict[str, int]]:
    """Return the core's counts per entity; deals marked deleted move from updated to deleted."""
    counts = {}
    for entity in ("deals", "stage_changes", "activities", "people", "pipelines"):
        entity_counts = result.counts[entity].as_dict()
        if entity == "deals":
            entity_counts["updated"] -= newly_deleted
            entity_counts["deleted"] += newly_deleted
        counts[entity] = entity_counts
    return counts


def _errors(result) -> list[dict]:
    """Return the rejected records for the page, without the stage changes of deals that were rejected themselves.

    The core rejects those stage changes because their deal is unknown, so listing them
    would repeat one problem once per stage the deal passed through.
    """
    rejected_deals = {error.external_id for error in result.record_errors if error.entity == "deals"}
    errors = [
        {
            "entity": error.entity,
            "external_id": error.external_id,
            "field": error.field,
            # A message id, so the run's page shows the reason in the reader's language.
            "reason": error.reason.as_json(),
        }
        for error in result.record_errors
        if not (error.entity == "stage_changes" and error.external_id in rejected_deals)
    ]
    return errors


def _warnings(result) -> list[dict]:
    """Return the values of written records that the import did not apply, such as an existing account's name."""
    return [
        {
            "entity": warning.entity,
            "external_id": warning.external_id,
            "field": warning.field,
            "value": warning.value,
            "reason": warning.reason.as_json(),
        }
        for warning in result.record_warnings
    ]


def crm_sync_schedule_all() -> int:
    """Queue a run for every enabled connection with pipelines chosen, across organizations; return how many."""
    from django_scopes import scopes_disabled

    queued = 0
    # The scheduler reads every organization's connections; each run then works inside its tenant's scope.
    with scopes_disabled():
        connections = list(
            CrmConnection.objects.filter(is_enabled=True).exclude(pipeline_ids=[]).select_related("organization")
        )
        for connection in connections:
            if crm_sync_request(connection=connection, trigger=SyncTrigger.SCHEDULE) is not None:
                queued += 1
    return queued
