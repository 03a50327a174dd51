"""Writes on deals and their stage history, and the entry point of CRM imports."""

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_noop
from kombu.exceptions import OperationalError as BrokerOperationalError

from integrations.webhooks.events import (
    deal_close_transitions_watch,
    deal_stage_changed_emit,
    import_finished_emit,
)
from pipelines.models import Deal, DealStageChange, DealStatus, Stage, StageKind
from spm.currencies import is_currency_code
from spm.models import AuditLog, Organization, User

logger = logging.getLogger(__name__)

CLOSED_KINDS = (StageKind.WON, StageKind.LOST)
# Keeps `id IN (...)` lists well below SQLite's limit of bound parameters per statement.
REFRESH_BATCH_SIZE = 900

# The tables an import writes for each counted entity. Stages and pipelines are not
# counted; a deal import may add both.
IMPORT_TABLES = {
    "people": ("spm_user", "spm_membership"),
    "teams": ("goals_team",),
    "territories": ("goals_territory",),
    "accounts": ("pipelines_account",),
    "products": ("pipelines_product",),
    "deals": ("pipelines_deal", "pipelines_stage", "pipelines_pipeline"),
    "stage_changes": ("pipelines_dealstagechange",),
    "activities": ("pipelines_activity",),
}
# An import that changes at least this many rows of an entity has its tables analyzed
# after commit. Autovacuum analyzes a table only once about a tenth of its rows changed,
# so 100,000 deals imported into a table of 1,000,000 stay unknown to the planner. In the
# benchmark, statistics from before an import (pipelines_stage counted 6 rows instead of
# 62) made the deal list's query take 24 ms instead of 0.6 ms per page.
STATISTICS_REFRESH_ROWS = 1_000


def deal_close_state_refresh(*, organization: Organization, deal_ids: Iterable[int] | None = None) -> int:
    """Derive `stage`, `status` and `closed_at` of deals from their stage history, set-based.

    For a deal with history, the current stage is the `to_stage` of its latest move (by
    `changed_at`, with ties broken by `id`, the insertion order), and `status` is that
    stage's kind. `closed_at` is the time of the latest move into a won or lost stage when
    the current stage is won or lost, else None. So a deal reopened after closing is open,
    and one closed again counts at its latest close. A deal without history keeps its stage,
    takes its status from that stage and loses `closed_at` only when the stage is open.

    `deal_ids=None` refreshes every deal of the organization, and ids of other
    organizations are ignored. Runs four UPDATE statements per batch of 900 ids and
    returns the number of deals refreshed.
    """
    # Deleted deals too: the CRM may still report moves of a deal before it was deleted.
    deals = Deal.all_objects.filter(organization=organization)
    if deal_ids is None:
        batches = [None]
    else:
        ids = sorted(set(deal_ids))
        batches = [ids[start : start + REFRESH_BATCH_SIZE] for start in range(0, len(ids), REFRESH_BATCH_SIZE)]
    # Notes the statuses before the update, to announce deals that became won or lost to webhooks after commit.
    deal_close_transitions_watch(organization_id=organization.pk, deal_ids=None if deal_ids is None else ids)

    # The outer query already limits deals to the organization, so the correlated subquery
    # filters on the deal alone. With an organization filter, SQLite walks the
    # (organization, changed_at) index to satisfy ORDER BY instead of using the deal index.
    # Measured with SQLite 3.40 on the Maven data set (15,511 changes): 1.6 s per batch of
    # 900 deals with the filter, under 0.1 s without.
    history = DealStageChange._base_manager.filter(deal_id=OuterRef("pk"))
    latest_stage = history.order_by("-changed_at", "-id").values("to_stage_id")[:1]
    latest_close = history.filter(to_stage__kind__in=CLOSED_KINDS).order_by("-changed_at", "-id").values("changed_at")[:1]
    stage_kind = Stage.objects.filter(pk=OuterRef("stage_id")).values("kind")[:1]

    total = 0
    for batch in batches:
        selected = deals if batch is None else deals.filter(pk__in=batch)
        selected.filter(Exists(history)).update(stage_id=Subquery(latest_stage))
        total += selected.update(status=Subquery(stage_kind))
        selected.filter(status=DealStatus.OPEN).update(closed_at=None)
        selected.filter(Exists(history), status__in=CLOSED_KINDS).update(closed_at=Subquery(latest_close))
    return total


def deal_move_stage(
    *, deal: Deal, to_stage: Stage, changed_at: dt.datetime, actor: User | None = None
) -> DealStageChange | None:
    """Append a move of `deal` into `to_stage` at `changed_at` and re-derive its status and close time.

    Moving backwards (to a lower order, or from won/lost back to an open stage) is a
    normal move: the history keeps every earlier move. Raises ValidationError when the
    stage belongs to another pipeline or `changed_at` is naive or earlier than the deal's
    latest move. Returns None without writing when the deal is already in `to_stage`.
    Writes an audit log entry and, after commit, schedules the recompute of the KPI rows the move touches.
    """
    with transaction.atomic():
        # The row lock serialises concurrent moves of one deal, so the second reads the first one's history.
        current = Deal.objects.select_for_update().only("pipeline", "stage", "status", "closed_at").get(pk=deal.pk)
        before = {"stage_id": current.stage_id, "status": current.status}

        if to_stage.pipeline_id != current.pipeline_id:
            raise ValidationError(
                gettext("Stage %(stage)s belongs to another pipeline than the deal.") % {"stage": to_stage}
            )
        if timezone.is_naive(changed_at):
            raise ValidationError(gettext("The time of a stage change needs a time zone."))
        latest_at = deal.stage_changes.order_by("-changed_at").values_list("changed_at", flat=True).first()
        if latest_at is not None and changed_at < latest_at:
            # The time matters too, because a move may come later on the same day. It is shown in the organization's time zone.
            latest_local = timezone.localtime(latest_at, deal.organization.tzinfo)
            raise ValidationError(
                gettext("A stage change cannot be earlier than the deal's latest stage change (%(latest)s).")
                % {"latest": date_format(latest_local, "SHORT_DATETIME_FORMAT")}
            )
        # Already there: a second move into the same stage would only add noise to the history.
        if to_stage.pk == current.stage_id:
            return None

        change = DealStageChange.objects.create(
            organization_id=deal.organization_id,
            deal=deal,
            from_stage_id=current.stage_id,
            to_stage=to_stage,
            changed_at=changed_at,
        )
        deal_close_state_refresh(organization=deal.organization, deal_ids=[deal.pk])
        # The refresh writes with update(), which leaves auto_now alone; API clients poll updated_at.
        Deal.objects.filter(pk=deal.pk).update(updated_at=timezone.now())
        deal.refresh_from_db(fields=["stage", "status", "closed_at", "updated_at"])
        AuditLog.objects.create(
            organization_id=deal.organization_id,
            actor=actor,
            action="deal.stage_moved",
            object_type="deal",
            object_id=str(deal.pk),
            before=before,
            after={"stage_id": deal.stage_id, "status": deal.status},
        )
        deal_stage_changed_emit(change=change)
        # KPIs can change from the move on, and from the close it may undo.
        since = min(changed_at, current.closed_at) if current.closed_at is not None else changed_at
        kpi_recompute_deals_schedule(organization_id=deal.organization_id, deal_ids=[deal.pk], since=since)

    logger.info(
        "Deal stage moved organization_id=%s deal_id=%s to_stage_id=%s status=%s",
        deal.organization_id,
        deal.pk,
        to_stage.pk,
        deal.status,
    )
    return change


def kpi_recompute_schedule(*, organization_id: int) -> None:
    """Enqueue the organization's KPI recompute once the current transaction commits.

    When the broker is unreachable, the recompute is marked pending instead (see
    `kpi_recompute_defer`), because the change has committed and must not fail now.
    """
    from dashboards.tasks import kpi_snapshot_recompute_enqueue

    def enqueue() -> None:
        try:
            kpi_snapshot_recompute_enqueue(organization_id=organization_id)
        except BrokerOperationalError as error:
            kpi_recompute_defer(organization_id=organization_id, error=error)

    transaction.on_commit(enqueue)


def kpi_recompute_deals_schedule(*, organization_id: int, deal_ids: list[int], since: dt.datetime) -> None:
    """Enqueue the recompute of only the KPI rows that a change of `deal_ids` from `since` on touches, after commit.

    When the broker is unreachable, the organization's full recompute is marked pending instead.
    """
    from dashboards.tasks import kpi_snapshot_recompute_deals_enqueue

    def enqueue() -> None:
        try:
            kpi_snapshot_recompute_deals_enqueue(organization_id=organization_id, deal_ids=deal_ids, since=since)
        except BrokerOperationalError as error:
            kpi_recompute_defer(organization_id=organization_id, error=error)

    transaction.on_commit(enqueue)


def kpi_recompute_defer(*, organization_id: int, error: Exception) -> None:
    """Mark the organization's full KPI recompute as pending after its task could not be queued.

    The hourly task dashboards.tasks.kpi_snapshot_recompute_pending_schedule queues the
    recompute of marked organizations. The mark is the time of the latest deferral, and a
    full recompute clears it only if it is unchanged since the recompute began, so a
    deferral during a recompute stays pending. A request that defers is noted in
    spm.celery.recompute_deferred_organizations, so that the middleware warns its user.
    """
    from spm.celery import recompute_deferred_organizations

    Organization.objects.filter(pk=organization_id).update(kpi_recompute_deferred_at=timezone.now())
    deferred = recompute_deferred_organizations.get()
    if deferred is not None:
        deferred.add(organization_id)
    logger.error(
        "KPI recompute not queued because the broker is unreachable, marked pending organization_id=%s error=%s",
        organization_id,
        error,
    )


def table_statistics_refresh_schedule(result) -> None:
    """After commit, have a worker analyze the tables of the entities for which `result` counted many changed rows."""
    from pipelines.tasks import table_statistics_refresh

    tables = sorted(
        {
            table
            for entity, counts in result.counts.items()
            if counts.created + counts.updated + counts.deleted >= STATISTICS_REFRESH_ROWS
            for table in IMPORT_TABLES.get(entity, ())
        }
    )
    if not tables:
        return

    def enqueue() -> None:
        # The import has committed, and autovacuum analyzes the tables later anyway, so an
        # unreachable broker only costs the earlier statistics and must not fail the import.
        try:
            table_statistics_refresh.delay(tables=tables)
        except BrokerOperationalError as error:
            logger.warning("Table statistics refresh not queued because the broker is unreachable tables=%s error=%s", tables, error)

    transaction.on_commit(enqueue)


def crm_import(
    *,
    organization: Organization,
    source: str,
    path: Path,
    currency: str | None = None,
    today: dt.date | None = None,
    actor: User | None = None,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Import a CRM export folder into `organization` in one transaction and return an ImportResult.

    `options` are the importer's choices (`date_order`, the generic column `mapping`) and
    `progress(done, total)` receives row counts while it runs; see pipelines.importers.

    `currency` is the ISO code of the file's amounts (default: the organization's base
    currency). `today` is the date at which open deals are converted to the base
    currency (default: today in the organization's time zone). Rejected rows are listed
    in the result and the accepted rows are kept. An unexpected error rolls back every
    file of the run. Raises ImportSourceError for an unknown source, a missing file or
    column, or an invalid currency code. Writes an `import.finished` audit log entry
    and, when anything changed, schedules a KPI recompute after commit.
    """
    from pipelines.importers import IMPORTERS
    from pipelines.importers.base import ImportSourceError, Message

    importer = IMPORTERS.get(source)
    if importer is None:
        raise ImportSourceError(
            Message(
                gettext_noop("Unknown source %(source)s; choose one of: %(choices)s."),
                {"source": source, "choices": ", ".join(sorted(IMPORTERS))},
            )
        )
    currency = (currency or organization.currency).upper()
    if not is_currency_code(currency):
        raise ImportSourceError(
            Message(
                gettext_noop("Currency %(currency)s is not a three-letter ISO code such as EUR or USD."),
                {"currency": currency},
            )
        )
    if today is None:
        today = timezone.localdate(timezone=organization.tzinfo)
    started = time.monotonic()
    logger.info("Import started organization_id=%s source=%s", organization.pk, source)

    with transaction.atomic():
        result = importer(
            organization=organization, path=Path(path), currency=currency, today=today, options=options, progress=progress
        )
        result.duration_seconds = time.monotonic() - started
        AuditLog.objects.create(
            organization=organization,
            actor=actor,
            action="import.finished",
            object_type="import",
            object_id=source,
            after=result.as_dict(),
        )
        import_finished_emit(organization_id=organization.pk, summary=result.as_dict())
        # Nothing changed: the snapshots already match the data.
        if result.has_changes:
            # Scheduled first, so a single worker has fresh statistics for the recompute.
            table_statistics_refresh_schedule(result)
            kpi_recompute_schedule(organization_id=organization.pk)

    logger.info(
        "Import finished organization_id=%s source=%s deals_created=%s deals_updated=%s rejected_rows=%s seconds=%.2f",
        organization.pk,
        source,
        result.counts["deals"].created,
        result.counts["deals"].updated,
        len(result.errors),
        result.duration_seconds,
    )
    return result
