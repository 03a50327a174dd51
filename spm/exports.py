"""CSV and XLSX downloads of the tables on the analytics pages.

A page builds a `Table` (headers as lazy translations, one kind per column,
rows of plain Python values) and returns `csv_response` or `xlsx_response`.
Headers are translated when the response is built, in the request's active
language, so a German user gets German headers.

Formula injection: a spreadsheet runs a text cell that starts with =, +, -,
@, a tab or a carriage return as a formula, so every such text cell gets a
leading apostrophe. Numbers (int, Decimal, float) are written as numbers and
are never escaped: a negative amount stays a number.

Both formats round a number half up to its column kind's DECIMAL_PLACES: money
to cents, rates (fractions, 0.375 = 37.5 %) to 4 places, days and other
decimals to 2. Aggregates arrive with whatever digits the database or the
division left (SQLite returns sums as 1234.56000000000), and a file should not
show them.
"""

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpResponse, StreamingHttpResponse
from django_scopes import scope
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from spm.rounding import decimal_of, round_half_up

TEXT, INTEGER, MONEY, DECIMAL, PERCENT, DAYS, DATE = "text", "integer", "money", "decimal", "percent", "days", "date"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel number formats per column kind; the spreadsheet localizes separators itself.
XLSX_NUMBER_FORMATS = {
    INTEGER: "0",
    MONEY: "#,##0.00",
    DECIMAL: "0.00",
    PERCENT: "0.0%",
    DAYS: "0.0",
    DATE: "yyyy-mm-dd",
}
# Places a number is rounded to in both formats; kinds not listed (integers, text) are written as they are.
DECIMAL_PLACES = {MONEY: 2, PERCENT: 4, DAYS: 2, DECIMAL: 2}
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SHEET_TITLE_UNSAFE = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = TEXT


@dataclass(frozen=True)
class Table:
    """A table to download: `rows` yields one sequence of values per row, in column order.

    `organization`, when set, is the scope the rows are read in: a streamed
    CSV reads them after the view has returned and the middleware's scope has
    closed.
    """

    name: str
    columns: Sequence[Column]
    rows: Iterable[Sequence]
    organization: object = None

    @property
    def filename_stem(self) -> str:
        return _FILENAME_UNSAFE.sub("-", self.name).strip("-") or "export"


def cell_escape(text: str) -> str:
    """Prefix a text that a spreadsheet would run as a formula with an apostrophe."""
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def report_csv_cell(value):
    """Return one value of a command's JSON-shaped report row as a CSV cell for csv.writer.

    None becomes an empty cell, and numbers and booleans pass unchanged. Text goes through
    cell_escape, except a decimal number written as text ("-1234.50", the reports' form for
    money), which a spreadsheet reads as that number and not as a formula.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value if _DECIMAL_TEXT.fullmatch(value) else cell_escape(value)
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def rounded_number(value, kind: str):
    """Return a Decimal or float `value` rounded half up to DECIMAL_PLACES of `kind`; anything else unchanged."""
    places = DECIMAL_PLACES.get(kind)
    if places is None or not isinstance(value, (Decimal, float)):
        return value
    if not decimal_of(value).is_finite():
        return value
    return round_half_up(value, places)


def _csv_value(value, kind: str) -> str:
    if value is None:
        return ""
    if _is_number(value):
        return str(rounded_number(value, kind))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return cell_escape(str(value))


class _LineBuffer:
    """A file-like object whose write returns the text, so csv.writer can feed a generator."""

    def write(self, text: str) -> str:
        return text


def _rows_in_scope(table: Table):
    if table.organization is None:
        yield from table.rows
        return
    with scope(organization=table.organization):
        yield from table.rows


def csv_response(table: Table) -> StreamingHttpResponse:
    """Stream the table as UTF-8 CSV with a byte order mark (so Excel reads umlauts) and a header row."""
    headers = [str(column.header) for column in table.columns]
    kinds = [column.kind for column in table.columns]
    writer = csv.writer(_LineBuffer())

    def lines():
        yield "\ufeff" + writer.writerow([cell_escape(header) for header in headers])
        for row in _rows_in_scope(table):
            # A value beyond the last column has no kind, so it is written unrounded.
            kinds_of_row = kinds + [TEXT] * (len(row) - len(kinds))
            yield writer.writerow([_csv_value(value, kind) for value, kind in zip(row, kinds_of_row)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table.filename_stem}.csv"'
    return response


def _xlsx_cell(sheet, value, kind: str):
    if value is None:
        return WriteOnlyCell(sheet, value=None)
    if _is_number(value):
        cell = WriteOnlyCell(sheet, value=rounded_number(value, kind))
        cell.number_format = XLSX_NUMBER_FORMATS.get(kind, "General")
        return cell
    if isinstance(value, (dt.date, dt.datetime)):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = XLSX_NUMBER_FORMATS[DATE]
        return cell
    return WriteOnlyCell(sheet, value=cell_escape(str(value)))


def xlsx_workbook_bytes(table: Table) -> bytes:
    """Write the table to one XLSX sheet and return the file's bytes; numbers stay numbers."""
    workbook = Workbook(write_only=True)
    title = _SHEET_TITLE_UNSAFE.sub("-", table.name)[:31] or "export"
    sheet = workbook.create_sheet(title=title)
    sheet.append([WriteOnlyCell(sheet, value=cell_escape(str(column.header))) for column in table.columns])
    for row in _rows_in_scope(table):
        sheet.append([_xlsx_cell(sheet, value, column.kind) for value, column in zip(row, table.columns)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_response(table: Table) -> HttpResponse:
    """Return the table as an XLSX download; built in memory, because the format is a zip file."""
    response = HttpResponse(xlsx_workbook_bytes(table), content_type=XLSX_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{table.filename_stem}.xlsx"'
    return response
