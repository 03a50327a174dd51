"""Pipedrive client: reads pipelines, stages, users, deals with their stage history, and activities.

Endpoints (authenticated with the user's personal API token as the `api_token` query parameter):

- GET /v1/pipelines and GET /v1/stages: pipelines and their stages (`order_nr`,
  `deal_probability`), offset-paginated like the flow. Pipedrive has no won or lost stages: a won deal keeps its stage
  and gets status "won". Each synced pipeline therefore gets two more stages, "Won" and
  "Lost", and a change of status is a move into one of them.
- GET /v1/users: user id, name and e-mail address of deal and activity owners.
- GET /api/v2/deals with `updated_since`, sorted by update_time, cursor-paginated
  (additional_data.next_cursor). The first run omits `updated_since`. The `status`
  filter also requests deleted deals, which carry `is_deleted: true`. Pipedrive lists
  deleted deals for 30 days.
- GET /v1/deals/{id}/flow?items=dealChange: the deal's field changes, newest first. Those
  of `stage_id` and `status` are its stage history. Offset-paginated (additional_data.pagination).
- GET /api/v2/activities with `updated_since`, sorted by update_time, cursor-paginated.

v1 responses carry UTC times as "YYYY-MM-DD HH:MM:SS", v2 responses as RFC 3339.
"""

import datetime as dt
import logging
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

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

PAGE_SIZE = 500
# The same records are read again from this long before the cursor, in case Pipedrive's
# update_time of a record written during the last run was set slightly before it ended.
OVERLAP = dt.timedelta(minutes=1)
# Pipedrive activity types → activity kinds; other types (lunch, deadline, custom ones) become tasks.
ACTIVITY_KINDS = {"call": "call", "meeting": "meeting", "email": "email", "task": "task", "note": "note"}


def pipedrive_client(*, base_url: str, access_token: str, sleep=None) -> JsonClient:
    options = {"sleep": sleep} if sleep is not None else {}
    return JsonClient(base_url=base_url, provider_name="Pipedrive", auth_params={"api_token": access_token}, **options)


def won_stage_id(pipeline_id: str) -> str:
    return f"{pipeline_id}:won"


def lost_stage_id(pipeline_id: str) -> str:
    return f"{pipeline_id}:lost"


class PipedriveSource:
    """Fetches one Pipedrive company's changes since a cursor; see the module docstring for the endpoints."""

    def __init__(self, client: JsonClient):
        self.client = client

    def pipelines_fetch(self) -> list[CrmPipeline]:
        pipelines = [entry for entry in self._offset_pages("/v1/pipelines") if entry.get("active", True)]
        stages_by_pipeline: dict[str, list[dict]] = {}
        for stage in self._offset_pages("/v1/stages"):
            if stage.get("active_flag", True):
                stages_by_pipeline.setdefault(str(stage["pipeline_id"]), []).append(stage)
        result = []
        for entry in sorted(pipelines, key=lambda item: item.get("order_nr") or 0):
            pipeline_id = str(entry["id"])
            stages = [
                CrmStage(
                    external_id=str(stage["id"]),
                    name=stage.get("name") or str(stage["id"]),
                    order=index,
                    kind="open",
                    probability=int(stage.get("deal_probability") or 0),
                )
                for index, stage in enumerate(
                    sorted(stages_by_pipeline.get(pipeline_id, []), key=lambda item: item.get("order_nr") or 0), 1
                )
            ]
            count = len(stages)
            stages.append(
                CrmStage(
                    external_id=won_stage_id(pipeline_id), name="Won", order=count + 1, kind="won", probability=100
                )
            )
            stages.append(
                CrmStage(
                    external_id=lost_stage_id(pipeline_id), name="Lost", order=count + 2, kind="lost", probability=0
                )
            )
            result.append(
                CrmPipeline(external_id=pipeline_id, name=entry.get("name") or pipeline_id, stages=tuple(stages))
            )
        return result

    def owners_fetch(self) -> list[CrmOwner]:
        return [
            CrmOwner(external_id=str(entry["id"]), email=entry.get("email") or "", name=entry.get("name") or "")
            for entry in self.client.get("/v1/users").get("data") or []
        ]

    def deals_fetch(
        self, *, cursor: str | None, pipeline_ids: set[str], started_at: dt.datetime
    ) -> tuple[list[CrmDeal], list[CrmDeletedDeal], str | None]:
        """Return the changed deals of `pipeline_ids`, the deleted ones, and the next cursor."""
        params = {
            "limit": PAGE_SIZE,
            "sort_by": "update_time",
            "sort_direction": "asc",
            "status": "open,won,lost,deleted",
        }
        if cursor is not None:
            params["updated_since"] = _rfc3339(cursor_parse(cursor) - OVERLAP)
        deals = []
        deleted = []
        seen = []
        for entry in self._cursor_pages("/api/v2/deals", params):
            modified_at = _moment(entry.get("update_time"))
            if modified_at is not None:
                seen.append(modified_at)
            if entry.get("is_deleted") or entry.get("status") == "deleted":
                deleted.append(CrmDeletedDeal(external_id=str(entry["id"]), deleted_at=modified_at or started_at))
                continue
            if str(entry.get("pipeline_id")) not in pipeline_ids:
                continue
            deals.append(self._deal(entry, modified_at))
        return deals, deleted, cursor_advance(cursor, seen, started_at)

    def _deal(self, entry: dict, modified_at: dt.datetime | None) -> CrmDeal:
        pipeline_id = str(entry["pipeline_id"])
        created_at = _moment(entry.get("add_time"))
        status = entry.get("status") or "open"
        stage_id = str(entry["stage_id"])
        current_stage = {"won": won_stage_id(pipeline_id), "lost": lost_stage_id(pipeline_id)}.get(status, stage_id)
        moves = self._moves(entry, created_at, stage_id, status)
        expected = entry.get("expected_close_date")
        return CrmDeal(
            external_id=str(entry["id"]),
            name=entry.get("title") or "",
            owner_external_id=str(entry.get("owner_id") or ""),
            pipeline_external_id=pipeline_id,
            stage_external_id=current_stage,
            amount=_decimal(entry.get("value")),
            currency=(entry.get("currency") or "").upper(),
            created_at=created_at,
            modified_at=modified_at or created_at,
            expected_close_on=dt.date.fromisoformat(expected) if expected else None,
            lost_reason=entry.get("lost_reason") or "",
            moves=moves,
        )

    def _moves(self, entry: dict, created_at: dt.datetime, stage_id: str, status: str) -> list[CrmStageMove]:
        """Build the stage history from the deal's flow: stage changes, and status changes as moves to Won or Lost."""
        pipeline_id = str(entry["pipeline_id"])
        changes = []
        for item in self._offset_pages(f"/v1/deals/{entry['id']}/flow", {"items": "dealChange"}):
            if item.get("object") != "dealChange":
                continue
            data = item.get("data") or {}
            if data.get("field_key") in ("stage_id", "status"):
                changed_at = _moment(data.get("log_time") or item.get("timestamp"))
                if changed_at is not None:
                    changes.append(
                        (
                            changed_at,
                            data["field_key"],
                            str(data.get("old_value") or ""),
                            str(data.get("new_value") or ""),
                        )
                    )
        changes.sort(key=lambda change: change[0])

        stage_changes = [change for change in changes if change[1] == "stage_id"]
        current = stage_changes[0][2] if stage_changes and stage_changes[0][2] else stage_id
        moves = [CrmStageMove(current, created_at)] if created_at is not None else []
        closed_by_flow = False
        for changed_at, field_key, _old, new in changes:
            if field_key == "stage_id":
                current = new
                target = new
            elif new == "won":
                target = won_stage_id(pipeline_id)
                closed_by_flow = True
            elif new == "lost":
                target = lost_stage_id(pipeline_id)
                closed_by_flow = True
            elif new == "open":
                # Reopened: the deal is back in the stage it had before it was closed.
                target = current
            else:
                continue
            moves.append(CrmStageMove(target, changed_at))

        if status in ("won", "lost") and not closed_by_flow:
            # The flow contains no status change (it is older than the flow's history),
            # so the deal closes at won_time or lost_time.
            closed_at = _moment(entry.get(f"{status}_time") or entry.get("close_time")) or created_at
            target = won_stage_id(pipeline_id) if status == "won" else lost_stage_id(pipeline_id)
            moves.append(CrmStageMove(target, closed_at))
        return moves

    def activities_fetch(self, *, cursor: str | None, started_at: dt.datetime) -> tuple[list[CrmActivity], str | None]:
        params = {"limit": PAGE_SIZE, "sort_by": "update_time", "sort_direction": "asc"}
        if cursor is not None:
            params["updated_since"] = _rfc3339(cursor_parse(cursor) - OVERLAP)
        activities = []
        seen = []
        for entry in self._cursor_pages("/api/v2/activities", params):
            modified_at = _moment(entry.get("update_time"))
            if modified_at is not None:
                seen.append(modified_at)
            # NOTE: an activity deleted in Pipedrive is skipped here; an earlier copy stays in SPM.
            if entry.get("is_deleted"):
                continue
            activity = _activity(entry, modified_at)
            if activity is not None:
                activities.append(activity)
        return activities, cursor_advance(cursor, seen, started_at)

    def _cursor_pages(self, path: str, params: dict) -> Iterator[dict]:
        next_cursor = None
        while True:
            page_params = dict(params)
            if next_cursor:
                page_params["cursor"] = next_cursor
            response = self.client.get(path, page_params)
            yield from response.get("data") or []
            next_cursor = (response.get("additional_data") or {}).get("next_cursor")
            if not next_cursor:
                return

    def _offset_pages(self, path: str, params: dict | None = None) -> Iterator[dict]:
        start = 0
        while True:
            response = self.client.get(path, {**(params or {}), "start": start, "limit": PAGE_SIZE})
            yield from response.get("data") or []
            pagination = (response.get("additional_data") or {}).get("pagination") or {}
            if not pagination.get("more_items_in_collection"):
                return
            start = pagination.get("next_start") or start + PAGE_SIZE


def _activity(entry: dict, modified_at: dt.datetime | None) -> CrmActivity | None:
    due_date = entry.get("due_date")
    if not due_date:
        return None
    due_time = entry.get("due_time") or ""
    if due_time:
        occurred_at = dt.datetime.fromisoformat(
            f"{due_date}T{due_time[:8] if due_time.count(':') == 2 else due_time + ':00'}"
        )
        occurred_at = occurred_at.replace(tzinfo=dt.timezone.utc)
    else:
        # A date without a time: noon UTC keeps the calendar date in every time zone from UTC−11 to UTC+11.
        day = dt.date.fromisoformat(due_date)
        occurred_at = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc)
    duration = None
    if entry.get("duration"):
        parts = [int(part) for part in str(entry["duration"]).split(":")]
        hours, minutes = parts[0], parts[1] if len(parts) > 1 else 0
        duration = dt.timedelta(hours=hours, minutes=minutes)
    type_name = entry.get("type") or ""
    return CrmActivity(
        external_id=str(entry["id"]),
        kind=ACTIVITY_KINDS.get(type_name, "task"),
        type_name=type_name,
        subject=entry.get("subject") or "",
        owner_external_id=str(entry.get("owner_id") or entry.get("user_id") or ""),
        deal_external_id=str(entry.get("deal_id") or ""),
        occurred_at=occurred_at,
        modified_at=modified_at or occurred_at,
        duration=duration,
        is_done=bool(entry.get("done")),
    )


def _moment(value) -> dt.datetime | None:
    """Parse "YYYY-MM-DD HH:MM:SS" (v1, UTC) or RFC 3339 (v2) into an aware UTC datetime."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def changes_fetch(
    source: PipedriveSource, *, cursor: dict[str, str], pipeline_ids: set[str], started_at: dt.datetime
) -> CrmChanges:
    """Fetch everything one run needs: pipelines with stages, users, changed and deleted deals, changed activities."""
    changes = CrmChanges()
    changes.pipelines = [pipeline for pipeline in source.pipelines_fetch() if pipeline.external_id in pipeline_ids]
    changes.owners = source.owners_fetch()
    changes.deals, changes.deleted_deals, deals_cursor = source.deals_fetch(
        cursor=cursor.get("deals"), pipeline_ids=pipeline_ids, started_at=started_at
    )
    changes.activities, activities_cursor = source.activities_fetch(
        cursor=cursor.get("activities"), started_at=started_at
    )
    started = started_at.astimezone(dt.timezone.utc).isoformat()
    changes.cursor = {**cursor, "deals": deals_cursor or started, "activities": activities_cursor or started}
    changes.request_count = source.client.request_count
    return changes
