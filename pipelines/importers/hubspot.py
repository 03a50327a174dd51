"""Importer for HubSpot's deals export (CSV or XLSX), with the stage history rebuilt from "Date entered" columns.

The export has one row per deal: `Record ID`, `Deal Name`, `Deal Stage`, `Pipeline`,
`Amount`, `Deal owner`, `Create Date`, `Close Date`, and for every stage of every
pipeline a column `Date entered "<Stage> (<Pipeline>)"`. Each filled "Date entered"
cell of the deal's pipeline becomes a recorded stage move. A deal without any becomes a
snapshot: it entered its stage when created and, if closed, closed on `Close Date`.

Stages are ordered as their columns appear, with won and lost stages last. A stage
whose name ends in "Won" or "Lost" (or "gewonnen"/"verloren") is a won or lost stage.
`Deal Stage` decides the deal's stage and status: a row whose current stage was not
entered last, or with a "Date entered" or `Close Date` on an earlier day than
`Create Date`, is rejected. A `Close Date` earlier on the creation day, with or
without a time, is stored at the creation time.
A pipeline and its stages are created only once an accepted deal is in that pipeline.
Then every stage that its "Date entered" columns list is created, and of the stages
named only in rows, those that accepted deals use.
`Close Date` is the expected close date of open deals. Amounts are in the column
`Currency` or `Deal currency code` when present, else in the file's currency.

NOTE: HubSpot keeps only the latest entry into each stage, so a deal that entered a
stage twice shows one move there; earlier stays are not in the export.
"""

import datetime as dt
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext_noop

from pipelines.importers.base import (
    ImportResult,
    ImportSourceError,
    Message,
    RowRejected,
    value_excerpt,
)
from pipelines.importers.deal_writer import (
    BaseAmountConverter,
    DealRecord,
    PipelineStages,
    PlannedMove,
    close_time_missing,
    deal_owners_assign,
    deal_stages_assign,
    deals_write,
    stage_entry_check,
)
from pipelines.importers.formats import (
    Table,
    import_date_range,
    parse_day,
    parse_moment,
    parse_money,
    table_read,
    text_cell,
)
from pipelines.importers.people import PeopleDirectory, Person
from pipelines.models import Stage, StageKind
from spm.models import Organization

logger = logging.getLogger(__name__)

SOURCE = "hubspot"
REQUIRED_COLUMNS = ("Record ID", "Deal Stage", "Deal owner", "Create Date")
DATE_ENTERED = re.compile(r'^Date entered [“"](?P<stage>.+) \((?P<pipeline>[^()]+)\)[”"]$')
CURRENCY_COLUMNS = ("Currency", "Deal currency code", "Currency code")
DEFAULT_PIPELINE = "Sales Pipeline"
PROGRESS_STEP = 500
# The maximum length of Pipeline.name and Stage.name.
NAME_MAX_LENGTH = 200


def hubspot_import(
    *,
    organization: Organization,
    path: Path,
    currency: str,
    today: dt.date,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the HubSpot deals export found in folder `path` (the first file with a `Record ID` column)."""
    for candidate in sorted(path.iterdir()) if path.is_dir() else [path]:
        if candidate.suffix.lower() in (".csv", ".xlsx", ".txt"):
            table = table_read(candidate, columns=("Record ID",))
            if "Record ID" in table.header:
                importer = HubSpotImport(
                    organization=organization, table=table, folder=path, currency=currency, today=today, options=options or {}
                )
                importer.result.progress = progress
                return importer.run()
    raise ImportSourceError(Message(gettext_noop("No HubSpot deals export found: expected a CSV or XLSX file with the column \"Record ID\".")))


def entered_names_check(column: str, stage_name: str, pipeline_name: str) -> None:
    """Raise ImportSourceError when a "Date entered" column names a stage or pipeline longer than the name columns.

    A name cut to fit would not match the same stage in the next row, so the import would
    plan it twice.
    """
    if len(stage_name) > NAME_MAX_LENGTH or len(pipeline_name) > NAME_MAX_LENGTH:
        raise ImportSourceError(
            Message(
                gettext_noop(
                    "Column %(column)s names a stage or pipeline longer than %(max_length)s characters. Shorten the "
                    "name in HubSpot and export the deals again."
                ),
                {"column": value_excerpt(column), "max_length": NAME_MAX_LENGTH},
            )
        )


class HubSpotImport:
    def __init__(self, *, organization, table: Table, folder: Path, currency: str, today: dt.date, options: dict):
        self.organization = organization
        self.table = table
        self.currency = currency
        self.today = today
        self.date_order = options.get("date_order", "")
        self.allowed_days = import_date_range(today)
        self.time_zone = organization.tzinfo
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)
        self.pipelines: dict[str, PipelineStages] = {}

    def moment(self, row: dict, column: str) -> dt.datetime | None:
        value = row.get(column, "")
        if not value:
            return None
        return parse_moment(value, column, time_zone=self.time_zone, date_order=self.date_order, allowed=self.allowed_days)

    def stages_for(self, pipeline_name: str) -> PipelineStages:
        """Return the stages of the pipeline named `pipeline_name`, ignoring case and surrounding spaces."""
        key = pipeline_name.strip().casefold()
        stages = self.pipelines.get(key)
        if stages is None:
            stages = self.pipelines[key] = PipelineStages(organization=self.organization, name=pipeline_name)
        return stages

    def run(self) -> ImportResult:
        table = self.table
        table.require_columns(REQUIRED_COLUMNS)
        entered_columns = []
        for column in table.header:
            if match := DATE_ENTERED.match(column):
                entered_columns.append((column, match["stage"].strip(), match["pipeline"].strip()))
                entered_names_check(column, match["stage"].strip(), match["pipeline"].strip())
        # Plan the listed stages in column order first, so the pipeline's order follows HubSpot's.
        listed: dict[str, list[Stage]] = defaultdict(list)
        for _column, stage_name, pipeline_name in entered_columns:
            listed[pipeline_name.casefold()].append(self.stages_for(pipeline_name).plan(stage_name))

        converter = BaseAmountConverter(organization=self.organization, today=self.today)
        records = []
        first_line: dict[str, int] = {}
        for index, (line, row) in enumerate(table.rows, start=1):
            try:
                records.append(self.record(line, row, entered_columns, converter, first_line))
            except RowRejected as rejection:
                self.result.reject("deals", table.file_name, line, rejection)
            if index % PROGRESS_STEP == 0:
                self.result.report_progress(index, len(table.rows))
        records = deal_owners_assign(
            directory=PeopleDirectory(organization=self.organization, result=self.result),
            records=records,
            column="Deal owner",
            reject=lambda record, rejection: self.result.reject("deals", table.file_name, record.line, rejection),
        )
        # A pipeline that accepted deals are in gets every stage its columns list, numbered before the stages named only in rows.
        used = {id(record.stages) for record in records}
        for pipeline_key, stages in self.pipelines.items():
            if id(stages) in used:
                stages.planned_create(listed[pipeline_key])
        deal_stages_assign(records=records, pipelines=self.pipelines.values())
        for stages in self.pipelines.values():
            stages.order_closed_last()
        deals_write(
            organization=self.organization, source=SOURCE, records=records, result=self.result, observed_at=timezone.now()
        )
        self.result.report_progress(len(table.rows), len(table.rows))
        return self.result

    def recorded_moves(self, row, entered_columns, pipeline_name, stage, created_at) -> list[PlannedMove]:
        """Return the moves of the row's filled "Date entered" cells of its pipeline, the current `stage` last.

        Rejects the row when a move lies on an earlier day than `Create Date`. Also rejects
        it when another stage was entered after the current stage, because HubSpot stores
        the latest entry into each stage. There the `Deal Stage` column and the dates disagree.
        """
        stages = self.stages_for(pipeline_name)
        entries = []
        for column, entered_stage, entered_pipeline in entered_columns:
            if entered_pipeline.casefold() != pipeline_name.casefold() or not row.get(column):
                continue
            entered_at = self.moment(row, column)
            stage_entry_check(
                entered_at=entered_at,
                created_at=created_at,
                time_zone=self.time_zone,
                column=column,
                value=row[column],
                created_in="Create Date",
            )
            entries.append((column, PlannedMove(stages.plan(entered_stage), entered_at)))
        current_at = next((move.changed_at for _column, move in entries if move.stage is stage), None)
        for column, move in entries:
            if current_at is not None and move.changed_at > current_at:
                raise RowRejected(
                    column,
                    row[column],
                    gettext_noop(
                        "later than the entry into the current stage %(stage)s on %(current)s, so Deal Stage and "
                        "the Date entered columns disagree; correct one of them"
                    ),
                    stage=stage.name,
                    current=current_at.astimezone(self.time_zone).date(),
                )
        moves = [move for _column, move in entries]
        # Of two moves at the same time the one listed later is stored later, so the current stage goes last.
        moves.sort(key=lambda move: (move.changed_at, move.stage is stage))
        return moves

    def record(self, line, row, entered_columns, converter, first_line) -> DealRecord:
        external_id = text_cell(row.get("Record ID", ""), "Record ID", 200)
        if not external_id:
            raise RowRejected("Record ID", external_id, gettext_noop("missing value"))
        if external_id in first_line:
            raise RowRejected(
                "Record ID", external_id, gettext_noop("duplicate deal; first listed on line %(line)d"), line=first_line[external_id]
            )
        owner = row.get("Deal owner", "")
        if not owner:
            raise RowRejected("Deal owner", "", gettext_noop("missing value"))
        pipeline_name = text_cell(row.get("Pipeline", ""), "Pipeline", 200) or DEFAULT_PIPELINE
        stages = self.stages_for(pipeline_name)
        stage_name = text_cell(row.get("Deal Stage", ""), "Deal Stage", 200)
        if not stage_name:
            raise RowRejected("Deal Stage", stage_name, gettext_noop("missing value"))
        # Planned stages are created by `deal_stages_assign` only if the row is accepted.
        stage = stages.plan(stage_name)
        created_at = self.moment(row, "Create Date")
        if created_at is None:
            raise RowRejected("Create Date", "", gettext_noop("missing value"))

        moves = self.recorded_moves(row, entered_columns, pipeline_name, stage, created_at)
        close_date_text = row.get("Close Date", "")
        is_closed = stage.kind in (StageKind.WON, StageKind.LOST)
        closed_at = self.moment(row, "Close Date") if is_closed else None
        if is_closed and closed_at is None and not any(move.stage is stage for move in moves):
            raise close_time_missing(
                column="Close Date",
                in_file="Close Date" in self.table.header,
                needs=Message(gettext_noop("a won or lost deal needs its close date")),
            )
        if closed_at is not None and closed_at.astimezone(self.time_zone).date() < created_at.astimezone(self.time_zone).date():
            raise RowRejected("Close Date", close_date_text, gettext_noop("close date is before the creation date"))
        if moves and min(move.changed_at for move in moves) < created_at:
            # `recorded_moves` rejected moves on earlier days, so this stays on the creation day.
            created_at = min(move.changed_at for move in moves)
        if closed_at is not None:
            # A close on the creation day but before its time, such as a date alone at 12:00 UTC and
            # a deal created at 14:00 UTC, closes at the creation time: cycle days must not be negative.
            closed_at = max(closed_at, created_at)
        if moves and not any(move.stage is stage for move in moves):
            # The current stage lacks its "Date entered": it was entered at the close, or by the latest move.
            latest = max(move.changed_at for move in moves)
            moves.append(PlannedMove(stage, max(closed_at or latest, latest), is_implied=True))
        expected = None
        if close_date_text and not is_closed:
            expected = parse_day(close_date_text, "Close Date", date_order=self.date_order, allowed=self.allowed_days)

        currency = self.currency
        for column in CURRENCY_COLUMNS:
            if row.get(column):
                currency = row[column].strip().upper()
                break
        if len(currency) != 3 or not currency.isalpha():
            raise RowRejected("Currency", currency, gettext_noop("not a three-letter ISO currency code"))
        amount_text = row.get("Amount", "")
        amount = parse_money(amount_text, "Amount", currency=currency) if amount_text else None
        close_day = None
        if is_closed:
            close_moment = closed_at or max(move.changed_at for move in moves if move.stage is stage)
            close_day = close_moment.astimezone(self.time_zone).date()
        base_amount = converter.convert(amount, currency, close_day, "Amount", amount_text)
        first_line[external_id] = line
        return DealRecord(
            line=line,
            external_id=external_id,
            values={
                "name": text_cell(row.get("Deal Name", ""), "Deal Name", 300),
                "amount": amount,
                "currency": currency,
                "base_amount": base_amount,
                "created_at": created_at,
                "expected_close_on": expected,
            },
            closed_at=closed_at,
            owner=Person(key=owner, name=owner),
            stages=stages,
            stage=stage,
            entry_stage=stage,
            planned_moves=moves,
        )
