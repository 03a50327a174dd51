"""Importer for any CSV or XLSX deals list, read through a column mapping the admin chose.

`options["mapping"]` maps deal fields (GENERIC_FIELDS) to the file's column names. The
file is a snapshot: a deal entered its stage when created and, when the status (or the
stage's name) marks it won or lost, closed at the close date. Without a stage column the
deals go to the stage "Open", "Won" or "Lost" by status.
"""

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path

from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
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
    deal_owners_assign,
    deal_stages_assign,
    deals_write,
)
from pipelines.importers.formats import (
    Table,
    close_time_settle,
    import_date_range,
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

SOURCE = "generic"
PIPELINE_NAME = "Import"
PROGRESS_STEP = 500
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")

# Deal fields a column can be mapped to, with the message ids of their labels; the first three are required.
GENERIC_FIELD_LABELS = {
    "external_id": gettext_noop("Deal id"),
    "owner": gettext_noop("Owner (name or e-mail)"),
    "created_at": gettext_noop("Created on"),
    "name": gettext_noop("Deal name"),
    "stage": gettext_noop("Stage"),
    "status": gettext_noop("Status (open, won, lost)"),
    "amount": gettext_noop("Amount"),
    "currency": gettext_noop("Currency"),
    "closed_at": gettext_noop("Closed on"),
    "expected_close_on": gettext_noop("Expected close date"),
    "probability": gettext_noop("Probability (%)"),
    "lost_reason": gettext_noop("Lost reason"),
}
GENERIC_FIELDS = {field: _(label) for field, label in GENERIC_FIELD_LABELS.items()}
REQUIRED_FIELDS = ("external_id", "owner", "created_at")
# Column names, English and German, that the mapping page preselects for each field. They are
# compared by column_name_key, so "Deal-ID", "deal id" and "DealID" are the same name.
COLUMN_NAME_SUGGESTIONS = {
    "external_id": ("id", "deal id", "external id", "record id", "nr"),
    "owner": ("owner", "owner e-mail", "deal owner", "besitzer", "inhaber", "verantwortlich", "verkäufer"),
    "created_at": ("created", "created at", "created on", "create date", "erstellt", "erstellt am", "angelegt", "angelegt am"),
    "name": ("name", "deal name", "title", "titel", "dealname"),
    "stage": ("stage", "deal stage", "phase", "dealphase", "deal-phase"),
    "status": ("status",),
    "amount": ("amount", "value", "betrag", "wert"),
    "currency": ("currency", "währung"),
    "closed_at": ("closed", "closed at", "close date", "abschluss", "abgeschlossen am", "abschlussdatum"),
    "expected_close_on": ("expected close", "expected close date", "erwarteter abschluss", "erwartetes abschlussdatum"),
    "probability": ("probability", "wahrscheinlichkeit"),
    "lost_reason": ("lost reason", "verlustgrund"),
}
STATUS_WORDS = {
    "open": StageKind.OPEN,
    "offen": StageKind.OPEN,
    "won": StageKind.WON,
    "gewonnen": StageKind.WON,
    "closed won": StageKind.WON,
    "lost": StageKind.LOST,
    "verloren": StageKind.LOST,
    "closed lost": StageKind.LOST,
}


def column_name_key(name: str) -> str:
    """Return `name` without a bracketed note, case, spaces and punctuation, for comparing column names."""
    name = re.sub(r"\(.*?\)", "", name)
    return "".join(character for character in name.casefold() if character.isalnum())


def mapping_suggest(columns: list[str]) -> dict[str, str]:
    """Return {field: column} for the fields whose label (in English or German) or usual name a column has.

    Each column is suggested for one field at most, the first in GENERIC_FIELD_LABELS order.
    """
    columns_by_key = {}
    for column in columns:
        columns_by_key.setdefault(column_name_key(column), column)
    suggested, used = {}, set()
    for field, label in GENERIC_FIELD_LABELS.items():
        with translation.override("de"):
            german_label = translation.gettext(label)
        names = (field, label, german_label, *COLUMN_NAME_SUGGESTIONS.get(field, ()))
        for name in names:
            column = columns_by_key.get(column_name_key(name))
            if column is not None and column not in used:
                suggested[field] = column
                used.add(column)
                break
    return suggested


def generic_table_find(path: Path) -> Table:
    """Return the first CSV or XLSX file of folder `path` as a Table.

    Raises ImportSourceError when its first row names fewer columns than the required
    fields need, which is a title or cover sheet above or before the header.
    """
    for candidate in sorted(path.iterdir()) if path.is_dir() else [path]:
        if candidate.suffix.lower() in TABLE_SUFFIXES:
            table = table_read(candidate)
            named = [name for name in table.header if name]
            if len(named) < len(REQUIRED_FIELDS):
                table.require_columns([str(GENERIC_FIELDS[field]) for field in REQUIRED_FIELDS])
            return table
    raise ImportSourceError(Message(gettext_noop("No CSV or XLSX file found in the upload.")))


def generic_import(
    *,
    organization: Organization,
    path: Path,
    currency: str,
    today: dt.date,
    options: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the first table of folder `path` with `options["mapping"]`; raise ImportSourceError on a bad mapping."""
    options = options or {}
    table = generic_table_find(path)
    mapping = {field: column for field, column in (options.get("mapping") or {}).items() if column}
    missing = [str(GENERIC_FIELDS[field]) for field in REQUIRED_FIELDS if field not in mapping]
    if missing:
        raise ImportSourceError(
            Message(
                gettext_noop("The column mapping lacks the required field(s): %(fields)s."),
                {"fields": ", ".join(missing)},
            )
        )
    unknown = [column for column in mapping.values() if column not in table.header]
    if unknown:
        raise ImportSourceError(
            Message(
                gettext_noop("File %(file)s has no column(s) %(columns)s; choose the mapping again."),
                {"file": table.file_name, "columns": ", ".join(unknown)},
            )
        )
    importer = GenericImport(
        organization=organization, table=table, mapping=mapping, folder=path, currency=currency, today=today, options=options
    )
    importer.result.progress = progress
    return importer.run()


class GenericImport:
    def __init__(self, *, organization, table: Table, mapping: dict, folder: Path, currency: str, today: dt.date, options: dict):
        self.organization = organization
        self.table = table
        self.mapping = mapping
        self.currency = currency
        self.today = today
        self.date_order = options.get("date_order", "")
        self.allowed_days = import_date_range(today)
        self.time_zone = organization.tzinfo
        self.result = ImportResult(source=SOURCE, path=str(folder), currency=currency)
        self.stages = None

    def moment(self, text: str, field: str):
        return parse_moment(
            text, self.mapping.get(field), time_zone=self.time_zone, date_order=self.date_order, allowed=self.allowed_days
        )

    def cell(self, row: dict, field: str) -> str:
        column = self.mapping.get(field)
        return row.get(column, "") if column else ""

    def run(self) -> ImportResult:
        self.stages = PipelineStages(organization=self.organization, name=PIPELINE_NAME)
        converter = BaseAmountConverter(organization=self.organization, today=self.today)
        records = []
        first_line: dict[str, int] = {}
        total = len(self.table.rows)
        for index, (line, row) in enumerate(self.table.rows, start=1):
            try:
                records.append(self.record(line, row, converter, first_line))
            except RowRejected as rejection:
                self.result.reject("deals", self.table.file_name, line, rejection)
            if index % PROGRESS_STEP == 0:
                self.result.report_progress(index, total)
        records = deal_owners_assign(
            directory=PeopleDirectory(organization=self.organization, result=self.result),
            records=records,
            column=self.mapping["owner"],
            reject=lambda record, rejection: self.result.reject("deals", self.table.file_name, record.line, rejection),
        )
        deal_stages_assign(records=records, pipelines=[self.stages])
        self.stages.order_closed_last()
        deals_write(
            organization=self.organization, source=SOURCE, records=records, result=self.result, observed_at=timezone.now()
        )
        self.result.report_progress(total, total)
        return self.result

    def close_date_missing(self) -> RowRejected:
        """Return the rejection of a won or lost row without a close date, naming the close-date field.

        With a mapped close-date column the error names that column and asks
        to fill in the cell. Without one it names the field, says that it is
        not mapped, and asks to map the column that contains the close date.
        """
        column = self.mapping.get("closed_at")
        if column:
            return RowRejected(
                column,
                "",
                gettext_noop("missing value; %(needs)s, so fill in this cell"),
                needs=Message(gettext_noop("a won or lost deal needs its close date")),
            )
        field = Message(GENERIC_FIELD_LABELS["closed_at"])
        return RowRejected(
            Message(gettext_noop("%(field)s (not mapped)"), {"field": field}),
            "",
            gettext_noop(
                "missing value; a won or lost deal needs its close date, so map the column that contains it to "
                "the field “%(field)s”"
            ),
            field=field,
        )

    def record(self, line, row, converter, first_line) -> DealRecord:
        column = self.mapping.get
        external_id = text_cell(self.cell(row, "external_id"), column("external_id"), 200)
        if not external_id:
            raise RowRejected(column("external_id"), "", gettext_noop("missing value"))
        if external_id in first_line:
            raise RowRejected(
                column("external_id"), external_id, gettext_noop("duplicate deal; first listed on line %(line)d"), line=first_line[external_id]
            )
        owner = self.cell(row, "owner")
        if not owner:
            raise RowRejected(column("owner"), "", gettext_noop("missing value"))
        created_text = self.cell(row, "created_at")
        if not created_text:
            raise RowRejected(column("created_at"), "", gettext_noop("missing value"))
        created_at = self.moment(created_text, "created_at")

        status_text = self.cell(row, "status")
        kind = None
        if status_text:
            kind = STATUS_WORDS.get(status_text.strip().casefold())
            if kind is None:
                raise RowRejected(column("status"), status_text, gettext_noop("unknown status; expected open, won or lost"))
        # Planned stages are created by `deal_stages_assign` only if the row is accepted.
        stage_name = text_cell(self.cell(row, "stage").strip(), column("stage") or "", 200)
        entry_stage = None
        if stage_name:
            stage = self.stages.plan(stage_name)
            if kind is not None and kind != stage.kind:
                # The status decides; the named stage is where the deal stood before it closed.
                entry_stage = stage if stage.kind == StageKind.OPEN else None
                stage = self.stages.plan({StageKind.WON: "Won", StageKind.LOST: "Lost", StageKind.OPEN: "Open"}[kind], kind=kind)
        else:
            kind = kind or StageKind.OPEN
            stage = self.stages.plan({StageKind.WON: "Won", StageKind.LOST: "Lost", StageKind.OPEN: "Open"}[kind], kind=kind)
        is_closed = stage.kind in (StageKind.WON, StageKind.LOST)

        closed_at = None
        closed_text = self.cell(row, "closed_at")
        if is_closed:
            if not closed_text:
                raise self.close_date_missing()
            closed_at = close_time_settle(
                self.moment(closed_text, "closed_at"), created_at, close_text=closed_text, time_zone=self.time_zone
            )
            if closed_at is None:
                raise RowRejected(column("closed_at"), closed_text, gettext_noop("close date is before the creation date"))
        expected_text = self.cell(row, "expected_close_on")
        expected = (
            parse_day(expected_text, column("expected_close_on"), date_order=self.date_order, allowed=self.allowed_days)
            if expected_text
            else None
        )

        currency = (self.cell(row, "currency") or self.currency).strip().upper()
        if not is_currency_code(currency):
            raise RowRejected(column("currency") or "", currency, gettext_noop("not an ISO 4217 currency code; use a code such as EUR, CHF or USD"))
        amount_text = self.cell(row, "amount")
        amount = parse_money(amount_text, column("amount"), currency=currency) if amount_text else None
        close_day = closed_at.astimezone(self.time_zone).date() if closed_at else None
        base_amount = converter.convert(amount, currency, close_day, column("amount") or "", amount_text)
        probability_text = self.cell(row, "probability")
        probability = parse_percent(probability_text, column("probability")) if probability_text else None
        first_line[external_id] = line
        return DealRecord(
            line=line,
            external_id=external_id,
            values={
                "name": text_cell(self.cell(row, "name"), column("name") or "", 300),
                "amount": amount,
                "currency": currency,
                "base_amount": base_amount,
                "probability": probability,
                "created_at": created_at,
                "expected_close_on": expected,
                "lost_reason": text_cell(self.cell(row, "lost_reason"), column("lost_reason") or "", 300),
            },
            closed_at=closed_at,
            owner=Person(key=owner, name=owner),
            stages=self.stages,
            stage=stage,
            entry_stage=entry_stage or stage,
        )
