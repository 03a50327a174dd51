"""Entry points that other apps call to emit webhook events once their transaction commits.

Each function costs one query when no subscription wants its event, so the callers (stage
moves, imports, KPI recomputes) pay almost nothing in organizations without webhooks.
Event ids are derived from the change they announce (uuid5), so a change emitted twice
reaches each subscription once.
"""

import datetime as dt
import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from integrations.webhooks.models import WebhookEvent, WebhookSubscription

# deal.won and deal.lost are sent only for closes this recent; older ones come from backfills.
CLOSE_EVENT_MAX_AGE = dt.timedelta(days=7)
# Namespace of the event ids derived from changes; any fixed UUID works, it must just never change.
EVENT_NAMESPACE = uuid.UUID("1f6c1d1e-5a7b-4c39-9f0e-2b7a8d4e6c10")


def event_uuid(*parts) -> uuid.UUID:
    return uuid.uuid5(EVENT_NAMESPACE, "/".join(str(part) for part in parts))


def subscribed(*, organization_id: int, events: Iterable[str]) -> bool:
    """Return True when an active subscription of the organization wants any of `events`."""
    wanted = set(events)
    with scopes_disabled():
        lists = WebhookSubscription.objects.filter(organization_id=organization_id, is_active=True).values_list(
            "events", flat=True
        )
        return any(wanted & set(events_of_one) for events_of_one in lists)


def deal_data(deal) -> dict:
    """Return the "data" member describing a deal: ids, name, stage, status, amounts as decimal strings, times in UTC."""
    return {
        "deal": {
            "id": deal.pk,
            "source": deal.source,
            "external_id": deal.external_id,
            "name": deal.name,
            "status": deal.status,
            "stage": {"id": deal.stage_id, "name": deal.stage.name},
            "pipeline": {"id": deal.pipeline_id, "name": deal.pipeline.name},
            "amount": None if deal.amount is None else str(deal.amount),
            "currency": deal.currency,
            "base_amount": None if deal.base_amount is None else str(deal.base_amount),
            "closed_at": deal.closed_at,
            "lost_reason": deal.lost_reason,
            "owner": {"id": deal.owner_id, "external_id": deal.owner.external_id},
            "account": None if deal.account_id is None else {"id": deal.account_id, "name": deal.account.name},
        }
    }


def _deals_load(organization_id: int, deal_ids: Iterable[int]):
    from pipelines.models import Deal

    with scopes_disabled():
        return list(
            Deal.objects.filter(organization_id=organization_id, pk__in=list(deal_ids)).select_related(
                "stage", "pipeline", "owner", "account"
            )
        )


def deal_stage_changed_emit(*, change) -> None:
    """After commit, emit deal.stage_changed for one DealStageChange row."""
    organization_id = change.organization_id
    if not subscribed(organization_id=organization_id, events=[WebhookEvent.DEAL_STAGE_CHANGED]):
        return
    change_id, deal_id = change.pk, change.deal_id
    from_stage = None if change.from_stage_id is None else {"id": change.from_stage_id, "name": change.from_stage.name}
    to_stage = {"id": change.to_stage_id, "name": change.to_stage.name}
    changed_at = change.changed_at

    def emit():
        from integrations.webhooks.services import event_emit

        deals = _deals_load(organization_id, [deal_id])
        if not deals:
            return
        data = deal_data(deals[0])
        data["stage_change"] = {"id": change_id, "from_stage": from_stage, "to_stage": to_stage, "changed_at": changed_at}
        event_emit(
            organization_id=organization_id,
            event=WebhookEvent.DEAL_STAGE_CHANGED,
            payload=data,
            event_id=event_uuid(organization_id, "stage_change", change_id),
        )

    transaction.on_commit(emit)


def deal_stage_changes_emit(*, organization_id: int, changes) -> None:
    """After commit, emit deal.stage_changed for each recent stage change an import, sync or API batch appended.

    Like closes, only moves within the last CLOSE_EVENT_MAX_AGE count: a first sync or a
    history import appends years of moves, which import.finished announces instead.
    Implied moves (derived from created and closed dates) are not news either.
    """
    cutoff = timezone.now() - CLOSE_EVENT_MAX_AGE
    recent = [change for change in changes if not change.is_implied and change.changed_at >= cutoff]
    if not recent or not subscribed(organization_id=organization_id, events=[WebhookEvent.DEAL_STAGE_CHANGED]):
        return
    from pipelines.models import Stage

    stage_ids = {change.to_stage_id for change in recent} | {change.from_stage_id for change in recent} - {None}
    with scopes_disabled():
        names = dict(Stage.objects.filter(organization_id=organization_id, pk__in=stage_ids).values_list("pk", "name"))
    moves = [
        {
            "deal_id": change.deal_id,
            "id": change.pk,
            "from_stage": None if change.from_stage_id is None else {"id": change.from_stage_id, "name": names.get(change.from_stage_id)},
            "to_stage": {"id": change.to_stage_id, "name": names.get(change.to_stage_id)},
            "changed_at": change.changed_at,
        }
        for change in recent
    ]

    def emit():
        from integrations.webhooks.services import event_emit

        deals = {deal.pk: deal for deal in _deals_load(organization_id, {move["deal_id"] for move in moves})}
        for move in moves:
            deal = deals.get(move.pop("deal_id"))
            if deal is None:
                continue
            data = deal_data(deal)
            data["stage_change"] = move
            event_emit(
                organization_id=organization_id,
                event=WebhookEvent.DEAL_STAGE_CHANGED,
                payload=data,
                event_id=event_uuid(organization_id, "stage_change", move["id"] or f"{deal.pk}:{move['to_stage']['id']}:{move['changed_at']}"),
            )

    transaction.on_commit(emit)


def deal_close_transitions_watch(*, organization_id: int, deal_ids: Iterable[int] | None) -> None:
    """Note the status of `deal_ids` now and, after commit, emit deal.won or deal.lost for each that became won or lost.

    Call it before a change of deal statuses inside the transaction that makes it. A full
    refresh (`deal_ids=None`) emits nothing, because it re-derives state rather than
    recording a change. Only closes within the last CLOSE_EVENT_MAX_AGE count. The first CRM
    sync or an import of old history closes thousands of deals at once, and import.finished
    announces those instead of one event per deal.
    """
    from pipelines.models import Deal, DealStatus

    # NOTE: outside a transaction on_commit runs at once and would compare the state with itself, so nothing is emitted.
    if deal_ids is None or not transaction.get_connection().in_atomic_block:
        return
    if not subscribed(organization_id=organization_id, events=[WebhookEvent.DEAL_WON, WebhookEvent.DEAL_LOST]):
        return
    ids = list(deal_ids)
    with scopes_disabled():
        before = dict(Deal.objects.filter(organization_id=organization_id, pk__in=ids).values_list("pk", "status"))

    def emit():
        from integrations.webhooks.services import event_emit

        for deal in _deals_load(organization_id, before):
            if deal.status == before[deal.pk] or deal.status not in (DealStatus.WON, DealStatus.LOST):
                continue
            # Historic closes from a backfill are not news.
            if deal.closed_at is None or deal.closed_at < timezone.now() - CLOSE_EVENT_MAX_AGE:
                continue
            event = WebhookEvent.DEAL_WON if deal.status == DealStatus.WON else WebhookEvent.DEAL_LOST
            event_emit(
                organization_id=organization_id,
                event=event,
                payload=deal_data(deal),
                event_id=event_uuid(organization_id, "deal_closed", deal.pk, deal.status, deal.closed_at),
            )

    transaction.on_commit(emit)


def import_finished_emit(*, organization_id: int, summary: dict) -> None:
    """After commit, emit import.finished with the import's summary (source, counts per entity, rejected rows)."""
    if not subscribed(organization_id=organization_id, events=[WebhookEvent.IMPORT_FINISHED]):
        return
    data = {
        "import": {
            "source": summary.get("source", ""),
            "counts": summary.get("counts", {}),
            "rejected_rows": summary.get("rejected_rows", 0),
            "duration_seconds": summary.get("duration_seconds"),
        }
    }

    def emit():
        from integrations.webhooks.services import event_emit

        event_emit(organization_id=organization_id, event=WebhookEvent.IMPORT_FINISHED, payload=data)

    transaction.on_commit(emit)


def attainment_check_schedule(*, organization_id: int) -> None:
    """After commit, enqueue the attainment threshold check of the organization when anyone subscribed to it."""
    if not subscribed(organization_id=organization_id, events=[WebhookEvent.ATTAINMENT_CROSSED]):
        return
    from integrations.webhooks.tasks import attainment_levels_check

    transaction.on_commit(lambda: attainment_levels_check.delay(organization_id=organization_id))
