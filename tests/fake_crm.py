"""Fake HubSpot and Pipedrive API servers on loopback for the CRM sync tests.

Each server is a `http.server` in a thread bound to 127.0.0.1 on a free port. It serves
the endpoints the sync uses in the response shapes of the CRMs' API references (HubSpot
CRM v3 objects, search, batch read, pipelines, owners and v4 associations; Pipedrive v1
pipelines, stages, users and deal flow, v2 deals and activities), from state the test
builds and changes. It can answer 429 with Retry-After a given number of times, pages
results with a small page size, and logs every request.

The second half contains what the sync test modules share: the `server` and `connection`
fixtures, the `sync` helper and HubSpot demo deals. A test module defines a `fake` fixture
with its own CRM state and imports the fixtures by name, because tests/conftest.py serves
every module.
"""

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from django_scopes import scope, scopes_disabled

from integrations.sync.models import CrmConnection, CrmSyncRun, SyncTrigger
from integrations.sync.services import crm_sync_request, crm_sync_run

UTC = dt.timezone.utc


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict | None
    headers: dict[str, str]


@dataclass
class FakeCrmBase:
    """State shared by both fakes: token, paging, throttling and the request log."""

    token: str = "test-token"
    # Largest page the server returns, whatever limit the client asks for.
    max_page_size: int = 100
    # Path → list of Retry-After values; each request to the path pops one and gets a 429 response.
    throttled: dict[str, list[str]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path == path]


# --- HubSpot -----------------------------------------------------------------------------------


@dataclass
class HubSpotDeal:
    id: str
    name: str
    owner_id: str
    pipeline: str
    created_at: dt.datetime
    amount: str | None
    currency: str | None
    close_date: dt.datetime | None
    # (stage id, entered at), oldest first; the last entry is the current stage.
    history: list[tuple[str, dt.datetime]]
    modified_at: dt.datetime
    archived_at: dt.datetime | None = None

    def properties(self) -> dict:
        return {
            "dealname": self.name,
            "amount": self.amount,
            "deal_currency_code": self.currency,
            "dealstage": self.history[-1][0],
            "pipeline": self.pipeline,
            "hubspot_owner_id": self.owner_id or None,
            "createdate": _iso(self.created_at),
            "closedate": _iso(self.close_date) if self.close_date else None,
            "closed_lost_reason": None,
            "hs_lastmodifieddate": _iso(self.modified_at),
            "hs_object_id": self.id,
        }

    def as_json(self, *, properties: list[str], with_history: bool) -> dict:
        values = self.properties()
        entry = {
            "id": self.id,
            "properties": {name: values.get(name) for name in properties} if properties else {"hs_object_id": self.id},
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.modified_at),
            "archived": self.archived_at is not None,
        }
        if self.archived_at is not None:
            entry["archivedAt"] = _iso(self.archived_at)
        if with_history:
            entry["propertiesWithHistory"] = {
                "dealstage": [
                    {
                        "value": stage,
                        "timestamp": _iso(at),
                        "sourceType": "CRM_UI",
                        "sourceId": f"userId:{self.owner_id}",
                    }
                    for stage, at in reversed(self.history)
                ]
            }
        return entry


@dataclass
class FakeHubSpot(FakeCrmBase):
    provider: ClassVar[str] = "hubspot"

    pipelines: list[dict] = field(default_factory=list)
    owners: list[dict] = field(default_factory=list)
    deals: dict[str, HubSpotDeal] = field(default_factory=dict)
    # object type (calls, meetings, …) → id → {"properties": {...}, "deal_id": str | None}
    activities: dict[str, dict[str, dict]] = field(default_factory=dict)

    def add_pipeline(self, pipeline_id: str, label: str, stages: list[tuple[str, str, str, bool]]) -> None:
        """Add a pipeline; stages are (id, label, probability as "0.2", is closed)."""
        self.pipelines.append(
            {
                "id": pipeline_id,
                "label": label,
                "displayOrder": len(self.pipelines),
                "archived": False,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-01-01T00:00:00.000Z",
                "stages": [
                    {
                        "id": stage_id,
                        "label": stage_label,
                        "displayOrder": order,
                        "metadata": {"isClosed": "true" if is_closed else "false", "probability": probability},
                        "archived": False,
                        "createdAt": "2024-01-01T00:00:00.000Z",
                        "updatedAt": "2024-01-01T00:00:00.000Z",
                        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                    }
                    for order, (stage_id, stage_label, probability, is_closed) in enumerate(stages)
                ],
            }
        )

    def pipeline_choices(self) -> list[dict]:
        """Return the pipelines as `CrmConnection.available_pipelines` stores them."""
        return [{"id": pipeline["id"], "label": pipeline["label"]} for pipeline in self.pipelines]

    def add_owner(self, owner_id: str, email: str, first_name: str, last_name: str) -> None:
        self.owners.append(
            {
                "id": owner_id,
                "email": email,
                "type": "PERSON",
                "firstName": first_name,
                "lastName": last_name,
                "userId": int(owner_id) + 9000,
                "userIdIncludingInactive": int(owner_id) + 9000,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "updatedAt": "2024-01-01T00:00:00.000Z",
                "archived": False,
            }
        )

    def add_deal(
        self,
        deal_id: str,
        *,
        name: str,
        owner_id: str,
        pipeline: str,
        stage: str,
        created_at: dt.datetime,
        amount: str | None = None,
        currency: str | None = None,
        close_date: dt.datetime | None = None,
    ) -> HubSpotDeal:
        deal = HubSpotDeal(
            id=deal_id,
            name=name,
            owner_id=owner_id,
            pipeline=pipeline,
            created_at=created_at,
            amount=amount,
            currency=currency,
            close_date=close_date,
            history=[(stage, created_at)],
            modified_at=created_at,
        )
        self.deals[deal_id] = deal
        return deal

    def move_deal(self, deal_id: str, stage: str, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal.history.append((stage, at))
        deal.modified_at = at

    def change_deal(self, deal_id: str, at: dt.datetime, **values) -> None:
        deal = self.deals[deal_id]
        for name, value in values.items():
            setattr(deal, name, value)
        deal.modified_at = at

    def archive_deal(self, deal_id: str, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal.archived_at = at
        deal.modified_at = at

    def add_activity(
        self, object_type: str, activity_id: str, *, deal_id: str | None, modified_at: dt.datetime, **properties
    ) -> None:
        properties.setdefault("hs_lastmodifieddate", _iso(modified_at))
        properties.setdefault("hs_object_id", activity_id)
        self.activities.setdefault(object_type, {})[activity_id] = {
            "properties": properties,
            "deal_id": deal_id,
            "modified_at": modified_at,
        }

    # Request handling

    def handle(self, method: str, path: str, query: dict, body: dict | None, headers: dict) -> tuple[int, dict]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {
                "status": "error",
                "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                "correlationId": "00000000-0000-0000-0000-000000000000",
                "category": "INVALID_AUTHENTICATION",
            }
        if method == "GET" and path == "/crm/v3/pipelines/deals":
            return 200, {"results": self.pipelines}
        if method == "GET" and path == "/crm/v3/owners":
            archived = _first(query, "archived", "false") == "true"
            owners = [owner for owner in self.owners if owner["archived"] == archived]
            return 200, self._page(owners, query)
        if method == "GET" and path == "/crm/v3/objects/deals":
            archived = _first(query, "archived", "false") == "true"
            properties = [name for name in _first(query, "properties", "").split(",") if name]
            with_history = _first(query, "propertiesWithHistory", "") == "dealstage"
            deals = sorted(
                (deal for deal in self.deals.values() if (deal.archived_at is not None) == archived),
                key=lambda deal: int(deal.id),
            )
            limit = min(int(_first(query, "limit", "10")), 50 if with_history else 100)
            entries = [deal.as_json(properties=properties, with_history=with_history) for deal in deals]
            return 200, self._page(entries, query, limit=limit)
        if method == "POST" and path == "/crm/v3/objects/deals/batch/read":
            properties = body.get("properties") or []
            with_history = "dealstage" in (body.get("propertiesWithHistory") or [])
            results = [
                self.deals[item["id"]].as_json(properties=properties, with_history=with_history)
                for item in body.get("inputs", [])
                if item["id"] in self.deals and self.deals[item["id"]].archived_at is None
            ]
            return 200, {
                "status": "COMPLETE",
                "results": results,
                "startedAt": "2025-01-01T00:00:00.000Z",
                "completedAt": "2025-01-01T00:00:01.000Z",
            }
        if method == "POST" and path.startswith("/crm/v3/objects/") and path.endswith("/search"):
            object_type = path.split("/")[4]
            return 200, self._search(object_type, body)
        if method == "POST" and path.startswith("/crm/v4/associations/") and path.endswith("/deals/batch/read"):
            object_type = path.split("/")[4]
            results = []
            for item in body.get("inputs", []):
                activity = self.activities.get(object_type, {}).get(item["id"])
                if activity and activity["deal_id"]:
                    results.append(
                        {
                            "from": {"id": item["id"]},
                            "to": [
                                {
                                    "toObjectId": int(activity["deal_id"]),
                                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 206, "label": None}],
                                }
                            ],
                        }
                    )
            return 200, {
                "status": "COMPLETE",
                "results": results,
                "startedAt": "2025-01-01T00:00:00.000Z",
                "completedAt": "2025-01-01T00:00:01.000Z",
            }
        return 404, {"status": "error", "message": f"Unknown path {path}", "category": "OBJECT_NOT_FOUND"}

    def _search(self, object_type: str, body: dict) -> dict:
        lower = None
        for group in body.get("filterGroups") or []:
            for condition in group.get("filters") or []:
                if condition["propertyName"] == "hs_lastmodifieddate" and condition["operator"] == "GTE":
                    lower = int(condition["value"])
        properties = body.get("properties") or []
        if object_type == "deals":
            rows = [
                (deal.modified_at, deal.id, deal.as_json(properties=properties, with_history=False))
                for deal in self.deals.values()
                if deal.archived_at is None
            ]
        else:
            rows = []
            for activity_id, activity in self.activities.get(object_type, {}).items():
                values = activity["properties"]
                rows.append(
                    (
                        activity["modified_at"],
                        activity_id,
                        {
                            "id": activity_id,
                            "properties": {name: values.get(name) for name in properties},
                            "createdAt": _iso(activity["modified_at"]),
                            "updatedAt": _iso(activity["modified_at"]),
                            "archived": False,
                        },
                    )
                )
        if lower is not None:
            rows = [row for row in rows if _millis(row[0]) >= lower]
        rows.sort(key=lambda row: (row[0], int(row[1])))
        entries = [row[2] for row in rows]
        start = int(body.get("after") or 0)
        limit = min(int(body.get("limit") or 10), self.max_page_size, 200)
        page = entries[start : start + limit]
        response = {"total": len(entries), "results": page}
        if start + limit < len(entries):
            response["paging"] = {"next": {"after": str(start + limit)}}
        return response

    def _page(self, entries: list, query: dict, limit: int | None = None) -> dict:
        start = int(_first(query, "after", "0"))
        limit = min(limit or int(_first(query, "limit", "10")), self.max_page_size)
        response = {"results": entries[start : start + limit]}
        if start + limit < len(entries):
            response["paging"] = {"next": {"after": str(start + limit), "link": "https://api.hubapi.com/..."}}
        return response


# --- Pipedrive ---------------------------------------------------------------------------------


def _pd_time(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pd_rfc(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass
class PipedriveDeal:
    id: int
    title: str
    owner_id: int
    pipeline_id: int
    stage_id: int
    value: float
    currency: str
    add_time: dt.datetime
    update_time: dt.datetime
    status: str = "open"
    won_time: dt.datetime | None = None
    lost_time: dt.datetime | None = None
    # (field_key, old value, new value, log time)
    changes: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)
    deleted_at: dt.datetime | None = None

    def as_v2(self) -> dict:
        close_time = None
        if self.status == "won":
            close_time = self.won_time
        elif self.status == "lost":
            close_time = self.lost_time
        return {
            "id": self.id,
            "title": self.title,
            "creator_user_id": self.owner_id,
            "owner_id": self.owner_id,
            "person_id": None,
            "org_id": None,
            "pipeline_id": self.pipeline_id,
            "stage_id": self.stage_id,
            "value": self.value,
            "currency": self.currency,
            "add_time": _pd_rfc(self.add_time),
            "update_time": _pd_rfc(self.update_time),
            "stage_change_time": None,
            "is_deleted": self.deleted_at is not None,
            "status": self.status,
            "probability": None,
            "lost_reason": None,
            "visible_to": 3,
            "close_time": _pd_rfc(close_time),
            "won_time": _pd_rfc(self.won_time),
            "lost_time": _pd_rfc(self.lost_time),
            "expected_close_date": None,
            "label_ids": [],
        }


@dataclass
class FakePipedrive(FakeCrmBase):
    provider: ClassVar[str] = "pipedrive"

    pipelines: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    deals: dict[int, PipedriveDeal] = field(default_factory=dict)
    activities: dict[int, dict] = field(default_factory=dict)

    def add_pipeline(self, pipeline_id: int, name: str) -> None:
        self.pipelines.append(
            {
                "id": pipeline_id,
                "name": name,
                "url_title": name.lower(),
                "order_nr": len(self.pipelines),
                "active": True,
                "deal_probability": True,
                "add_time": "2024-01-01 00:00:00",
                "update_time": "2024-01-01 00:00:00",
                "selected": not self.pipelines,
            }
        )

    def pipeline_choices(self) -> list[dict]:
        """Return the pipelines as `CrmConnection.available_pipelines` stores them."""
        return [{"id": str(pipeline["id"]), "label": pipeline["name"]} for pipeline in self.pipelines]

    def add_stage(self, stage_id: int, pipeline_id: int, name: str, probability: int) -> None:
        self.stages.append(
            {
                "id": stage_id,
                "order_nr": len([stage for stage in self.stages if stage["pipeline_id"] == pipeline_id]) + 1,
                "name": name,
                "active_flag": True,
                "deal_probability": probability,
                "pipeline_id": pipeline_id,
                "rotten_flag": False,
                "rotten_days": None,
                "add_time": "2024-01-01 00:00:00",
                "update_time": "2024-01-01 00:00:00",
            }
        )

    def add_user(self, user_id: int, name: str, email: str) -> None:
        self.users.append({"id": user_id, "name": name, "email": email, "active_flag": True, "is_admin": 0})

    def add_deal(
        self,
        deal_id: int,
        *,
        title: str,
        owner_id: int,
        pipeline_id: int,
        stage_id: int,
        value: float,
        currency: str,
        add_time: dt.datetime,
    ) -> PipedriveDeal:
        deal = PipedriveDeal(
            id=deal_id,
            title=title,
            owner_id=owner_id,
            pipeline_id=pipeline_id,
            stage_id=stage_id,
            value=value,
            currency=currency,
            add_time=add_time,
            update_time=add_time,
        )
        self.deals[deal_id] = deal
        return deal

    def move_deal(self, deal_id: int, stage_id: int, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal.changes.append(("stage_id", str(deal.stage_id), str(stage_id), at))
        deal.stage_id = stage_id
        deal.update_time = at

    def set_status(self, deal_id: int, status: str, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal.changes.append(("status", deal.status, status, at))
        deal.status = status
        if status == "won":
            deal.won_time = at
        elif status == "lost":
            deal.lost_time = at
        deal.update_time = at

    def delete_deal(self, deal_id: int, at: dt.datetime) -> None:
        deal = self.deals[deal_id]
        deal.deleted_at = at
        deal.update_time = at

    def add_activity(
        self,
        activity_id: int,
        *,
        type_name: str,
        subject: str,
        owner_id: int,
        deal_id: int | None,
        due: dt.datetime,
        duration: str,
        done: bool,
        update_time: dt.datetime,
    ) -> None:
        self.activities[activity_id] = {
            "id": activity_id,
            "subject": subject,
            "type": type_name,
            "owner_id": owner_id,
            "creator_user_id": owner_id,
            "is_deleted": False,
            "add_time": _pd_rfc(update_time),
            "update_time": _pd_rfc(update_time),
            "deal_id": deal_id,
            "lead_id": None,
            "person_id": None,
            "org_id": None,
            "project_id": None,
            "due_date": due.strftime("%Y-%m-%d"),
            "due_time": due.strftime("%H:%M"),
            "duration": duration,
            "busy": True,
            "done": done,
            "marked_as_done_time": _pd_rfc(update_time) if done else None,
            "location": None,
            "participants": [],
            "attendees": [],
            "conference_meeting_client": None,
            "conference_meeting_url": None,
            "conference_meeting_id": None,
            "public_description": None,
            "priority": None,
            "note": None,
        }

    # Request handling

    def handle(self, method: str, path: str, query: dict, body: dict | None, headers: dict) -> tuple[int, dict]:
        if _first(query, "api_token", "") != self.token:
            return 401, {
                "success": False,
                "error": "unauthorized access",
                "errorCode": 401,
                "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
            }
        if method != "GET":
            return 405, {"success": False, "error": "Method not allowed"}
        if path == "/v1/pipelines":
            return 200, self._v1_list(self.pipelines, query)
        if path == "/v1/stages":
            return 200, self._v1_list(self.stages, query)
        if path == "/v1/users":
            return 200, {"success": True, "data": self.users}
        if path == "/api/v2/deals":
            statuses = set(_first(query, "status", "open,won,lost").split(","))
            since = _first(query, "updated_since", "")
            rows = []
            for deal in self.deals.values():
                status = "deleted" if deal.deleted_at else deal.status
                if status not in statuses:
                    continue
                if since and _pd_rfc(deal.update_time) < since:
                    continue
                rows.append(deal)
            rows.sort(key=lambda deal: (deal.update_time, deal.id))
            return 200, self._v2_page([deal.as_v2() for deal in rows], query)
        if path.startswith("/v1/deals/") and path.endswith("/flow"):
            deal = self.deals.get(int(path.split("/")[3]))
            if deal is None:
                return 404, {"success": False, "error": "Deal not found", "errorCode": 404}
            items = [
                {
                    "object": "dealChange",
                    "timestamp": _pd_time(at),
                    "data": {
                        "id": index + 1,
                        "item_id": deal.id,
                        "user_id": deal.owner_id,
                        "field_key": field_key,
                        "old_value": old,
                        "new_value": new,
                        "is_bulk_update_flag": None,
                        "log_time": _pd_time(at),
                        "change_source": "app",
                        "change_source_user_agent": None,
                        "additional_data": {},
                    },
                }
                for index, (field_key, old, new, at) in enumerate(deal.changes)
            ]
            # The flow lists the newest update first.
            items.reverse()
            return 200, self._v1_list(items, query)
        if path == "/api/v2/activities":
            since = _first(query, "updated_since", "")
            rows = [activity for activity in self.activities.values() if not since or activity["update_time"] >= since]
            rows.sort(key=lambda activity: (activity["update_time"], activity["id"]))
            return 200, self._v2_page(rows, query)
        return 404, {"success": False, "error": f"Unknown path {path}", "errorCode": 404}

    def _v1_list(self, items: list, query: dict) -> dict:
        start = int(_first(query, "start", "0"))
        limit = min(int(_first(query, "limit", "100")), self.max_page_size)
        page = items[start : start + limit]
        more = start + limit < len(items)
        pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return {"success": True, "data": page, "additional_data": {"pagination": pagination}, "related_objects": {}}

    def _v2_page(self, items: list, query: dict) -> dict:
        start = int(_first(query, "cursor", "0") or 0)
        limit = min(int(_first(query, "limit", "100")), self.max_page_size)
        page = items[start : start + limit]
        next_cursor = str(start + limit) if start + limit < len(items) else None
        return {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}}


# --- server ------------------------------------------------------------------------------------


def _first(query: dict, name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCrmBase

    def log_message(self, format, *args):
        pass

    def _respond(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake = self.server.fake
        with fake.lock:
            fake.requests.append(RecordedRequest(self.command, parts.path, query, body, headers))
            waits = fake.throttled.get(parts.path)
            if waits:
                retry_after = waits.pop(0)
                self._send(
                    429,
                    {
                        "status": "error",
                        "message": "You have reached your ten secondly limit.",
                        "category": "RATE_LIMITS",
                    },
                    {"Retry-After": retry_after},
                )
                return
            status, payload = fake.handle(self.command, parts.path, query, body, headers)
        self._send(status, payload, {})

    def _send(self, status: int, payload: dict, extra_headers: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = _respond
    do_POST = _respond


class FakeCrmServer:
    """Serve `fake` on 127.0.0.1 on a free port in a daemon thread; use as a context manager."""

    def __init__(self, fake: FakeCrmBase):
        self.fake = fake
        fake.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.fake = fake
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeCrmServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def hubspot_demo() -> FakeHubSpot:
    """A small HubSpot portal: one sales pipeline of four stages plus won and lost, two owners, no deals yet."""
    fake = FakeHubSpot()
    fake.add_pipeline(
        "default",
        "Sales Pipeline",
        [
            ("appointmentscheduled", "Appointment scheduled", "0.2", False),
            ("qualifiedtobuy", "Qualified to buy", "0.4", False),
            ("contractsent", "Contract sent", "0.9", False),
            ("closedwon", "Closed won", "1.0", True),
            ("closedlost", "Closed lost", "0.0", True),
        ],
    )
    fake.add_pipeline(
        "renewals", "Renewals", [("renewalopen", "Renewal open", "0.5", False), ("renewalwon", "Renewed", "1.0", True)]
    )
    fake.add_owner("101", "hanna.huber@acme.example", "Hanna", "Huber")
    fake.add_owner("102", "jonas.keller@acme.example", "Jonas", "Keller")
    return fake


def pipedrive_demo() -> FakePipedrive:
    """A small Pipedrive company: one pipeline with three stages, two users, no deals yet."""
    fake = FakePipedrive()
    fake.add_pipeline(1, "Neugeschäft")
    fake.add_stage(11, 1, "Qualifiziert", 20)
    fake.add_stage(12, 1, "Angebot", 50)
    fake.add_stage(13, 1, "Verhandlung", 80)
    fake.add_pipeline(2, "Partner")
    fake.add_stage(21, 2, "Partner lead", 10)
    fake.add_user(7, "Petra Pohl", "petra.pohl@acme.example")
    fake.add_user(8, "Otto Ostertag", "otto.ostertag@acme.example")
    return fake


def hubspot_demo_deals() -> FakeHubSpot:
    """Return `hubspot_demo()` with three deals added to the sales pipeline.

    Alpha (owner 101, 1000): won after two moves. Beta (owner 102, 2500): open in Contract
    sent. Gamma (owner 101, 400.50): lost.
    """
    fake = hubspot_demo()
    fake.add_deal(
        "1",
        name="Alpha",
        owner_id="101",
        pipeline="default",
        stage="appointmentscheduled",
        created_at=utc(2025, 1, 6, 9),
        amount="1000",
    )
    fake.move_deal("1", "qualifiedtobuy", utc(2025, 1, 10, 9))
    fake.move_deal("1", "closedwon", utc(2025, 2, 3, 10))
    fake.add_deal(
        "2",
        name="Beta",
        owner_id="102",
        pipeline="default",
        stage="appointmentscheduled",
        created_at=utc(2025, 1, 8, 9),
        amount="2500",
    )
    fake.move_deal("2", "contractsent", utc(2025, 1, 20, 9))
    fake.add_deal(
        "3",
        name="Gamma",
        owner_id="101",
        pipeline="default",
        stage="qualifiedtobuy",
        created_at=utc(2025, 1, 9, 9),
        amount="400.50",
    )
    fake.move_deal("3", "closedlost", utc(2025, 2, 5, 9))
    return fake


# --- fixtures and helpers for the sync tests ---------------------------------------------------
# Each fixture is requested by a short name (`server`, `connection`) but defined as `fixture_*`,
# so a test's parameter does not shadow the function its module imports (ruff F811).


@pytest.fixture(name="server")
def fixture_server(fake, settings):
    """Serve the requesting module's `fake` fixture on loopback for one test."""
    # Outbound CRM requests reject 127.0.0.1 unless this is on.
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    with FakeCrmServer(fake) as server:
        yield server


@pytest.fixture(name="connection")
def fixture_connection(org, server) -> CrmConnection:
    """The `org` connection to the fake CRM with the token it accepts, syncing its first pipeline."""
    pipelines = server.fake.pipeline_choices()
    with scopes_disabled():
        return CrmConnection.objects.create(
            organization=org,
            provider=server.fake.provider,
            base_url=server.base_url,
            access_token=server.fake.token,
            pipeline_ids=[pipelines[0]["id"]],
            available_pipelines=pipelines,
        )


def sync(connection: CrmConnection, waits: list[float] | None = None) -> CrmSyncRun:
    """Queue and run one sync of `connection` in this process.

    `waits` collects the Retry-After seconds of the 429 responses the sync waited for.
    """
    with scope(organization=connection.organization):
        connection.refresh_from_db()
        run = crm_sync_request(connection=connection, trigger=SyncTrigger.MANUAL)
        assert run is not None
        run = crm_sync_run(run=run, sleep=(waits.append if waits is not None else lambda seconds: None))
        run.refresh_from_db()
        connection.refresh_from_db()
    return run
