"""CRM data as both provider clients return it, before the import core writes it.

Ids are the CRM's own ids as strings. Times are aware datetimes in UTC. A deal's `moves`
are its stage history in time order: every entry into a stage, including the first one.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class CrmOwner:
    external_id: str
    email: str
    name: str


@dataclass(frozen=True)
class CrmStage:
    external_id: str
    name: str
    order: int
    kind: str  # open, won or lost (pipelines.models.StageKind)
    probability: int  # default win probability in percent


@dataclass(frozen=True)
class CrmPipeline:
    external_id: str
    name: str
    stages: tuple[CrmStage, ...]


@dataclass(frozen=True)
class CrmStageMove:
    stage_external_id: str
    changed_at: dt.datetime


@dataclass
class CrmDeal:
    external_id: str
    name: str
    owner_external_id: str
    pipeline_external_id: str
    stage_external_id: str
    amount: Decimal | None
    currency: str
    created_at: dt.datetime
    modified_at: dt.datetime
    expected_close_on: dt.date | None = None
    lost_reason: str = ""
    moves: list[CrmStageMove] = field(default_factory=list)


@dataclass(frozen=True)
class CrmDeletedDeal:
    external_id: str
    deleted_at: dt.datetime


@dataclass
class CrmActivity:
    external_id: str
    kind: str  # call, email, meeting, task or note (pipelines.models.ActivityKind)
    type_name: str
    subject: str
    owner_external_id: str
    deal_external_id: str
    occurred_at: dt.datetime
    modified_at: dt.datetime
    duration: dt.timedelta | None = None
    is_done: bool = True
    outcome: str = ""


@dataclass
class CrmChanges:
    """Everything one run fetched, and the cursor to store once the import committed."""

    owners: list[CrmOwner] = field(default_factory=list)
    pipelines: list[CrmPipeline] = field(default_factory=list)
    deals: list[CrmDeal] = field(default_factory=list)
    deleted_deals: list[CrmDeletedDeal] = field(default_factory=list)
    activities: list[CrmActivity] = field(default_factory=list)
    cursor: dict[str, str] = field(default_factory=dict)
    request_count: int = 0


def cursor_advance(previous: str | None, seen: list[dt.datetime], started_at: dt.datetime) -> str | None:
    """Return the next cursor (ISO 8601, UTC) from the modification times seen in this run.

    The cursor is the latest time seen, but never later than the run's start. A record
    changed while the run paged through the results may sort before a page already read,
    and only a cursor at or before the start is certain to fetch it next time. With
    nothing seen the previous cursor stays.
    """
    if not seen:
        return previous
    return min(max(seen), started_at).astimezone(dt.timezone.utc).isoformat()


def cursor_parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value)
