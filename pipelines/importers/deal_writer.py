"""Writing parsed deals and their stage history, shared by the Pipedrive, HubSpot, Salesforce and generic importers.

Deals are matched by (source, external id). Stage history is only ever appended: a
move already stored (same deal, target stage and instant) is skipped, so re-importing
the same or a newer export adds only the moves that are new. Two kinds of export exist:

- With history (Pipedrive change log, HubSpot "Date entered" columns, Salesforce
  OpportunityHistory): each move in the file is stored as recorded.
- Snapshots (a deals list with the current stage and the won/lost time): a new deal gets
  the implied moves "entered its stage when created" and "closed at the close time".
  When a later snapshot shows another stage, one implied move is appended, at the close
  time for a closed deal and at the import time for an open one, because the export does
  not say when the deal moved. Every stored move of the deal that the import keeps counts
  as an unchanged stage change.

When an import moves a deal's creation earlier (a recorded move earlier on the creation day,
or a snapshot with an earlier `created_at`), the implied entry move at the old creation time
is stale. Recorded history replaces it, because its earliest move states the stage the deal
entered when created. A snapshot moves it to the new creation time.

Status and `closed_at` are then derived from the history by `deal_close_state_refresh`.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext_noop

from integrations.webhooks.events import deal_stage_changes_emit
from pipelines.importers.base import (
    ExchangeRateTable,
    ImportResult,
    Message,
    RowRejected,
    bulk_upsert,
    chunked,
    convert_amount,
    fetch_by_keys,
)
from pipelines.importers.people import PeopleDirectory, Person
from pipelines.models import Deal, DealStageChange, Pipeline, Stage, StageKind
from pipelines.services import deal_close_state_refresh
from spm.models import Organization

logger = logging.getLogger(__name__)

WON_WORDS = ("closed won", "won", "gewonnen", "abgeschlossen gewonnen")
LOST_WORDS = ("closed lost", "lost", "verloren", "abgeschlossen verloren")


@dataclass(frozen=True)
class Move:
    """A deal entering `stage_id` at `changed_at`; implied moves are derived, not read from history."""

    stage_id: int
    changed_at: dt.datetime
    is_implied: bool = False


@dataclass
class DealRecord:
    """One deal as the file states it. `values` are Deal fields by attribute name (`owner_id`, …)."""

    line: int
    external_id: str
    values: dict
    # Recorded history in any order; empty for snapshot exports.
    moves: list[Move] = field(default_factory=list)
    # Snapshot exports: the stage the deal entered when it was created, and the time it was won or lost.
    entry_stage_id: int | None = None
    closed_at: dt.datetime | None = None
    # The owner as the file names them; `deal_owners_assign` turns it into `owner_id` once the row is accepted.
    owner: Person | None = None
    # Importers that plan stages (`PipelineStages.plan`) set these in place of `pipeline_id`, `stage_id`,
    # `entry_stage_id` and `moves`, because a new stage has no id until `deal_stages_assign` creates it.
    stages: "PipelineStages | None" = None
    stage: Stage | None = None
    entry_stage: Stage | None = None
    planned_moves: list["PlannedMove"] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedMove:
    """A move into `stage`, which may be a planned stage without an id. `deal_stages_assign` turns it into a Move."""

    stage: Stage
    changed_at: dt.datetime
    is_implied: bool = False


def stage_kind_from_name(name: str) -> str:
    """Return won or lost for stage names such as "Closed Won" or "Verloren", else open."""
    folded = name.strip().casefold()
    if folded in WON_WORDS or folded.endswith(" won") or folded.endswith("gewonnen"):
        return StageKind.WON
    if folded in LOST_WORDS or folded.endswith(" lost") or folded.endswith("verloren"):
        return StageKind.LOST
    return StageKind.OPEN


def close_time_missing(*, column: str, in_file: bool, needs: Message) -> RowRejected:
    """Return the rejection of a won or lost row whose close time is empty, naming its column.

    `column` is the export's column for the close time, `in_file` whether the
    file has it, and `needs` the sentence saying what the deal needs (e.g. "a
    won deal needs its won time"). The reason states how to fix the file:
    fill in the cell, or export the file with that column.
    """
    if in_file:
        return RowRejected(column, "", gettext_noop("missing value; %(needs)s, so fill in this cell"), needs=needs)
    return RowRejected(
        Message(gettext_noop("%(column)s (not in the file)"), {"column": column}),
        "",
        gettext_noop("missing value; %(needs)s, so export the file with this column"),
        needs=needs,
    )


def stage_entry_check(
    *,
    entered_at: dt.datetime,
    created_at: dt.datetime,
    time_zone: dt.tzinfo,
    column: "str | Message",
    value: str,
    created_in: "str | Message",
) -> None:
    """Raise RowRejected when a stage move at `entered_at` lies on an earlier day than the deal's creation.

    Days are compared in the organization's `time_zone`, because KPIs count a deal's
    creation by day. A move earlier on the creation day is accepted, and the importer
    moves the creation time to it: a creation date without a time is stored at 12:00 UTC,
    so the first move of that day often precedes it. `column` and `value` name the move's
    cell, and `created_in` names where the creation time comes from (e.g. "Create Date").
    """
    entered_day = entered_at.astimezone(time_zone).date()
    created_day = created_at.astimezone(time_zone).date()
    if entered_day < created_day:
        raise RowRejected(
            column,
            value,
            gettext_noop(
                "stage change on %(entered)s is before the deal was created on %(created)s (%(created_in)s); "
                "correct one of the two dates"
            ),
            entered=entered_day,
            created=created_day,
            created_in=created_in,
        )


def pipeline_by_name(organization: Organization, name: str) -> Pipeline | None:
    """Return the organization's pipeline named `name`, ignoring case and surrounding spaces, or None.

    An exact match wins over one that differs in case. The comparison uses str.casefold in
    Python, because SQLite's case-insensitive lookups fold only ASCII letters.
    """
    name = name.strip()
    matches = [
        pipeline
        for pipeline in Pipeline.objects.filter(organization=organization).order_by("pk")
        if pipeline.name.strip().casefold() == name.casefold()
    ]
    exact = [pipeline for pipeline in matches if pipeline.name == name]
    if exact:
        return exact[0]
    return matches[0] if matches else None


class PipelineStages:
    """A pipeline's stages by case-insensitive name, with the missing stages and pipeline created only when used.

    The pipeline, too, is found by its name ignoring case and surrounding spaces, so the
    stored spelling is kept.

    `plan` returns a missing stage unsaved, and `planned_create` inserts the planned stages
    that accepted rows use, so a row rejected after naming a new stage creates nothing. `get`
    inserts a missing stage at once, for stages that a file lists apart from its deal rows.
    The pipeline is inserted with its first new stage, or by `pipeline_save`.

    Existing stages keep their order, kind and probability, because an admin may have
    tuned them. New stages are appended in the order they were first planned, and
    `order_closed_last` then moves won and lost stages after the open ones.
    """

    def __init__(self, *, organization: Organization, name: str):
        self.organization = organization
        name = name.strip()
        pipeline = pipeline_by_name(organization, name)
        if pipeline is None:
            self.pipeline = Pipeline(organization=organization, name=name[:200])
            self.stages: dict[str, Stage] = {}
        else:
            self.pipeline = pipeline
            self.stages = {stage.name.casefold(): stage for stage in Stage.objects.filter(pipeline=pipeline)}

    def pipeline_save(self) -> Pipeline:
        """Insert the pipeline if it is new, and return it. The organization's first pipeline becomes its default."""
        if self.pipeline.pk is None:
            self.pipeline.is_default = not Pipeline.objects.filter(organization=self.organization, is_default=True).exists()
            self.pipeline.save()
            logger.info("Import created pipeline organization_id=%s pipeline_id=%s", self.organization.pk, self.pipeline.pk)
        return self.pipeline

    def plan(self, name: str, *, kind: str | None = None, probability: int | None = None) -> Stage:
        """Return the stage named `name`. A new stage is returned unsaved, with the kind and probability of its first request."""
        stage = self.stages.get(name.strip().casefold())
        if stage is not None:
            return stage
        kind = kind or stage_kind_from_name(name)
        if probability is None:
            probability = {StageKind.WON: 100, StageKind.LOST: 0}.get(kind, 0)
        stage = Stage(
            organization=self.organization,
            pipeline=self.pipeline,
            name=name.strip()[:200],
            kind=kind,
            probability=probability,
        )
        self.stages[stage.name.casefold()] = stage
        return stage

    def get(self, name: str, *, kind: str | None = None, probability: int | None = None) -> Stage:
        """Return the stage named `name`, inserting it (and the pipeline) now if it is new."""
        stage = self.plan(name, kind=kind, probability=probability)
        if stage.pk is None:
            self.planned_create([stage])
        return stage

    def planned_create(self, used: Iterable[Stage]) -> None:
        """Insert the planned stages of this pipeline that are among `used`, in one statement.

        They are numbered after the stages stored so far, in the order they were planned.
        Stages of other pipelines in `used` are ignored. Planned stages that are not used
        stay unsaved and out of `order_closed_last`.
        """
        # Unsaved model instances are unhashable, so they are matched by identity.
        used_ids = {id(stage) for stage in used if stage.pk is None}
        new = [stage for stage in self.stages.values() if id(stage) in used_ids]
        if not new:
            return
        orders = [stage.order for stage in self.stages.values() if stage.pk is not None]
        first_order = max(orders, default=0) + 1
        for offset, stage in enumerate(new):
            stage.order = first_order + offset
        self.pipeline_save()
        Stage.objects.bulk_create(new)

    def order_closed_last(self) -> None:
        """Renumber the stored stages so open stages keep their relative order and won, then lost stages follow."""
        ranked = sorted(
            (stage for stage in self.stages.values() if stage.pk is not None),
            key=lambda stage: ({StageKind.OPEN: 0, StageKind.WON: 1, StageKind.LOST: 2}[stage.kind], stage.order),
        )
        changed = []
        for index, stage in enumerate(ranked, start=1):
            if stage.order != index:
                stage.order = index
                changed.append(stage)
        if changed:
            Stage.objects.bulk_update(changed, ["order"])


class BaseAmountConverter:
    """Converts amounts to the organization's currency at the rate valid on a date, one table per currency."""

    def __init__(self, *, organization: Organization, today: dt.date):
        self.organization = organization
        self.today = today
        self.tables: dict[str, ExchangeRateTable] = {}

    def convert(self, amount: Decimal | None, currency: str, on: dt.date | None, column: str, value: str) -> Decimal | None:
        """Return the amount in base currency; on None means an open deal (today's rate). Rejects without a rate."""
        if amount is None or currency == self.organization.currency:
            return amount
        table = self.tables.get(currency)
        if table is None:
            table = self.tables[currency] = ExchangeRateTable(organization=self.organization, currency=currency)
        day = on or self.today
        rate = table.rate_on(day)
        if rate is None:
            raise RowRejected(
                column,
                value,
                gettext_noop(
                    "no exchange rate for %(currency)s valid on %(date)s; upload rates for %(currency)s "
                    "valid from that date or earlier"
                ),
                currency=currency,
                date=day,
            )
        return convert_amount(amount, rate, column=column, value=value)


def deal_owners_assign(
    *,
    directory: PeopleDirectory,
    records: list[DealRecord],
    column: str,
    reject: Callable[[DealRecord, RowRejected], None],
) -> list[DealRecord]:
    """Set `owner_id` and `territory_id` of accepted `records`, creating the members they name, and return them.

    Importers call this after checking every row, so people named only in rejected rows
    are never created. A record whose owner `ensure` could not create (their generated
    e-mail address belongs to another name) is passed to `reject` with the file's owner
    `column` and left out of the returned list.
    """
    people = {record.owner.key: record.owner for record in records if record.owner is not None}
    members = directory.ensure(list(people.values()))
    accepted = []
    for record in records:
        if record.owner is None:
            accepted.append(record)
            continue
        membership = members.get(record.owner.key)
        if membership is None:
            reject(record, directory.conflict_rejection(record.owner.key, column))
            continue
        record.values["owner_id"] = membership.pk
        record.values["territory_id"] = membership.territory_id
        accepted.append(record)
    return accepted


def deal_stages_assign(*, records: list[DealRecord], pipelines: Iterable[PipelineStages]) -> None:
    """Insert the planned stages that `records` use and set the records' stage ids and moves from their planned stages.

    Importers that plan stages call this with the accepted records only, after every row
    is checked and owners are assigned, so a stage or pipeline named only in rejected rows
    is never created. Sets `pipeline_id`, `stage_id` and `entry_stage_id` where the record
    names a pipeline or stage, and turns `planned_moves` into `moves`. Runs one stage
    insert per pipeline that gets new stages, and one insert per new pipeline, however
    many records there are.
    """
    used = []
    for record in records:
        used.extend(stage for stage in (record.stage, record.entry_stage) if stage is not None)
        used.extend(move.stage for move in record.planned_moves)
    for pipeline_stages in pipelines:
        pipeline_stages.planned_create(used)

    for record in records:
        if record.stages is not None:
            record.values["pipeline_id"] = record.stages.pipeline_save().pk
        if record.stage is not None:
            record.values["stage_id"] = record.stage.pk
        if record.entry_stage is not None:
            record.entry_stage_id = record.entry_stage.pk
        if record.planned_moves:
            record.moves = [Move(move.stage.pk, move.changed_at, move.is_implied) for move in record.planned_moves]


def deals_write(
    *,
    organization: Organization,
    source: str,
    records: list[DealRecord],
    result: ImportResult,
    observed_at: dt.datetime,
) -> dict[str, Deal]:
    """Upsert `records` as deals of `source`, append their new stage moves and refresh their status.

    `observed_at` is the time an appended snapshot move of an open deal gets (the import
    time). Custom fields are merged into the existing ones. Returns the deals by external id.
    """
    keys = [record.external_id for record in records]
    existing = fetch_by_keys(Deal.all_objects.filter(organization=organization, source=source), "external_id", keys)
    # `bulk_upsert` overwrites `created_at` in place, and `stage_moves_append` finds implied entries by the old value.
    created_before = {deal.pk: deal.created_at for deal in existing.values()}
    desired = {}
    for record in records:
        values = dict(record.values)
        current = existing.get(record.external_id)
        if current is not None and "custom_fields" in values:
            values["custom_fields"] = {**current.custom_fields, **values["custom_fields"]}
        if current is not None and record.moves:
            # The stage comes from the history, which may also contain moves made in the product.
            values.pop("stage_id", None)
        desired[record.external_id] = values
    outcome = bulk_upsert(
        model=Deal,
        existing=existing,
        desired=desired,
        build=lambda key, values: Deal(organization=organization, source=source, external_id=key, **values),
    )
    result.deal_keys.extend(keys)

    moved_ids = stage_moves_append(
        organization=organization,
        records=records,
        deals=outcome.instances,
        result=result,
        observed_at=observed_at,
        created_before=created_before,
    )
    # A deal whose fields match but whose history grew has changed too: its stage moved.
    moved_keys = {key for key in outcome.unchanged if outcome.instances[key].pk in moved_ids}
    counts = result.counts["deals"]
    counts.created += len(outcome.created)
    counts.updated += len(outcome.updated) + len(moved_keys)
    counts.unchanged += len(outcome.unchanged) - len(moved_keys)
    changed_ids = {outcome.instances[key].pk for key in outcome.created | outcome.updated} | moved_ids
    deal_close_state_refresh(organization=organization, deal_ids=changed_ids)
    logger.info(
        "Deals imported organization_id=%s source=%s created=%s updated=%s unchanged=%s rejected=%s",
        organization.pk,
        source,
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.rejected,
    )
    return outcome.instances


def stage_moves_append(
    *,
    organization: Organization,
    records: list[DealRecord],
    deals: dict[str, Deal],
    result: ImportResult,
    observed_at: dt.datetime,
    created_before: dict[int, dt.datetime] | None = None,
) -> set[int]:
    """Insert the moves of `records` that are not stored yet and return the ids of deals whose history changed.

    Each new move's `from_stage` is the stage of the move before it in the merged
    history, and stored moves whose predecessor changed get their `from_stage` updated.
    Implied moves later than a snapshot's close time are deleted, because the file now
    states that the deal closed before them. An implied entry move at the deal's old
    creation time is deleted or moved when the import moves the creation earlier
    (`implied_entry_update`). `created_before` holds the deals' creation times before this
    import by deal id, for callers that already wrote the new ones to `deals`.
    """
    deal_ids = [deals[record.external_id].pk for record in records]
    history: dict[int, list[tuple[dt.datetime, int, int, bool, int | None]]] = defaultdict(list)
    for batch in chunked(deal_ids, 900):
        rows = DealStageChange.all_objects.filter(organization=organization, deal_id__in=batch).values_list(
            "deal_id", "changed_at", "id", "to_stage_id", "is_implied", "from_stage_id"
        )
        for deal_id, changed_at, change_id, to_stage_id, is_implied, from_stage_id in rows:
            history[deal_id].append((changed_at, change_id, to_stage_id, is_implied, from_stage_id))

    stage_kinds = dict(Stage.objects.filter(organization=organization).values_list("pk", "kind"))
    new_changes: list[DealStageChange] = []
    stale_ids: list[int] = []
    relinked: list[DealStageChange] = []
    changed_deal_ids: set[int] = set()
    counts = result.counts["stage_changes"]
    for record in records:
        deal = deals[record.external_id]
        stored = sorted(history.get(deal.pk, []))
        previous_created = (created_before or {}).get(deal.pk, deal.created_at)
        if record.moves:
            # Of two moves at the same time, the one listed later is stored later and so becomes the deal's stage.
            expected = sorted(dict.fromkeys(record.moves), key=lambda move: move.changed_at)
            stale = []
        else:
            expected, stale = snapshot_moves(record, stored, stage_kinds, deal, observed_at)
        remaining = [entry for entry in stored if entry[1] not in stale]
        entry_stale, moved_entries = implied_entry_update(record, remaining, previous_created)
        stale = stale + entry_stale
        expected = sorted(moved_entries + expected, key=lambda move: move.changed_at)
        stale_ids.extend(stale)
        stored = [entry for entry in stored if entry[1] not in stale]
        present = {(to_stage_id, changed_at) for changed_at, _id, to_stage_id, _implied, _from in stored}
        fresh = [move for move in expected if (move.stage_id, move.changed_at) not in present]
        if record.moves:
            counts.unchanged += len(expected) - len(fresh)
        else:
            # A snapshot restates the deal's whole known history, so every stored move it keeps is unchanged.
            counts.unchanged += len(stored)
        if not fresh and not stale:
            continue
        changed_deal_ids.add(deal.pk)
        # Stored moves sort before new ones at the same time, and stored ones among themselves by id.
        timeline = [(changed_at, 0, change_id, to_stage_id, from_id) for changed_at, change_id, to_stage_id, _i, from_id in stored]
        timeline += [(move.changed_at, 1, position, move.stage_id, None) for position, move in enumerate(fresh)]
        timeline.sort(key=lambda entry: entry[:3])
        last = None
        for changed_at, is_new, key, to_stage_id, from_stage_id in timeline:
            if is_new:
                move = fresh[key]
                new_changes.append(
                    DealStageChange(
                        organization=organization,
                        deal_id=deal.pk,
                        from_stage_id=last,
                        to_stage_id=move.stage_id,
                        changed_at=move.changed_at,
                        is_implied=move.is_implied,
                    )
                )
            elif from_stage_id != last:
                relinked.append(DealStageChange(pk=key, from_stage_id=last))
            last = to_stage_id
    for batch in chunked(stale_ids, 900):
        DealStageChange.all_objects.filter(organization=organization, pk__in=batch).delete()
    counts.deleted += len(stale_ids)
    DealStageChange.all_objects.bulk_update(relinked, ["from_stage_id"], batch_size=900)
    # Ids follow insertion order, which is time order per deal, so they break ties between equal times.
    new_changes.sort(key=lambda change: (change.deal_id, change.changed_at))
    DealStageChange.all_objects.bulk_create(new_changes, batch_size=1000)
    deal_stage_changes_emit(organization_id=organization.pk, changes=new_changes)
    counts.created += len(new_changes)
    return changed_deal_ids


def implied_entry_update(
    record: DealRecord, stored: list[tuple[dt.datetime, int, int, bool, int | None]], previous_created: dt.datetime
) -> tuple[list[int], list[Move]]:
    """Return (ids of stale implied entry moves, their replacements) when `record` moves the creation earlier.

    The implied entry is an implied move at `previous_created`, the stored creation time.
    The new creation time is the earliest of the record's `created_at` and its recorded
    moves. A recorded move at the new creation time states the stage the deal entered, so
    it replaces the entry. Otherwise the entry moves to the new creation time.
    """
    created_at = record.values.get("created_at") or previous_created
    first_recorded = min((move.changed_at for move in record.moves), default=None)
    if first_recorded is not None:
        created_at = min(created_at, first_recorded)
    if created_at >= previous_created:
        return [], []
    entries = [
        (change_id, to_stage_id)
        for changed_at, change_id, to_stage_id, is_implied, _from_stage_id in stored
        if is_implied and changed_at == previous_created
    ]
    stale = [change_id for change_id, _stage_id in entries]
    if first_recorded == created_at:
        return stale, []
    return stale, [Move(to_stage_id, created_at, True) for _change_id, to_stage_id in entries]


def snapshot_moves(
    record: DealRecord,
    stored: list[tuple[dt.datetime, int, int, bool, int | None]],
    stage_kinds: dict[int, str],
    deal: Deal,
    observed_at: dt.datetime,
) -> tuple[list[Move], list[int]]:
    """Return (moves to store, ids of implied moves to delete) for a deal from a snapshot export."""
    stage_id = record.values["stage_id"]
    is_closed = stage_kinds.get(stage_id) in (StageKind.WON, StageKind.LOST)
    created_at = record.values.get("created_at") or deal.created_at
    if not stored:
        entry_stage_id = record.entry_stage_id or stage_id
        if entry_stage_id == stage_id and is_closed and record.closed_at is not None:
            # The export names no open stage: the deal's only known move is its close.
            return [Move(stage_id, record.closed_at, True)], []
        moves = [Move(entry_stage_id, created_at, True)]
        if is_closed and record.closed_at is not None and entry_stage_id != stage_id:
            moves.append(Move(stage_id, max(record.closed_at, created_at), True))
        elif entry_stage_id != stage_id:
            moves.append(Move(stage_id, max(observed_at, created_at), True))
        return moves, []

    latest_at, _id, latest_stage_id, _implied, _from = stored[-1]
    if is_closed and record.closed_at is not None:
        if latest_stage_id == stage_id and latest_at == record.closed_at:
            return [Move(stage_id, record.closed_at, True)], []
        stale = [change_id for changed_at, change_id, _stage, implied, _from in stored if implied and changed_at > record.closed_at]
        return [Move(stage_id, record.closed_at, True)], stale
    if latest_stage_id == stage_id:
        # Nothing moved since the last import.
        return [], []
    return [Move(stage_id, max(observed_at, latest_at), True)], []
