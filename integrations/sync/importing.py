"""Hands fetched CRM changes to the shared record import core (`pipelines.services_records.records_import`).

The sync writes nothing itself: pipelines, people, deals, stage history, deletions and
activities go through the same validation, idempotent upserts, error reporting and KPI
recompute as API calls and file imports. This module only translates the CRM records
into the core's record fields.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from integrations.sync.records import CrmActivity, CrmChanges, CrmDeal
from pipelines.models import Deal


def owner_key(provider: str, owner_id: str) -> str:
    """Return the membership external id of a CRM owner, prefixed so HubSpot and Pipedrive ids cannot collide."""
    return f"{provider}:{owner_id}"


def records_build(*, provider: str, changes: CrmChanges, organization) -> tuple[dict[str, list[dict]], int]:
    """Return the keyword arguments of records_import for `changes`, and how many stored deals get deleted now.

    Stage ids become stage names, because the import core matches stages by name within
    their pipeline. A deletion is sent only for a deal stored under this source: a deal
    deleted in the CRM before it was ever synced has nothing to mark. An activity keeps its
    deal link only when the deal is stored or in this batch. Activities of deals in
    pipelines that are not synced are kept without a deal.
    """
    stage_names = {}
    pipeline_names = {}
    stage_pipelines = {}
    for pipeline in changes.pipelines:
        pipeline_names[pipeline.external_id] = pipeline.name
        for stage in pipeline.stages:
            stage_names[stage.external_id] = stage.name
            stage_pipelines[stage.external_id] = pipeline.external_id

    pipelines = [
        {
            "name": pipeline.name,
            "stages": [
                {"name": stage.name, "kind": stage.kind, "probability": stage.probability} for stage in pipeline.stages
            ],
        }
        for pipeline in changes.pipelines
    ]
    people = [
        {"external_id": owner_key(provider, owner.external_id), "email": owner.email, "name": owner.name}
        for owner in changes.owners
    ]

    owner_emails = _owner_emails(changes.owners)
    deals = []
    stage_changes = []
    for deal in changes.deals:
        record, moves = _deal_record(provider, deal, pipeline_names, stage_names, stage_pipelines)
        _owner_email_add(record, owner_emails.get(deal.owner_external_id, ""))
        deals.append(record)
        stage_changes.extend(moves)

    stored = dict(
        Deal.all_objects.filter(
            organization=organization,
            source=provider,
            external_id__in=[deleted.external_id for deleted in changes.deleted_deals],
        ).values_list("external_id", "deleted_at")
    )
    sent = {deal.external_id for deal in changes.deals}
    newly_deleted = 0
    for deleted in changes.deleted_deals:
        if deleted.external_id not in stored or deleted.external_id in sent:
            continue
        if stored[deleted.external_id] is None:
            newly_deleted += 1
        deals.append({"external_id": deleted.external_id, "deleted": True, "deleted_at": _iso(deleted.deleted_at)})

    known_deals = sent | set(
        Deal.all_objects.filter(
            organization=organization,
            source=provider,
            external_id__in={activity.deal_external_id for activity in changes.activities} - {""},
        ).values_list("external_id", flat=True)
    )
    activities = []
    for activity in changes.activities:
        record = _activity_record(provider, activity, known_deals)
        _owner_email_add(record, owner_emails.get(activity.owner_external_id, ""))
        activities.append(record)

    records = {
        "pipelines": pipelines,
        "people": people,
        "deals": deals,
        "stage_changes": stage_changes,
        "activities": activities,
    }
    return records, newly_deleted


def _owner_emails(owners) -> dict[str, str]:
    """Map each CRM owner id to their e-mail address, for the owners whose address is valid."""
    emails = {}
    for owner in owners:
        try:
            validate_email(owner.email)
        except ValidationError:
            continue
        emails[owner.external_id] = owner.email.lower()
    return emails


def _owner_email_add(record: dict, email: str) -> None:
    """Add the owner's e-mail address to a deal or activity record that names an owner.

    The owner key (`pipedrive:7`) matches only members the sync created. With the address,
    a member who already exists under another external id, such as one created through
    the API or a people upload, is matched by e-mail instead of getting a duplicate.
    """
    if record["owner"] and email:
        record["owner_email"] = email


def _deal_record(
    provider: str, deal: CrmDeal, pipeline_names: dict, stage_names: dict, stage_pipelines: dict
) -> tuple[dict, list[dict]]:
    record = {
        "external_id": deal.external_id,
        "name": deal.name,
        "owner": owner_key(provider, deal.owner_external_id) if deal.owner_external_id else "",
        "pipeline": pipeline_names.get(deal.pipeline_external_id, deal.pipeline_external_id),
        "stage": stage_names.get(deal.stage_external_id, deal.stage_external_id),
        "amount": str(deal.amount) if deal.amount is not None else None,
        "created_at": _iso(deal.created_at),
        "expected_close_on": deal.expected_close_on.isoformat() if deal.expected_close_on else None,
        "lost_reason": deal.lost_reason[:300],
        "deleted": False,
    }
    if deal.currency:
        record["currency"] = deal.currency
    # Moves into stages of another pipeline (the deal changed pipelines) are dropped: the
    # deal belongs to its current pipeline, and its history there starts with its first move into it.
    moves = [
        {"deal": deal.external_id, "stage": stage_names[move.stage_external_id], "changed_at": _iso(move.changed_at)}
        for move in deal.moves
        if stage_pipelines.get(move.stage_external_id) == deal.pipeline_external_id
    ]
    return record, moves


def _activity_record(provider: str, activity: CrmActivity, known_deals: set[str]) -> dict:
    record = {
        "external_id": activity.external_id,
        "kind": activity.kind,
        "type_name": activity.type_name[:100],
        "subject": activity.subject[:300],
        "outcome": activity.outcome[:200],
        "owner": owner_key(provider, activity.owner_external_id) if activity.owner_external_id else "",
        "occurred_at": _iso(activity.occurred_at),
        "is_done": activity.is_done,
        "is_captured": True,
    }
    if activity.deal_external_id in known_deals:
        record["deal"] = activity.deal_external_id
    if activity.duration is not None:
        record["duration_minutes"] = int(activity.duration.total_seconds() // 60)
    return record


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat()
