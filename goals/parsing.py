"""Reading spreadsheets that people export from Excel: CSV or XLSX, German or English conventions.

German Excel saves CSV with semicolons, cp1252 (or UTF-8 with a byte-order
mark), dates as dd.mm.yyyy and numbers as 12.500,00. These helpers accept
both those and the English forms and raise `RowRejected` (from the CRM import
core) naming the column, the value and the expected form.
"""

import csv
import datetime as dt
import io
import logging
import re
import zipfile
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext, gettext_noop

from pipelines.importers.base import CENT, ImportSourceError, RowRejected
from pipelines.importers.formats import (
    TOO_MANY_DECIMALS,
    NumberCell,
    Table,
    bytes_decode,
    csv_error,
    csv_rows,
    delimiter_detect,
    extra_cells_error,
    header_duplicates_check,
    number_cell,
    sheet_choose,
)
from pipelines.importers.upload_checks import (
    HEAD_BYTES,
    no_data_rows_error,
    table_head_check,
)
from pipelines.models import MAX_MONEY_AMOUNT
from pipelines.upload_limits import file_size_check, workbook_size_check

logger = logging.getLogger(__name__)

GERMAN_DATE = re.compile(r"^(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})$")
ISO_DATE = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})$")
NUMBER_CHARACTERS = re.compile(r"^[0-9.,]+$")
# The message id writes out MAX_MONEY_AMOUNT in English notation (a test checks that they agree),
# and the German catalog writes it in German notation.
NUMBER_TOO_LARGE = gettext_noop("number too large; the maximum is 9,999,999,999,999.99")
# The German catalog writes the examples in German notation (12.500,00), so each reader sees their own.
INVALID_NUMBER = gettext_noop("invalid number; expected for example 12,500.00")
# One separator after one to three digits and before exactly three: thousands, as in 1,234 or 12.500.
THOUSANDS_GROUP = re.compile(r"^[1-9]\d{0,2}[.,]\d{3}$")
FORMULA_CELL = gettext_noop(
    "formula cell; formulas are not calculated. In Excel, copy the cells and paste them as values "
    "(Paste Special, Values), then upload the file again"
)
YES = {"yes", "ja", "y", "j", "true", "wahr", "1", "x"}
NO = {"no", "nein", "n", "false", "falsch", "0"}


def read_table(data: bytes, file_name: str, *, required: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str]]]:
    """Read a CSV file, or an XLSX workbook's first sheet with the `required` columns, into `(line, row)` pairs.

    Rows are keyed by lower-case header, and line 1 is the header. Empty rows are skipped. CSV may be UTF-8 (with or
    without a byte-order mark) or Windows-1252, separated by semicolons, commas,
    tabs or vertical bars, and is decoded and split as the CRM imports do (see
    pipelines.importers.formats). Raises ImportSourceError for a file that is
    not a CSV or XLSX file or cannot be decoded, a missing header, a header
    without one of the `required` columns, and a file without data rows. Raises it
    too when the file, or an XLSX workbook unpacked, exceeds IMPORT_MAX_UPLOAD_BYTES.
    """
    file_size_check(file_name, len(data))
    table_head_check(data[:HEAD_BYTES], file_name)
    if file_name.lower().endswith((".xlsx", ".xlsm")):
        workbook_size_check(io.BytesIO(data), file_name)
        header, rows = _read_xlsx(data, file_name, required)
    else:
        header, rows = _read_csv(data, file_name)
        require_columns(set(header), required, file_name)
    if not rows:
        raise no_data_rows_error(file_name)
    return rows


def _decode(data: bytes, file_name: str) -> str:
    text, _encoding = bytes_decode(data, file_name)
    return text


def _read_csv(data: bytes, file_name: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    text = _decode(data, file_name)
    delimiter = delimiter_detect(text.split("\n", 1)[0].rstrip("\r"))

    try:
        header = [name.strip().lower() for name in next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])]
    except csv.Error as error:
        raise csv_error(file_name, 1, error) from None
    if not any(header):
        raise ImportSourceError(gettext("File %(file)s is empty; expected a header row.") % {"file": file_name})
    header_duplicates_check(header, file_name)
    width = len(header)
    rows = []
    for line, cells in csv_rows(io.StringIO(text, newline=""), delimiter, file_name):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > width and "".join(cells[width:]).strip():
            raise extra_cells_error(file_name, line=line, count=len(cells), columns=width, delimiter=delimiter)
        values = {name: (cells[index].strip() if index < len(cells) else "") for index, name in enumerate(header)}
        rows.append((line, values))
    return header, rows


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_cell(value)
    return str(value).strip()


def _read_xlsx(
    data: bytes, file_name: str, required: tuple[str, ...]
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # data_only=False: a formula cell reads as its formula text, which formula_cells_check rejects.
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, InvalidFileException) as error:
        # openpyxl's text is English and technical, so it goes to the log and not into the message.
        logger.warning("Opening XLSX workbook failed file=%s error=%r", file_name, error)
        raise ImportSourceError(
            gettext("File %(file)s is not a readable XLSX workbook; save it again from Excel.") % {"file": file_name}
        ) from None
    try:
        sheet = _sheet_with_columns(workbook, required)
        rows_iter = sheet.iter_rows(values_only=True)
        header = [_cell_text(value).lower() for value in next(rows_iter, ())]
        if not any(header):
            raise ImportSourceError(gettext("File %(file)s is empty; expected a header row.") % {"file": file_name})
        header_duplicates_check(header, file_name)
        rows = []
        for line, cells in enumerate(rows_iter, start=2):
            values = {name: _cell_text(cells[index]) if index < len(cells) else "" for index, name in enumerate(header)}
            if any(values.values()):
                rows.append((line, values))
    finally:
        workbook.close()

    missing = [name for name in required if name not in header]
    if missing:
        sheet_names = list(workbook.sheetnames)
        table = Table(
            file_name=file_name,
            header=header,
            rows=[],
            sheet=sheet.title,
            sheet_names=sheet_names if len(sheet_names) > 1 else [],
        )
        raise table.columns_missing_error(missing)
    return header, rows


def _sheet_with_columns(workbook, required: tuple[str, ...]):
    """Return the first sheet whose first row names every `required` column, in any case.

    Without one, return the sheet that the deal imports' `sheet_choose` reads, whose
    missing columns are then reported together with the workbook's sheets.
    """
    for worksheet in workbook.worksheets:
        first_row = next(worksheet.iter_rows(max_row=1, values_only=True), ())
        names = {_cell_text(value).lower() for value in first_row}
        if all(name in names for name in required):
            return worksheet
    return sheet_choose(workbook, ())


def require_columns(rows_header: set[str], required: tuple[str, ...], file_name: str) -> None:
    missing = [name for name in required if name not in rows_header]
    if missing:
        raise ImportSourceError(
            gettext("File %(file)s is missing the required column(s): %(columns)s.")
            % {"file": file_name, "columns": ", ".join(missing)}
        )


def parse_number(value: str, column: str) -> Decimal:
    """Parse a non-negative number written the German (12.500,50) or English (12,500.50) way, in cents.

    A number above MAX_MONEY_AMOUNT is rejected, a count too, because quota targets of
    every metric and forecast amounts are stored as DecimalField(18, 2) like money.

    With both separators the last one is the decimal separator. A separator used more
    than once separates thousands. A single separator after one to three digits (the
    first not 0) and followed by exactly three digits separates thousands too, so
    `12.500` and `12,500` are 12500 in either language, as the deal imports'
    pipelines.importers.formats.parse_money reads them. Any other number with more
    than two decimal places is rejected instead of rounded, because `1,234` read as
    1.23 would be a thousandfold error. A NumberCell, an XLSX number cell, is its exact
    value, so 12.345 there has three decimal places and is rejected.
    """
    if isinstance(value, NumberCell):
        return _cell_number_checked(value, column)
    text = value.replace("\u00a0", "").replace(" ", "").replace("'", "").replace("€", "").strip()
    if text.startswith("-"):
        raise RowRejected(column, value, gettext_noop("negative number; targets must be 0 or more"))
    if not text or not NUMBER_CHARACTERS.match(text):
        raise RowRejected(column, value, INVALID_NUMBER)

    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
    elif "," in text or "." in text:
        mark = "," if "," in text else "."
        if text.count(mark) > 1 or THOUSANDS_GROUP.match(text):
            decimal_mark = "." if mark == "," else ","
        else:
            decimal_mark = mark
    else:
        decimal_mark = "."
    thousands_mark = "." if decimal_mark == "," else ","

    integer_part, _, fraction = text.partition(decimal_mark)
    if decimal_mark in fraction or thousands_mark in fraction:
        raise RowRejected(column, value, INVALID_NUMBER)
    groups = integer_part.split(thousands_mark)
    if len(groups) > 1 and (not groups[0] or any(len(group) != 3 for group in groups[1:])):
        raise RowRejected(column, value, gettext_noop("invalid number; thousands separators must group three digits"))
    if len(fraction) > 2:
        raise RowRejected(column, value, TOO_MANY_DECIMALS)
    try:
        number = Decimal("".join(groups) + "." + fraction if fraction else "".join(groups))
    except InvalidOperation:
        raise RowRejected(column, value, INVALID_NUMBER) from None
    if number > MAX_MONEY_AMOUNT:
        raise RowRejected(column, value, NUMBER_TOO_LARGE)
    return number.quantize(CENT)


def _cell_number_checked(value: NumberCell, column: str) -> Decimal:
    number = value.number
    if number < 0:
        raise RowRejected(column, value, gettext_noop("negative number; targets must be 0 or more"))
    if number > MAX_MONEY_AMOUNT:
        raise RowRejected(column, value, NUMBER_TOO_LARGE)
    if number != number.quantize(CENT):
        raise RowRejected(column, value, TOO_MANY_DECIMALS)
    return number.quantize(CENT)


def formula_cells_check(row: dict[str, str]) -> None:
    """Raise RowRejected for the first cell of `row` that contains a spreadsheet formula such as `=1000*2`.

    XLSX files are read without evaluating formulas, so a formula cell has no value to import.
    """
    for column, value in row.items():
        if value.startswith("="):
            raise RowRejected(column, value, FORMULA_CELL)


def parse_day(value: str, column: str) -> dt.date:
    """Parse a date written as 2025-03-01 or 01.03.2025."""
    match = ISO_DATE.match(value) or GERMAN_DATE.match(value)
    if match:
        try:
            return dt.date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:
            # The form is right, so the day itself is wrong, such as 2017-02-30.
            raise RowRejected(column, value, gettext_noop("invalid date; no such day, so check the day and the month")) from None
    raise RowRejected(column, value, gettext_noop("invalid date; expected YYYY-MM-DD or DD.MM.YYYY"))


def parse_optional_day(value: str, column: str) -> dt.date | None:
    return parse_day(value, column) if value else None


def parse_yes_no(value: str, column: str, *, default: bool) -> bool:
    text = value.strip().lower()
    if not text:
        return default
    if text in YES:
        return True
    if text in NO:
        return False
    raise RowRejected(column, value, gettext_noop("invalid choice; expected yes, no, ja or nein"))
