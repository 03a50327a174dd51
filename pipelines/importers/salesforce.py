"""Importer for a Salesforce Opportunity report export plus an OpportunityHistory export.

Both files may use report labels (`Opportunity ID`, `Stage`, `Close Date`, …) or API
field names (`Id`, `StageName`, `CloseDate`, …). The history file is recognized by
`OpportunityId` or `FromOpportunityStageName`. Each history row is a snapshot of the
opportunity at `CreatedDate`; a row whose `StageName` differs from the one before is a
stage move. Without a history file, or for an opportunity without history rows, the
opportunity is a snapshot: it entered its stage when created and closed on `CloseDate`.
A `CloseDate` on an earlier day than `CreatedDate` rejects the row, and one earlier on
the creation day closes the opportunity at its creation time (see `close_time_settle`).

Salesforce ids have a 15-character case-sensitive form and an 18-character form that
appends a checksum. Reports and data exports mix them, so opportunities are matched
by the first 15 characters.

A stage is won or lost by the opportunity's `Won`/`IsWon` and `Closed`/`IsClosed` flags
when the file has them, else by its name ("Closed Won", "Closed Lost"). A stage's
default probability is the `Probability` the file gives it. Only the stages that
accepted opportunities are in, or moved through, are created.
"""

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext_noop

from pipelines.importers.base import (
    ImportResult,
    ImportSourceError,
    Message,
    RowRejected,
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
    stage_kind_from_name,
)
from pipelines.importers.formats import (
    Table,
    close_time_settle,
    import_date_range,
    parse_bool,
    parse_day,
    parse_moment,
    parse_money,
    parse_percent,
    table_read,
    text_cell,
)
from pipelines.importers.people import PeopleDirectory, Person
from pipelines.models import StageKind
from spm.currencies import is_currency_code
from spm.models import Organization

logger = logging.getLogger(__name__)

SOURCE = "salesforce"
PIPELINE_NAME = "Salesforce"
PROGRESS_STEP = 500
# Each field's accepted column names: report label first, then API names.
OPPORTUNITY_COLUMNS = {
    "id": ("Opportunity ID", "Id", "ID", "Opportunity Id"),
    "name": ("Opportunity Name", "Name"),
    "stage": ("Stage", "StageName"),
    "amount": ("Amount",),
    "close_date": ("Close Date", "CloseDate"),
    "created": ("Created Date", "CreatedDate"),
    "owner": ("Opportunity Owner", "Owner.Name", "Owner Name", "Owner", "OwnerId"),
    "probability": ("Probability (%)", "Probability"),
    "currency": ("Opportunity Currency", "CurrencyIsoCode", "Currency"),
    "is_won": ("Won", "IsWon"),
    "is_closed": ("Closed", "IsClosed"),
    "lead_source": ("Lead Source", "LeadSource"),
}
HISTORY_COLUMNS = {
    "id": ("OpportunityId", "Opportunity ID"),
    "stage": ("StageName", "Stage"),
    "created": ("CreatedDate", "Created Date"),
    "probability": ("Probability", "Probability (%)"),
    "from_stage": ("FromOpportunityStageName",),
}


# The words a rejection uses for a stage kind.
KIND_WORDS = {StageKind.OPEN: gettext_noop("open"), StageKind.WON: gettext_noop("won"), StageKind.LOST: gettext_noop("lost")}


def salesforce_id(value: str) -> str:
    return value.strip()[:15]


def column_map(table: Table, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> dict[str, str]:
    """Return field → the column name this file uses; raise ImportSourceError if a required field has none."""
    mapping = {}
    for key, names in aliases.items():
        for name in names:
            if name in table.header:
                mapping[key] = name
                break
    missing = [aliases[key][0] for key in required if key not in mapping]
    if missing:
        raise ImportSourceError(
            Message(
                gettext_noop("File %(file)s is missing the required column(s): %(columns)s."),
                {"file": table.file_name, "columns": ", ".join(missing)},
            )
        )
    return mapping


def salesforce_import(
    *,
    organization: Organization,
    path: Path,
    currency: str,
    today: dt.date,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the opportunity file (and the history file, if any) found in folder `path`."""
    opportunities = history = None
    for candidate in sorted(path.iterdir()) if path.is_dir() else [path]:
        if candidate.suffix.lower() not in (".csv", ".xlsx", ".txt"):
            continue
        table = table_read(candidate)
        if "FromOpportunityStageName" in table.header or "OpportunityId" in table.header:
            history = table
        elif opportunities is None:
            opportunities = table
    if opportunities is None:
        raise ImportSourceError(Message(gettext_noop("No Salesforce opportunity export found: expected a CSV or XLSX file of opportunities.")))
    importer = SalesforceImport(
        organization=organization,
        opportunities=opportunities,
        history=history,
        folder=path,
        currency=currency,
        today=today,
        options=options or {},
    )
    importer.result.progress = progress
    return importer.run()


class SalesforceImport:
    def __init__(self, *, organization, opportunities: Table, history: Table | None, folder, currency, today, options):
        self.organization = organization
        self.opportunities = opportunities
        self.history = history
        self.currency = currency
        self.today = today
        self.date_order = options.get("date_order", "")
        self.allowed_days = import_date_range(today)
        self.time_zone = organization.tzinfo
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)
        self.stages = None

    def moment(self, row: dict, column: str | None) -> dt.datetime | None:
        value = row.get(column, "") if column else ""
        if not value:
            return None
        return parse_moment(value, column, time_zone=self.time_zone, date_order=self.date_order, allowed=self.allowed_days)

    def run(self) -> ImportResult:
        columns = column_map(self.opportunities, OPPORTUNITY_COLUMNS, ("id", "stage", "created", "owner"))
        history_columns = None
        if self.history is not None:
            history_columns = column_map(self.history, HISTORY_COLUMNS, ("id", "stage", "created"))
        self.total = len(self.opportunities.rows) + (len(self.history.rows) if self.history else 0)
        self.stages = PipelineStages(organization=self.organization, name=PIPELINE_NAME)
        # Stages are planned in the file's order, and `deal_stages_assign` creates those that accepted rows use.
        self.stage_kinds_store(self.stage_kinds(columns))
        report_ids = {salesforce_id(row.get(columns["id"], "")) for _line, row in self.opportunities.rows}
        history = self.read_history(history_columns, report_ids) if history_columns else {}

        converter = BaseAmountConverter(organization=self.organization, today=self.today)
        records = []
        first_line: dict[str, int] = {}
        for index, (line, row) in enumerate(self.opportunities.rows, start=1):
            try:
                records.append(self.record(line, row, columns, history, converter, first_line))
            except RowRejected as rejection:
                self.result.reject("deals", self.opportunities.file_name, line, rejection)
            if index % PROGRESS_STEP == 0:
                self.result.report_progress(index, self.total)
        records = deal_owners_assign(
            directory=PeopleDirectory(organization=self.organization, result=self.result),
            records=records,
            column=columns["owner"],
            reject=lambda record, rejection: self.result.reject("deals", self.opportunities.file_name, record.line, rejection),
        )
        deal_stages_assign(records=records, pipelines=[self.stages])
        self.stages.order_closed_last()
        deals_write(
            organization=self.organization, source=SOURCE, records=records, result=self.result, observed_at=timezone.now()
        )
        self.result.report_progress(self.total, self.total)
        return self.result

    def flags_kind(self, row: dict, columns: dict[str, str]) -> str | None:
        """Return the kind the row's Won and Closed flags give, or None when the file or row has no Closed flag.

        Raises RowRejected for a flag that is no yes/no value, and for Won without Closed.
        """
        closed_column = columns.get("is_closed")
        if not closed_column or not row.get(closed_column):
            return None
        is_closed = parse_bool(row[closed_column], closed_column)
        won_column = columns.get("is_won")
        is_won = bool(won_column) and parse_bool(row.get(won_column, ""), won_column)
        if is_won and not is_closed:
            raise RowRejected(
                closed_column,
                row[closed_column],
                gettext_noop(
                    "%(won_column)s=%(won)s with %(closed_column)s=%(closed)s is contradictory, because a won "
                    "opportunity is closed; correct the flags in Salesforce and export again"
                ),
                won_column=won_column,
                won=row[won_column],
                closed_column=closed_column,
                closed=row[closed_column],
            )
        if not is_closed:
            return StageKind.OPEN
        return StageKind.WON if is_won else StageKind.LOST

    def stage_kinds(self, columns: dict[str, str]) -> dict[str, str | None]:
        """Return each stage name of the opportunity file, in file order → its kind, decided by most of its rows' flags.

        In Salesforce the Won/Closed flags belong to the stage, so every row of a stage should
        agree. On a tie the kind the name implies ("Closed Won") wins if it is among the tied
        kinds, else the kind of the stage's first flagged row. A stage without flagged rows
        maps to None: it keeps its stored kind, or gets the kind its name implies.
        `record` rejects the rows whose flags disagree with the decided kind.
        """
        names: dict[str, str] = {}
        flagged: dict[str, list[str]] = defaultdict(list)
        for _line, row in self.opportunities.rows:
            name = row.get(columns["stage"], "").strip()
            if not name:
                continue
            key = name.casefold()
            names.setdefault(key, name)
            try:
                kind = self.flags_kind(row, columns)
            except RowRejected:
                continue  # `record` rejects the row for its flags.
            if kind is not None:
                flagged[key].append(kind)
        kinds: dict[str, str | None] = {}
        for key, name in names.items():
            if not flagged[key]:
                kinds[name] = None
                continue
            counts = Counter(flagged[key])
            top = max(counts.values())
            tied = [kind for kind in flagged[key] if counts[kind] == top]
            name_kind = stage_kind_from_name(name)
            kinds[name] = name_kind if name_kind in tied else tied[0]
        return kinds

    def stage_kinds_store(self, kinds: dict[str, str | None]) -> None:
        """Plan each stage with its decided kind, and correct the kind of a stored stage that the flags contradict.

        An earlier import may have stored a wrong kind, so the flags of the current file
        decide. A probability left at the old kind's default (100 won, 0 lost) moves to the
        new kind's default. NOTE: deals of the stage that this file does not list keep their
        stored status until a file lists them again.
        """
        defaults = {StageKind.WON: 100, StageKind.LOST: 0, StageKind.OPEN: 0}
        for stage_name, kind in kinds.items():
            stage = self.stages.plan(stage_name, kind=kind)
            if kind is None or stage.pk is None or stage.kind == kind:
                continue
            logger.info(
                "Salesforce import changed a stage's kind organization_id=%s stage_id=%s old=%s new=%s",
                self.organization.pk,
                stage.pk,
                stage.kind,
                kind,
            )
            if stage.probability == defaults[stage.kind]:
                stage.probability = defaults[kind]
            stage.kind = kind
            stage.save(update_fields=["kind", "probability"])

    def read_history(self, columns: dict[str, str], report_ids: set[str]) -> dict[str, list[PlannedMove]]:
        """Return opportunity id (15 characters) → recorded moves.

        Rejects rows with a bad date, and rows of an opportunity that is not in the report,
        because the history alone lacks the owner and creation date a deal needs.
        """
        snapshots = defaultdict(list)
        for line, row in self.history.rows:
            try:
                opportunity_id = salesforce_id(row.get(columns["id"], ""))
                if not opportunity_id:
                    raise RowRejected(columns["id"], "", gettext_noop("missing value"))
                if opportunity_id not in report_ids:
                    raise RowRejected(
                        columns["id"],
                        row[columns["id"]],
                        gettext_noop(
                            "opportunity %(id)s is not in the opportunity report %(file)s; add it to the report "
                            "or remove its rows from the history file"
                        ),
                        id=row[columns["id"]],
                        file=self.opportunities.file_name,
                    )
                # Stage.name stores at most 200 characters, and a cut name would not match the same stage on its next row.
                stage_name = text_cell(row.get(columns["stage"], "").strip(), columns["stage"], 200)
                if not stage_name:
                    raise RowRejected(columns["stage"], "", gettext_noop("missing value"))
                created = self.moment(row, columns["created"])
                if created is None:
                    raise RowRejected(columns["created"], "", gettext_noop("missing value"))
            except RowRejected as rejection:
                self.result.reject("stage_changes", self.history.file_name, line, rejection)
                continue
            snapshots[opportunity_id].append((created, line, stage_name))

        moves = {}
        for opportunity_id, rows in snapshots.items():
            rows.sort()
            deal_moves = []
            previous = None
            for created, _line, stage_name in rows:
                if stage_name != previous:
                    deal_moves.append(PlannedMove(self.stages.plan(stage_name), created))
                previous = stage_name
            moves[opportunity_id] = deal_moves
        return moves

    def record(self, line, row, columns, history, converter, first_line) -> DealRecord:
        id_column = columns["id"]
        external_id = salesforce_id(row.get(id_column, ""))
        if not external_id:
            raise RowRejected(id_column, "", gettext_noop("missing value"))
        if external_id in first_line:
            raise RowRejected(
                id_column, row[id_column], gettext_noop("duplicate deal; first listed on line %(line)d"), line=first_line[external_id]
            )
        owner = row.get(columns["owner"], "")
        if not owner:
            raise RowRejected(columns["owner"], "", gettext_noop("missing value"))
        stage_name = text_cell(row.get(columns["stage"], "").strip(), columns["stage"], 200)
        if not stage_name:
            raise RowRejected(columns["stage"], "", gettext_noop("missing value"))
        stage = self.stages.plan(stage_name)
        flags_kind = self.flags_kind(row, columns)
        if flags_kind is not None and flags_kind != stage.kind:
            raise self.flags_contradiction(row, columns, stage, flags_kind)
        created_at = self.moment(row, columns["created"])
        if created_at is None:
            raise RowRejected(columns["created"], "", gettext_noop("missing value"))
        close_column = columns.get("close_date")
        close_text = row.get(close_column, "") if close_column else ""
        is_closed = stage.kind in (StageKind.WON, StageKind.LOST)
        moves = list(history.get(external_id, []))
        closed_at = None
        expected = None
        if is_closed:
            closed_at = self.moment(row, close_column)
            if closed_at is None and not moves:
                raise close_time_missing(
                    column=close_column or OPPORTUNITY_COLUMNS["close_date"][0],
                    in_file=close_column is not None,
                    needs=Message(gettext_noop("a won or lost deal needs its close date")),
                )
        elif close_text:
            expected = parse_day(close_text, close_column, date_order=self.date_order, allowed=self.allowed_days)
        if moves:
            # The move is in the history file, so the row's creation cell is the one reported.
            stage_entry_check(
                entered_at=moves[0].changed_at,
                created_at=created_at,
                time_zone=self.time_zone,
                column=columns["created"],
                value=row[columns["created"]],
                created_in=columns["created"],
            )
            # Moves on earlier days were rejected above, so this keeps the creation day.
            created_at = min(created_at, moves[0].changed_at)
        if closed_at is not None:
            closed_at = close_time_settle(closed_at, created_at, close_text=close_text, time_zone=self.time_zone)
            if closed_at is None:
                raise RowRejected(close_column, close_text, gettext_noop("close date is before the creation date"))
        if moves and moves[-1].stage is not stage:
            # The report is newer than the history's last row: the deal moved since.
            moves.append(PlannedMove(stage, max(closed_at or moves[-1].changed_at, moves[-1].changed_at), is_implied=True))

        currency = (row.get(columns.get("currency", ""), "") or self.currency).strip().upper()
        if not is_currency_code(currency):
            raise RowRejected(columns.get("currency", "CurrencyIsoCode"), currency, gettext_noop("not an ISO 4217 currency code; use a code such as EUR, CHF or USD"))
        amount_text = row.get(columns.get("amount", ""), "")
        amount = parse_money(amount_text, columns["amount"], currency=currency) if amount_text else None
        close_day = None
        if is_closed:
            close_moment = closed_at or moves[-1].changed_at
            close_day = close_moment.astimezone(self.time_zone).date()
        base_amount = converter.convert(amount, currency, close_day, columns.get("amount", "Amount"), amount_text)
        probability = None
        if "probability" in columns and row.get(columns["probability"]):
            probability = parse_percent(row[columns["probability"]], columns["probability"])
        first_line[external_id] = line
        return DealRecord(
            line=line,
            external_id=external_id,
            values={
                "name": text_cell(row.get(columns.get("name", ""), ""), columns.get("name", "Name"), 300),
                "amount": amount,
                "currency": currency,
                "base_amount": base_amount,
                "probability": probability,
                "created_at": created_at,
                "expected_close_on": expected,
                "deal_source": text_cell(row.get(columns.get("lead_source", ""), ""), "Lead Source", 100),
            },
            closed_at=closed_at,
            owner=Person(key=owner, name=owner),
            stages=self.stages,
            stage=stage,
            entry_stage=stage,
            planned_moves=moves,
        )

    def flags_contradiction(self, row: dict, columns: dict[str, str], stage, flags_kind: str) -> RowRejected:
        """Return the rejection of a row whose Won/Closed flags give another kind than its stage's."""
        won_column = columns.get("is_won")
        closed_column = columns["is_closed"]
        return RowRejected(
            closed_column,
            row[closed_column],
            gettext_noop(
                "%(won_column)s=%(won)s and %(closed_column)s=%(closed)s mean %(flags_kind)s, but stage %(stage)s is "
                "%(stage_kind)s in this import, and all opportunities of a stage need the same flags; correct the flags "
                "or the stage in Salesforce and export again"
            ),
            won_column=won_column or OPPORTUNITY_COLUMNS["is_won"][0],
            won=row.get(won_column, "") if won_column else "",
            closed_column=closed_column,
            closed=row[closed_column],
            flags_kind=Message(KIND_WORDS[flags_kind]),
            stage=stage.name,
            stage_kind=Message(KIND_WORDS[stage.kind]),
        )
