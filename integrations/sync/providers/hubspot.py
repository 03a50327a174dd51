"""HubSpot client: reads pipelines, owners, deals with their stage history, archived deals and activities.

Endpoints (HubSpot CRM API v3 and the v4 associations API, authenticated with a private
app's access token as `Authorization: Bearer <token>`):

- GET  /crm/v3/pipelines/deals: pipelines with their stages. A stage's `metadata.isClosed`
  ("true"/"false") and `metadata.probability` ("0.0" … "1.0") give its kind: closed with
  probability 1 is won, closed with 0 is lost.
- GET  /crm/v3/owners (and `archived=true` for deactivated users): owner id, e-mail, names.
- GET  /crm/v3/objects/deals?propertiesWithHistory=dealstage: the first run reads every
  deal with the history of its stage property, 50 per page (paging.next.after).
- POST /crm/v3/objects/deals/search, filtered on hs_lastmodifieddate ≥ cursor and sorted
  ascending, finds the deals changed since the last run, and
  POST /crm/v3/objects/deals/batch/read reads them with their stage history.
- GET  /crm/v3/objects/deals?archived=true: deals deleted (archived) in HubSpot.
- POST /crm/v3/objects/{calls,meetings,emails,tasks,notes}/search by hs_lastmodifieddate,
  and POST /crm/v4/associations/{type}/deals/batch/read for the deal each one belongs to.
"""

import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from integrations.sync.http import JsonClient
from integrations.sync.records import (
    CrmActivity,
    CrmChanges,
    CrmDeal,
    CrmDeletedDeal,
    CrmOwner,
    CrmPipeline,
    CrmStage,
    CrmStageMove,
    cursor_advance,
    cursor_parse,
)

logger = logging.getLogger(__name__)

DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "hubspot_owner_id",
    "createdate",
    "closedate",
    "closed_lost_reason",
    "hs_lastmodifieddate",
)
# Page size of reads with property history, which HubSpot caps below the usual 100.
# NOTE: the cap of 50 is taken from HubSpot's objects API reference and not checked against the live API.
HISTORY_PAGE_SIZE = 50
SEARCH_PAGE_SIZE = 100
# The search API returns at most 10,000 results for one query and rejects a page beyond them
# with HTTP 400, so the search restarts from the latest modification time seen before that.
SEARCH_RESULT_LIMIT = 10_000
# Search results lag a few seconds behind writes, so each incremental search reaches this far
# before the cursor. Records read twice are reported as unchanged.
SEARCH_OVERLAP = dt.timedelta(minutes=1)

# Activity object type → (kind, subject property, extra properties).
ACTIVITY_TYPES = {
    "calls": ("call", "hs_call_title", ("hs_call_duration", "hs_call_status", "hs_call_disposition")),
    "meetings": ("meeting", "hs_meeting_title", ("hs_meeting_start_time", "hs_meeting_end_time", "hs_meeting_outcome")),
    "emails": ("email", "hs_email_subject", ()),
    "tasks": ("task", "hs_task_subject", ("hs_task_status",)),
    "notes": ("note", "", ()),
}


def hubspot_client(*, base_url: str, access_token: str, sleep=None) -> JsonClient:
    options = {"sleep": sleep} if sleep is not None else {}
    return JsonClient(
        base_url=base_url,
        provider_name="HubSpot",
        auth_headers={"Authorization": f"Bearer {access_token}"},
        **options,
    )


class HubSpotSource:
    """Fetches one HubSpot portal's changes since a cursor; see the module docstring for the endpoints."""

    def __init__(self, client: JsonClient, *, time_zone: dt.tzinfo):
        # Close dates are read as days in `time_zone`, the organization's time zone.
        # NOTE: this assumes that the HubSpot account uses the same time zone, because its setting is not read.
        self.client = client
        self.time_zone = time_zone

    # --- pipelines and owners ----------------------------------------------------------------

    def pipelines_fetch(self) -> list[CrmPipeline]:
        response = self.client.get("/crm/v3/pipelines/deals")
        pipelines = []
        for entry in sorted(response.get("results", []), key=lambda item: item.get("displayOrder", 0)):
            if entry.get("archived"):
                continue
            stages = [
                _stage(stage, index)
                for index, stage in enumerate(
                    sorted(entry.get("stages", []), key=lambda item: item.get("displayOrder", 0)), 1
                )
                if not stage.get("archived")
            ]
            pipelines.append(
                CrmPipeline(
                    external_id=str(entry["id"]), name=entry.get("label") or str(entry["id"]), stages=tuple(stages)
                )
            )
        return pipelines

    def owners_fetch(self) -> list[CrmOwner]:
        owners = {}
        for archived in ("false", "true"):
            for entry in self._pages("/crm/v3/owners", {"limit": 100, "archived": archived}):
                name = " ".join(part for part in (entry.get("firstName"), entry.get("lastName")) if part)
                owners.setdefault(
                    str(entry["id"]), CrmOwner(external_id=str(entry["id"]), email=entry.get("email") or "", name=name)
                )
        return list(owners.values())

    # --- deals -------------------------------------------------------------------------------

    def deals_fetch(
        self, *, cursor: str | None, pipeline_ids: set[str], started_at: dt.datetime
    ) -> tuple[list[CrmDeal], str | None]:
        """Return the deals of `pipeline_ids` changed since `cursor` (all deals without one) and the next cursor."""
        if cursor is None:
            params = {
                "limit": HISTORY_PAGE_SIZE,
                "properties": ",".join(DEAL_PROPERTIES),
                "propertiesWithHistory": "dealstage",
                "archived": "false",
            }
            raw = list(self._pages("/crm/v3/objects/deals", params))
        else:
            changed = self._search("deals", DEAL_PROPERTIES, since=cursor_parse(cursor) - SEARCH_OVERLAP)
            raw = self._batch_read_with_history([entry["id"] for entry in changed])
        seen = []
        deals = []
        for entry in raw:
            properties = entry.get("properties") or {}
            modified_at = _moment(properties.get("hs_lastmodifieddate")) or _moment(entry.get("updatedAt"))
            if modified_at is not None:
                seen.append(modified_at)
            if str(properties.get("pipeline") or "") not in pipeline_ids:
                continue
            deals.append(_deal(entry, modified_at, self.time_zone))
        return deals, cursor_advance(cursor, seen, started_at)

    def deleted_deals_fetch(self) -> list[CrmDeletedDeal]:
        """Return every archived (deleted) deal of the portal; the list is read in full on each run."""
        deleted = []
        for entry in self._pages("/crm/v3/objects/deals", {"limit": SEARCH_PAGE_SIZE, "archived": "true"}):
            deleted_at = _moment(entry.get("archivedAt")) or _moment(entry.get("updatedAt")) or timezone.now()
            deleted.append(CrmDeletedDeal(external_id=str(entry["id"]), deleted_at=deleted_at))
        return deleted

    def _batch_read_with_history(self, ids: list[str]) -> list[dict]:
        results = []
        for start in range(0, len(ids), HISTORY_PAGE_SIZE):
            body = {
                "properties": list(DEAL_PROPERTIES),
                "propertiesWithHistory": ["dealstage"],
                "inputs": [{"id": deal_id} for deal_id in ids[start : start + HISTORY_PAGE_SIZE]],
            }
            results.extend(self.client.post("/crm/v3/objects/deals/batch/read", body).get("results", []))
        return results

    # --- activities --------------------------------------------------------------------------

    def activities_fetch(
        self, *, cursor: dict[str, str], started_at: dt.datetime
    ) -> tuple[list[CrmActivity], dict[str, str]]:
        """Return calls, meetings, e-mails, tasks and notes changed since each type's cursor, and the next cursors."""
        activities = []
        next_cursor = {}
        for object_type, (kind, subject_property, extra) in ACTIVITY_TYPES.items():
            key = f"activities.{object_type}"
            previous = cursor.get(key)
            since = cursor_parse(previous) - SEARCH_OVERLAP if previous else None
            properties = (
                "hs_timestamp",
                "hubspot_owner_id",
                "hs_lastmodifieddate",
                *((subject_property,) if subject_property else ()),
                *extra,
            )
            entries = self._search(object_type, properties, since=since)
            deal_by_activity = self._deal_associations(object_type, [entry["id"] for entry in entries])
            seen = []
            for entry in entries:
                properties_found = entry.get("properties") or {}
                modified_at = _moment(properties_found.get("hs_lastmodifieddate")) or _moment(entry.get("updatedAt"))
                if modified_at is not None:
                    seen.append(modified_at)
                activity = _activity(
                    entry, object_type, kind, subject_property, deal_by_activity.get(str(entry["id"]), ""), modified_at
                )
                if activity is not None:
                    activities.append(activity)
            advanced = cursor_advance(previous, seen, started_at)
            if advanced:
                next_cursor[key] = advanced
        return activities, next_cursor

    def _deal_associations(self, object_type: str, ids: list[str]) -> dict[str, str]:
        """Return activity id → id of the first deal it is associated with."""
        found = {}
        for start in range(0, len(ids), SEARCH_PAGE_SIZE):
            body = {"inputs": [{"id": str(activity_id)} for activity_id in ids[start : start + SEARCH_PAGE_SIZE]]}
            response = self.client.post(f"/crm/v4/associations/{object_type}/deals/batch/read", body)
            for result in response.get("results", []):
                targets = result.get("to") or []
                if targets:
                    found[str(result["from"]["id"])] = str(targets[0]["toObjectId"])
        return found

    # --- paging ------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict) -> Iterator[dict]:
        after = None
        while True:
            page_params = dict(params)
            if after:
                page_params["after"] = after
            response = self.client.get(path, page_params)
            yield from response.get("results", [])
            after = ((response.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _search(self, object_type: str, properties, *, since: dt.datetime | None) -> list[dict]:
        """Return the objects modified at or after `since` (all without it), oldest change first, by id."""
        found: dict[str, dict] = {}
        lower = since
        after = None
        while True:
            body = {
                "filterGroups": [],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(properties),
                "limit": SEARCH_PAGE_SIZE,
            }
            if lower is not None:
                millis = str(int(lower.timestamp() * 1000))
                body["filterGroups"] = [
                    {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": millis}]}
                ]
            if after:
                body["after"] = after
            response = self.client.post(f"/crm/v3/objects/{object_type}/search", body)
            results = response.get("results", [])
            for entry in results:
                found[str(entry["id"])] = entry
            after = ((response.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return list(found.values())
            if int(after) >= SEARCH_RESULT_LIMIT:
                # Start a new query from the latest change seen; ids already found are merged.
                latest = max(
                    (_moment((entry.get("properties") or {}).get("hs_lastmodifieddate")) for entry in results),
                    default=None,
                )
                if latest is None or (lower is not None and latest <= lower):
                    logger.warning("HubSpot search stopped at its result limit object_type=%s", object_type)
                    return list(found.values())
                lower = latest
                after = None


def _stage(entry: dict, order: int) -> CrmStage:
    metadata = entry.get("metadata") or {}
    is_closed = str(metadata.get("isClosed", "false")).lower() == "true"
    try:
        probability = Decimal(str(metadata.get("probability") or "0"))
    except InvalidOperation:
        probability = Decimal(0)
    if is_closed:
        kind = "won" if probability >= 1 else "lost"
    else:
        kind = "open"
    percent = int((probability * 100).to_integral_value())
    return CrmStage(
        external_id=str(entry["id"]),
        name=entry.get("label") or str(entry["id"]),
        order=order,
        kind=kind,
        probability=max(0, min(100, percent)),
    )


def _deal(entry: dict, modified_at: dt.datetime | None, time_zone: dt.tzinfo) -> CrmDeal:
    properties = entry.get("properties") or {}
    created_at = _moment(properties.get("createdate")) or _moment(entry.get("createdAt"))
    history = (entry.get("propertiesWithHistory") or {}).get("dealstage") or []
    moves = sorted(
        (
            CrmStageMove(stage_external_id=str(version["value"]), changed_at=_moment(version.get("timestamp")))
            for version in history
            if version.get("value") and _moment(version.get("timestamp")) is not None
        ),
        key=lambda move: move.changed_at,
    )
    # HubSpot stores `closedate` as a UTC instant and shows its date in the account's time zone,
    # which is also the date its deals export writes. A close date picked as 1 March in Berlin
    # is 2025-02-28T23:00Z, so the date is taken in the organization's time zone.
    close_date = _moment(properties.get("closedate"))
    return CrmDeal(
        external_id=str(entry["id"]),
        name=properties.get("dealname") or "",
        owner_external_id=str(properties.get("hubspot_owner_id") or ""),
        pipeline_external_id=str(properties.get("pipeline") or ""),
        stage_external_id=str(properties.get("dealstage") or ""),
        amount=_decimal(properties.get("amount")),
        currency=(properties.get("deal_currency_code") or "").upper(),
        created_at=created_at,
        modified_at=modified_at or created_at,
        expected_close_on=close_date.astimezone(time_zone).date() if close_date else None,
        lost_reason=properties.get("closed_lost_reason") or "",
        moves=moves,
    )


def _activity(
    entry: dict, object_type: str, kind: str, subject_property: str, deal_id: str, modified_at
) -> CrmActivity | None:
    properties = entry.get("properties") or {}
    occurred_at = _moment(properties.get("hs_timestamp")) or _moment(entry.get("createdAt"))
    if occurred_at is None:
        return None
    duration = None
    if object_type == "calls" and properties.get("hs_call_duration"):
        duration = dt.timedelta(milliseconds=int(Decimal(str(properties["hs_call_duration"]))))
    elif object_type == "meetings":
        start = _moment(properties.get("hs_meeting_start_time"))
        end = _moment(properties.get("hs_meeting_end_time"))
        if start and end and end >= start:
            duration = end - start
            occurred_at = start
    is_done = True
    if object_type == "tasks":
        is_done = (properties.get("hs_task_status") or "").upper() == "COMPLETED"
    outcome = properties.get("hs_meeting_outcome") or properties.get("hs_call_status") or ""
    return CrmActivity(
        external_id=f"{object_type}:{entry['id']}",
        kind=kind,
        type_name=object_type,
        subject=(properties.get(subject_property) or "") if subject_property else "",
        owner_external_id=str(properties.get("hubspot_owner_id") or ""),
        deal_external_id=deal_id,
        occurred_at=occurred_at,
        modified_at=modified_at or occurred_at,
        duration=duration,
        is_done=is_done,
        outcome=outcome,
    )


def _moment(value) -> dt.datetime | None:
    """Parse HubSpot's ISO 8601 times ("2024-01-05T10:00:00.000Z") or millisecond epochs into UTC."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, tz=dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def changes_fetch(
    source: HubSpotSource, *, cursor: dict[str, str], pipeline_ids: set[str], started_at: dt.datetime
) -> CrmChanges:
    """Fetch everything one run needs: pipelines, owners, changed and archived deals, changed activities."""
    changes = CrmChanges()
    changes.pipelines = [pipeline for pipeline in source.pipelines_fetch() if pipeline.external_id in pipeline_ids]
    changes.owners = source.owners_fetch()
    changes.deals, deals_cursor = source.deals_fetch(
        cursor=cursor.get("deals"), pipeline_ids=pipeline_ids, started_at=started_at
    )
    changes.deleted_deals = source.deleted_deals_fetch()
    changes.activities, activity_cursor = source.activities_fetch(cursor=cursor, started_at=started_at)
    changes.cursor = {**cursor, **activity_cursor}
    # A first run that found no deal still counts as done, so the next run searches from its start.
    changes.cursor["deals"] = deals_cursor or started_at.astimezone(dt.timezone.utc).isoformat()
    changes.request_count = source.client.request_count
    return changes
