"""Reading the files people export from CRMs and spreadsheets, and parsing their values.

German Excel writes semicolon-separated CSV in Windows-1252 or UTF-8 (with or without
a byte order mark), amounts as `1.234,56 €` (often with a non-breaking space before the
sign) and dates as `dd.mm.yyyy`. CRMs write comma-separated UTF-8 with `1234.56` and ISO
dates. `table_read` accepts all of these and XLSX workbooks, and the `parse_*` functions
accept both number styles. Nothing is guessed silently: a date such as 03/04/2025 that
reads as two different days is rejected unless the caller names the date order.

Cells that start with =, +, -, @, a tab or a carriage return are formulas to a spreadsheet.
They are kept as plain text and never evaluated: XLSX formulas are read as their formula
text, a number or date column rejects them, and `csv_safe_cell` escapes them on export.
"""

import codecs
import csv
import datetime as dt
import logging
import operator
import re
import zipfile
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from django.utils.translation import gettext_noop

from pipelines.importers.base import ImportSourceError, Message, RowRejected
from pipelines.models import MAX_MONEY_AMOUNT
from spm.currencies import is_currency_code
from spm.date_limits import DateRange, planning_range

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# The message id writes out MAX_MONEY_AMOUNT in English notation (a test checks that they agree),
# and the German catalog writes it in German notation.
AMOUNT_TOO_LARGE = gettext_noop("amount too large; the maximum is 9,999,999,999,999.99")
# The example is in English notation, and the German catalog gives it in German notation.
INVALID_NUMBER = gettext_noop("invalid number; expected e.g. 1,234.56 or 1234.56")
TOO_MANY_DECIMALS = gettext_noop("invalid number with more than two decimal places; round it to cents, for example 1,234.56")
# The earlier message id, kept in the catalog so that rejected rows stored with it still translate.
INVALID_NUMBER_STORED_BEFORE = gettext_noop("invalid number; expected e.g. 1.234,56 or 1234.56")
# A whole number with at most this many digits is within MAX_MONEY_AMOUNT.
MAX_WHOLE_AMOUNT_DIGITS = len(str(int(MAX_MONEY_AMOUNT)))
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
DATE_ORDERS = ("dmy", "mdy")
# A currency sign, or three letters standing alone that may be an ISO 4217 code (`500 EUR`, `500EUR`).
CURRENCY_MARK = re.compile(r"[€$£¥]|(?<![A-Za-z])[A-Za-z]{3}(?![A-Za-z])")
# The currencies each sign denotes.
# NOTE: other currencies use "$" too. An amount marked "$" in one of those is rejected, so the
# sign must be removed from it.
SIGN_CURRENCIES = {
    "€": frozenset({"EUR"}),
    "£": frozenset({"GBP"}),
    "¥": frozenset({"JPY", "CNY"}),
    "$": frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"}),
}
SPACES = re.compile(r"[\s\u00a0\u202f]+")
# A thousands group never starts with 0, so "0,005" is a decimal comma, not 5.
GERMAN_NUMBER = re.compile(r"^-?[1-9]\d{0,2}(\.\d{3})+(,\d+)?$|^-?\d+,\d+$")
ENGLISH_NUMBER = re.compile(r"^-?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$|^-?\d+(\.\d+)?$")
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
SLASHED_DATE = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")
TIME_PART = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")
OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
# Message ids that name a CSV separator in messages; a tab is invisible between quotes, so it is named.
# Translated at display time, so German shows its own quotation marks („;“).
DELIMITER_NAMES = {";": gettext_noop("“;”"), ",": gettext_noop("“,”"), "\t": gettext_noop("tab"), "|": gettext_noop("“|”")}


@dataclass
class Table:
    """One file's rows as `(line, row)` pairs with the header as read; `line` 1 is the header."""

    file_name: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    encoding: str = ""
    delimiter: str = ""
    # The sheet read of a workbook, and every sheet of a workbook with several; empty for CSV.
    sheet: str = ""
    sheet_names: list[str] = field(default_factory=list)

    def require_columns(self, columns) -> None:
        missing = [name for name in columns if name not in self.header]
        if missing:
            raise self.columns_missing_error(missing)

    def columns_missing_error(self, missing: list[str]) -> ImportSourceError:
        """Return the error naming the `missing` columns and, for a workbook, the sheet read and the others."""
        if not self.sheet:
            return ImportSourceError(
                Message(
                    gettext_noop("File %(file)s is missing the required column(s): %(columns)s."),
                    {"file": self.file_name, "columns": ", ".join(missing)},
                )
            )
        if not self.sheet_names:
            # A title row above the header, often merged over the columns, is the usual cause.
            return ImportSourceError(
                Message(
                    gettext_noop(
                        "File %(file)s, sheet %(sheet)s, is missing the required column(s): %(columns)s. "
                        "The column names must be in the first row of the sheet: remove any title rows above them."
                    ),
                    {"file": self.file_name, "sheet": self.sheet, "columns": ", ".join(missing)},
                )
            )
        return ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s, sheet %(sheet)s, is missing the required column(s): %(columns)s. "
                    "The column names must be in the first row of the sheet. The workbook has the sheets %(sheets)s: "
                    "move the sheet with the data to the front, or remove the other sheets, and upload it again."
                ),
                {
                    "file": self.file_name,
                    "sheet": self.sheet,
                    "columns": ", ".join(missing),
                    "sheets": ", ".join(self.sheet_names),
                },
            )
        )


def bytes_decode(data: bytes, file_name: str) -> tuple[str, str]:
    """Decode a text file as UTF-8 (with or without BOM), else as Windows-1252; return (text, encoding).

    Windows-1252 maps almost every byte, so it is the fallback rather than a guess
    among many: a file that is not valid UTF-8 was in practice written by Excel on
    Windows. Its five unmapped bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D) fail the import.
    """
    utf8_name = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        # A byte order mark followed by invalid UTF-8 gets the Windows-1252 fallback like any other file.
        data, utf8_name = data[len(codecs.BOM_UTF8) :], "utf-8-sig"
    try:
        return data.decode("utf-8"), utf8_name
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as error:
        raise _not_text_error(file_name, error) from None


def delimiter_detect(first_line: str) -> str:
    """Return the separator of a CSV header line: the most frequent of `;`, `,`, tab and `|` outside quotes."""
    counts = {delimiter: 0 for delimiter in (";", ",", "\t", "|")}
    in_quotes = False
    for character in first_line:
        if character == '"':
            in_quotes = not in_quotes
        elif not in_quotes and character in counts:
            counts[character] += 1
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def table_read(path: Path, *, sheet: str | None = None, columns: tuple[str, ...] = ()) -> Table:
    """Read a CSV, TSV or XLSX file into a Table of stripped text cells.

    Blank rows are skipped. A missing trailing cell reads as "". Raises
    ImportSourceError when the file is missing, empty or cannot be decoded.
    Holds every row in memory; `table_stream` reads a CSV file row by row.
    Of a workbook, the sheet named `sheet` is read, else the first sheet whose first
    row names all `columns` (see `sheet_choose`).
    """
    if not path.is_file():
        raise ImportSourceError(Message(gettext_noop("File %(path)s is missing."), {"path": path.name}))
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_read(path, sheet=sheet, columns=tuple(columns))

    stream = table_stream(path)
    return Table(
        file_name=stream.file_name,
        header=stream.header,
        rows=list(stream),
        encoding=stream.encoding,
        delimiter=stream.delimiter,
    )


# Bytes read at a time while checking a file's encoding.
_DECODE_CHUNK_BYTES = 1 << 20


def encoding_detect(path: Path) -> str:
    """Return the encoding `bytes_decode` would pick for the file, reading it in chunks of 1 MiB.

    "utf-8-sig" when it starts with a byte order mark, else "utf-8" when every
    byte decodes as UTF-8, else "cp1252". Raises ImportSourceError for a file
    that is neither, and for one with a byte order mark that is not UTF-8.
    """
    with path.open("rb") as handle:
        has_bom = handle.read(3) == b"\xef\xbb\xbf"
        if not has_bom:
            handle.seek(0)
        error = _decode_error(handle, "utf-8")
        if error is None:
            return "utf-8-sig" if has_bom else "utf-8"
        if not has_bom:
            handle.seek(0)
            error = _decode_error(handle, "cp1252")
            if error is None:
                return "cp1252"
    raise _not_text_error(path.name, error)


def _not_text_error(file_name: str, error: UnicodeDecodeError) -> ImportSourceError:
    """Return the error for a file that neither encoding reads, naming the first byte that failed."""
    byte = error.object[error.start]
    return ImportSourceError(
        Message(
            gettext_noop(
                "File %(file)s is neither UTF-8 nor Windows-1252: it contains the byte %(byte)s, which neither can read."
                " Save it as CSV UTF-8 and upload it again."
            ),
            {"file": file_name, "byte": f"0x{byte:02X}"},
        )
    )


def _decode_error(handle, encoding: str) -> UnicodeDecodeError | None:
    """Decode the rest of `handle` in `encoding` chunk by chunk; return the first error, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := handle.read(_DECODE_CHUNK_BYTES):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return error
    return None


def extra_cells_error(file_name: str, *, line: int, count: int, columns: int, delimiter: str) -> ImportSourceError:
    """Return the error for a row with more filled cells than the header's `columns`.

    Reading such a row by position would store a wrong value silently: `1,234.56` in a
    comma-separated file is the two cells `1` and `234.56`. Empty cells after the last
    column, which Excel writes, are not counted as extra.
    """
    delimiter_name = Message(DELIMITER_NAMES[delimiter]) if delimiter in DELIMITER_NAMES else f"“{delimiter}”"
    return ImportSourceError(
        Message(
            gettext_noop(
                "File %(file)s, line %(line)d has %(count)d cells, but the header has %(columns)d columns. "
                "The likely cause is a value that contains the separator %(delimiter)s without quotes, such as "
                "the amount 1,234.56 in a comma-separated file: put such values in quotes or export the file again."
            ),
            {"file": file_name, "line": line, "count": count, "columns": columns, "delimiter": delimiter_name},
        )
    )


@dataclass
class TableStream:
    """A CSV file's header, read at once, and its rows, read from the file on each iteration.

    Iterating yields `(line, row)` pairs like `Table.rows` (line 1 is the header),
    holding one row at a time, so memory does not grow with the file. Each
    iteration reads the file again, so a caller may walk the rows several times.
    """

    path: Path
    file_name: str
    header: list[str]
    encoding: str
    delimiter: str

    # A CSV file has no sheets; these let Table's methods serve a TableStream too.
    sheet = ""
    sheet_names = ()
    columns_missing_error = Table.columns_missing_error

    def require_columns(self, columns) -> None:
        Table.require_columns(self, columns)

    def extra_cells_error(self, line: int, count: int) -> ImportSourceError:
        return extra_cells_error(self.file_name, line=line, count=count, columns=len(self.header), delimiter=self.delimiter)

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        named = [(index, name) for index, name in enumerate(self.header) if name]
        for line, cells in self._cells(width=len(self.header)):
            yield line, {name: cells[index].strip() for index, name in named}

    def cell_rows(self, columns: Sequence[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """Yield `(line, values)` pairs like iterating, with the stripped cells of `columns` in that order as `values`.

        A column that the header lacks reads as "". It builds no dict per row, which
        makes it the cheaper way to read a file with many rows.
        """
        width = len(self.header)
        # A column that the header lacks reads a blank cell added after the last column.
        indexes = [self.header.index(column) if column in self.header else width for column in columns]
        pick = operator.itemgetter(*indexes) if len(indexes) > 1 else (lambda cells: (cells[indexes[0]],))
        for line, cells in self._cells(width=max(indexes) + 1):
            yield line, tuple(map(str.strip, pick(cells)))

    def _cells(self, width: int) -> Iterator[tuple[int, list[str]]]:
        """Yield `(line, cells)` for each row that is not blank, with at least `width` cells.

        Raises ImportSourceError for a row with filled cells beyond the header's columns.
        """
        columns = len(self.header)
        with self.path.open(encoding=self.encoding, newline="") as handle:
            for line, cells in csv_rows(handle, self.delimiter, self.file_name):
                # Joined once, so a blank row costs one strip instead of one per cell.
                if not "".join(cells).strip():
                    continue
                if len(cells) > columns and "".join(cells[columns:]).strip():
                    raise self.extra_cells_error(line, len(cells))
                if len(cells) < width:
                    cells = cells + [""] * (width - len(cells))
                yield line, cells


def csv_rows(handle, delimiter: str, file_name: str) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line, cells)` for each row below the header, `line` being where the row ends, as csv counts it.

    Raises ImportSourceError for a row the csv module cannot read, naming the line where that row starts.
    """
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        next(reader, None)
    except csv.Error as error:
        raise csv_error(file_name, 1, error) from None
    # The line where the next row starts: the one after the line where the row before it ended.
    start_line = reader.line_num + 1
    try:
        for cells in reader:
            line = reader.line_num
            yield line, cells
            start_line = line + 1
    except csv.Error as error:
        raise csv_error(file_name, start_line, error) from None


def csv_error(file_name: str, line: int, error: csv.Error) -> ImportSourceError:
    """Return the error for a CSV row that starts on `line` and that the csv module cannot read."""
    if "field larger than field limit" in str(error):
        # An unclosed quotation mark makes the rest of the file one cell, which is the usual cause.
        return ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s, line %(line)d: a cell is longer than %(limit)d characters, the most an import "
                    "reads. A quotation mark that is not closed makes the rest of the file one cell: close it, or "
                    "shorten the cell, and import the file again."
                ),
                {"file": file_name, "line": line, "limit": csv.field_size_limit()},
            )
        )
    return ImportSourceError(
        Message(
            gettext_noop("File %(file)s is not a valid CSV file (%(error)s)."),
            {"file": file_name, "error": str(error)},
        )
    )


def table_stream(path: Path, *, rows_check: bool = True) -> TableStream:
    """Open a CSV or TSV file for reading row by row: check its encoding and read its header.

    Accepts what `table_read` accepts for CSV (UTF-8 with or without BOM,
    Windows-1252, separators `;`, `,`, tab and `|`). Raises ImportSourceError
    when the file is missing, empty or cannot be decoded, or, unless `rows_check`
    is false, has a row that the csv module cannot read, such as a cell over its
    field size limit. Without that pass over every row, such a row raises the same
    error when the rows are read.
    """
    if not path.is_file():
        raise ImportSourceError(Message(gettext_noop("File %(path)s is missing."), {"path": path.name}))
    encoding = encoding_detect(path)
    with path.open(encoding=encoding, newline="") as handle:
        first_line = handle.readline()
        delimiter = delimiter_detect(first_line.rstrip("\r\n"))
        handle.seek(0)
        try:
            header = [name.strip() for name in next(csv.reader(handle, delimiter=delimiter), [])]
        except csv.Error as error:
            raise csv_error(path.name, 1, error) from None
        if not any(header):
            raise ImportSourceError(Message(gettext_noop("File %(file)s is empty or has no header row."), {"file": path.name}))
        header_duplicates_check(header, path.name)
        if rows_check:
            # Every row is read once here, so that a file with a row the csv module cannot read fails at
            # the upload, before a run is created, and not on the mapping page or in the run.
            handle.seek(0)
            for _row in csv_rows(handle, delimiter, path.name):
                pass
    return TableStream(path=path, file_name=path.name, header=header, encoding=encoding, delimiter=delimiter)


def header_duplicates_check(header: list[str], file_name: str) -> None:
    """Raise ImportSourceError naming every column name that `header` has more than once.

    A row is read into a dict by column name, so the last of two `amount` columns would
    silently win. Names are compared as written after stripping spaces; empty names are
    ignored, because Excel writes empty cells after the last column.
    """
    seen = set()
    duplicates = []
    for name in header:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        if name:
            seen.add(name)
    if duplicates:
        raise ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s has the column(s) %(columns)s more than once, so it is unclear which one to read. "
                    "Rename or remove the extra column(s) and import the file again."
                ),
                {"file": file_name, "columns": ", ".join(duplicates)},
            )
        )


def _row_from_cells(header: list[str], cells: list, number_formats: list) -> dict[str, str]:
    return {
        name: (_cell_text(cells[index], number_formats[index]) if index < len(cells) else "")
        for index, name in enumerate(header)
        if name
    }


class NumberCell(str):
    """The text of a spreadsheet's number cell, carrying the cell's exact value in `number`.

    A number cell contains a value, not text, so the parsers take `number` as it is and never
    read `1.234` as thousands the way they read such text. `percent` is set when the cell's
    number format shows a percentage, where Excel stores 100 % as 1.
    """

    number: Decimal
    percent: bool

    def __new__(cls, text: str, number: Decimal, percent: bool = False):
        cell = super().__new__(cls, text)
        cell.number = number
        cell.percent = percent
        return cell

    def __getnewargs__(self):
        return (str(self), self.number, self.percent)

    def strip(self, chars=None):
        # The text has no surrounding spaces, and a plain str would lose `number` on its way to the parsers.
        return self


# Excel keeps 15 significant digits, so a float's further digits are binary noise (0.1 + 0.2 is 0.30000000000000004).
EXCEL_SIGNIFICANT_DIGITS = 15


def number_cell(value: int | float, number_format: str | None = None) -> NumberCell:
    """Return a number cell's text and exact value, the value rounded to the 15 significant digits Excel keeps."""
    number = Decimal(value) if isinstance(value, int) else Decimal(format(value, f".{EXCEL_SIGNIFICANT_DIGITS}g"))
    return NumberCell(format(number, "f"), number, percent="%" in (number_format or ""))


def _cell_text(value, number_format: str | None = None) -> str:
    """Return a cell as stripped text; numbers become NumberCell, whole floats lose their `.0`, dates become ISO strings.

    Excel stores a date as a date and time, so openpyxl reads a date-only cell as a datetime
    at 00:00:00. Such a cell becomes the date alone, which the importers store at 12:00 UTC
    like the same date in a CSV file. NOTE: a cell that contains the time 00:00 itself reads
    as a date too, because the value alone cannot tell the two apart.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return number_cell(value, number_format)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time.min:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _xlsx_read(path: Path, *, sheet: str | None, columns: tuple[str, ...]) -> Table:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # data_only=False: a formula cell reads as its formula text, so nothing is evaluated.
    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        # openpyxl's text is English and technical, so it goes to the log and not into the message.
        logger.warning("Opening XLSX workbook failed file=%s error=%r", path.name, error)
        raise ImportSourceError(
            Message(
                gettext_noop("File %(file)s is not a readable XLSX workbook; save it again from Excel."),
                {"file": path.name},
            )
        ) from None
    try:
        worksheet = workbook[sheet] if sheet else sheet_choose(workbook, columns)
        # Cells rather than values, because a percentage's number format shows that 1 is 100 %.
        rows_iter = worksheet.iter_rows()
        header = [_cell_text(cell.value) for cell in next(rows_iter, ())]
        if not any(header):
            raise ImportSourceError(Message(gettext_noop("File %(file)s is empty or has no header row."), {"file": path.name}))
        header_duplicates_check(header, path.name)
        rows = []
        for line, row_cells in enumerate(rows_iter, start=2):
            cells = [cell.value for cell in row_cells]
            if not any(_cell_text(cell) for cell in cells):
                continue
            _inexact_numbers_check(header, cells, file_name=path.name, sheet=worksheet.title, line=line)
            number_formats = [getattr(cell, "number_format", None) for cell in row_cells]
            rows.append((line, _row_from_cells(header, cells, number_formats)))
    finally:
        workbook.close()
    sheet_names = list(workbook.sheetnames)
    return Table(
        file_name=path.name,
        header=header,
        rows=rows,
        encoding="xlsx",
        delimiter="",
        sheet=worksheet.title,
        sheet_names=sheet_names if len(sheet_names) > 1 else [],
    )


# Above 2**53 a float cannot represent every whole number, so such a cell has lost digits.
FLOAT_EXACT_MAX = 2**53


def _inexact_numbers_check(header: list[str], cells, *, file_name: str, sheet: str, line: int) -> None:
    """Raise ImportSourceError for a whole-number cell stored as a float above FLOAT_EXACT_MAX.

    Excel stores numbers as doubles with at most 15 significant digits, so an 18-digit id
    typed into a number cell reads back with other last digits (123456789012345678 as
    123456789012345696). Stored as text, the id keeps its digits. The file fails as a whole
    rather than row by row, because an id column that lost digits has lost them in every row.
    """
    for index, value in enumerate(cells):
        if isinstance(value, float) and value.is_integer() and abs(value) >= FLOAT_EXACT_MAX:
            column = header[index] if index < len(header) else ""
            raise ImportSourceError(
                Message(
                    gettext_noop(
                        "File %(file)s, sheet %(sheet)s, line %(line)d, column %(column)s: the number %(value)s has "
                        "more digits than Excel stores exactly, so its last digits are lost. Format the column as text "
                        "in Excel, enter the values again (or paste them from the CRM's export), and import the file again."
                    ),
                    {"file": file_name, "sheet": sheet, "line": line, "column": column, "value": str(int(value))},
                )
            )


# A first row with fewer named cells is a title or a note, such as "Export from CRM" on a cover sheet.
HEADER_MIN_COLUMNS = 2


def sheet_choose(workbook, columns: tuple[str, ...]):
    """Return the sheet to read when none is named: the first whose first row is a header.

    With `columns`, that header must name all of them. Otherwise a header names at least
    HEADER_MIN_COLUMNS columns. Without such a sheet, the first sheet is read, and the
    missing columns are reported with the workbook's sheets.
    """
    for worksheet in workbook.worksheets:
        first_row = next(worksheet.iter_rows(max_row=1, values_only=True), ())
        names = [_cell_text(value) for value in first_row]
        if columns and all(name in names for name in columns):
            return worksheet
        if not columns and sum(1 for name in names if name) >= HEADER_MIN_COLUMNS:
            return worksheet
    return workbook.worksheets[0]


def is_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def csv_safe_cell(value: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with `'`, so it is shown as text."""
    if value and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def parse_decimal(value: str, column: str, *, single_separator_decimal: bool = False) -> Decimal:
    """Parse `1.234,56`, `1234,56`, `1,234.56` or `1234.56`, with or without a currency sign; may be negative.

    A value with only one separator followed by exactly three digits (`1.234`, `1,234`)
    is read as thousands, the way both German and English Excel display amounts. With
    `single_separator_decimal`, one separator that occurs once is the decimal separator
    (`27.023` and `27,023` are 27.023), for numbers that often have three decimals, such as
    exchange rates. A NumberCell, a spreadsheet's number cell, is its exact value.
    """
    if isinstance(value, NumberCell):
        return value.number
    text = SPACES.sub("", CURRENCY_MARK.sub(lambda match: "" if _mark_currencies(match[0]) else match[0], value))
    if is_formula(value) and not re.match(r"^-\s*[\d€$£¥]", value):
        raise RowRejected(column, value, gettext_noop("formula cells are not evaluated; enter the number itself"))
    if single_separator_decimal and re.match(r"^-?\d+[.,]\d+$", text):
        normalized = text.replace(",", ".")
    elif GERMAN_NUMBER.match(text) and not ENGLISH_NUMBER.match(text):
        normalized = text.replace(".", "").replace(",", ".")
    elif ENGLISH_NUMBER.match(text):
        if re.match(r"^-?[1-9]\d{0,2}\.\d{3}$", text):
            # "1.234" is a German thousand: no one writes a price with three decimals.
            normalized = text.replace(".", "")
        else:
            normalized = text.replace(",", "")
    else:
        raise RowRejected(column, value, INVALID_NUMBER)
    try:
        return Decimal(normalized)
    except InvalidOperation:
        raise RowRejected(column, value, INVALID_NUMBER) from None


def _mark_currencies(mark: str) -> frozenset[str]:
    """Return the currencies a sign or code stands for; empty when `mark` is no ISO 4217 code."""
    if mark in SIGN_CURRENCIES:
        return SIGN_CURRENCIES[mark]
    code = mark.upper()
    return frozenset({code}) if is_currency_code(code) else frozenset()


def currency_marks_check(value: str, column: str, currency: str) -> None:
    """Reject `value` when a currency sign or code in it stands for another currency than `currency`."""
    for match in CURRENCY_MARK.finditer(value):
        currencies = _mark_currencies(match[0])
        if currencies and currency not in currencies:
            raise RowRejected(
                column,
                value,
                gettext_noop(
                    "the amount is marked %(mark)s, but the currency is %(currency)s; remove %(mark)s from the amount, "
                    "or set the currency to the amount's currency"
                ),
                mark=match[0],
                currency=currency,
            )


def parse_money(value: str, column: str, *, currency: str = "") -> Decimal:
    """Parse a non-negative amount in either number style, rounded half-up to cents, at most MAX_MONEY_AMOUNT.

    With `currency`, a sign or code in `value` must stand for that currency (`1.234,56 €`
    in EUR), else the row is rejected. Without it, signs and codes are ignored.
    """
    # Whole numbers, as most CRM exports write amounts, need none of parse_decimal's checks.
    if value.isascii() and value.isdigit() and len(value) <= MAX_WHOLE_AMOUNT_DIGITS:
        return Decimal(value).quantize(CENT)
    amount = parse_decimal(value, column)
    if currency:
        currency_marks_check(value, column, currency)
    if amount < 0:
        raise RowRejected(column, value, gettext_noop("negative amount; amounts must be 0 or more"))
    if amount > MAX_MONEY_AMOUNT:
        raise RowRejected(column, value, AMOUNT_TOO_LARGE)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_percent(value: str, column: str) -> int:
    """Parse a probability 0–100 written as `40`, `40 %`, `40,0` or `0.4` (fractions below 1 are scaled).

    A number cell formatted as a percentage contains the fraction (1 for 100 %), so it is always scaled.
    """
    if isinstance(value, NumberCell) and value.percent:
        number = value.number * 100
    else:
        number = parse_decimal(value.replace("%", ""), column)
        if Decimal(0) < number < Decimal(1) and "%" not in value:
            number *= 100
    if not Decimal(0) <= number <= Decimal(100):
        raise RowRejected(column, value, gettext_noop("out of range; expected 0 to 100"))
    return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def import_date_range(today: dt.date) -> DateRange:
    """Return the range of the deal, stage-change and activity dates that imports accept.

    It is spm.date_limits.planning_range: from EARLIEST_DATE to PLANNING_YEARS after
    `today`, the organization's local date. A year such as 0001 or 9999 is a typing or
    export error, and the fiscal periods around it do not fit `datetime.date`.
    """
    return planning_range(today)


def date_range_check(day: dt.date, column: str, value: str, allowed: DateRange | None) -> dt.date:
    """Return `day`, or raise RowRejected naming `value` and the range when `day` lies outside `allowed`."""
    if allowed is None or allowed.contains(day):
        return day
    raise RowRejected(
        column,
        value,
        gettext_noop("date outside the allowed range; enter a date from %(earliest)s to %(latest)s"),
        earliest=allowed.earliest,
        latest=allowed.latest,
    )


def parse_day(value: str, column: str, *, date_order: str = "", allowed: DateRange | None = None) -> dt.date:
    """Parse `2025-04-03`, `03.04.2025` (day first) or `03/04/2025` with `date_order` "dmy" or "mdy".

    A slashed date whose day and month are both 12 or less is rejected when no date order
    is given, because it reads as two different days. One with a part above 12 is
    unambiguous and accepted. A time after the date is ignored here. A day outside
    `allowed` is rejected with the range in the message; None accepts any day.
    """
    return date_range_check(_day_parse(value, column, date_order), column, value, allowed)


def _day_parse(value: str, column: str, date_order: str) -> dt.date:
    # The common ISO spelling skips the regular expressions below; it is most of what CRMs export.
    if len(value) == 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit():
        if value[5:7].isdigit() and value[8:].isdigit():
            try:
                return dt.date(int(value[:4]), int(value[5:7]), int(value[8:]))
            except ValueError:
                raise RowRejected(column, value, gettext_noop("invalid date; no such day, so check the day and the month")) from None
    if is_formula(value):
        raise RowRejected(column, value, gettext_noop("formula cells are not evaluated; enter the date itself"))
    text = value.strip().split("T")[0].split(" ")[0]
    try:
        if match := ISO_DATE.match(text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if match := DOTTED_DATE.match(text):
            return dt.date(int(match[3]), int(match[2]), int(match[1]))
        if match := SLASHED_DATE.match(text):
            first, second, year = int(match[1]), int(match[2]), int(match[3])
            if first > 12 and second > 12:
                raise RowRejected(
                    column,
                    value,
                    gettext_noop(
                        "invalid date; neither part can be the month, so it is no date as DD/MM/YYYY or as MM/DD/YYYY"
                    ),
                )
            order = date_order
            if not order:
                if first > 12:
                    order = "dmy"
                elif second > 12:
                    order = "mdy"
                elif first != second:
                    raise RowRejected(
                        column,
                        value,
                        gettext_noop(
                            "ambiguous date: it can be day/month or month/day; choose the date order "
                            "(DD/MM/YYYY or MM/DD/YYYY) and import again"
                        ),
                    )
                else:
                    order = "dmy"
            if order == "dmy":
                return dt.date(year, second, first)
            return dt.date(year, first, second)
    except ValueError:
        raise RowRejected(column, value, gettext_noop("invalid date; no such day, so check the day and the month")) from None
    raise RowRejected(column, value, gettext_noop("invalid date; expected YYYY-MM-DD or DD.MM.YYYY"))


def parse_moment(
    value: str, column: str, *, time_zone: zoneinfo.ZoneInfo, date_order: str = "", allowed: DateRange | None = None
) -> dt.datetime:
    """Parse a date with an optional time into an aware datetime.

    A value without an offset is a wall-clock time in `time_zone` (the organization's).
    During the autumn clock change the earlier of the two instants is taken, and a
    time in the spring gap is moved forward by the gap, as zoneinfo does with fold=0.
    A date without a time is taken as 12:00 UTC, like every date-only import.
    The date as written must lie in `allowed` (see `import_date_range`); None accepts
    any date. Every rejection names the whole value, not only its date part.
    """
    if is_formula(value):
        raise RowRejected(column, value, gettext_noop("formula cells are not evaluated; enter the date itself"))
    text = value.strip()
    offset = None
    if match := OFFSET_SUFFIX.search(text):
        suffix = match[1]
        if ":" in text[: match.start()] or suffix == "Z":
            offset = suffix
            text = text[: match.start()].strip()
    parts = re.split(r"[T ]", text, maxsplit=1)
    try:
        # Checked before the time is added, so that converting a moment near year 1 or 9999 cannot overflow.
        day = parse_day(parts[0], column, date_order=date_order, allowed=allowed)
    except RowRejected as rejection:
        raise RowRejected(column, value, rejection.reason) from None
    if len(parts) == 1 or not parts[1].strip():
        if offset is not None:
            raise RowRejected(column, value, gettext_noop("invalid date and time"))
        return dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=dt.timezone.utc)
    match = TIME_PART.match(parts[1].strip())
    if match is None:
        raise RowRejected(column, value, gettext_noop("invalid time; expected HH:MM or HH:MM:SS"))
    hour, minute = int(match[1]), int(match[2])
    second = int(match[3] or 0)
    microsecond = int((match[4] or "0").ljust(6, "0"))
    try:
        naive = dt.datetime(day.year, day.month, day.day, hour, minute, second, microsecond)
    except ValueError:
        raise RowRejected(column, value, gettext_noop("invalid time; expected HH:MM or HH:MM:SS")) from None
    if offset is None:
        local = naive.replace(tzinfo=time_zone)
        # Round-tripping through UTC moves a time inside the spring gap past the gap.
        return local.astimezone(dt.timezone.utc)
    if offset == "Z":
        return naive.replace(tzinfo=dt.timezone.utc)
    return naive.replace(tzinfo=_offset_zone(offset, column, value)).astimezone(dt.timezone.utc)


def has_time(value: str) -> bool:
    """Return whether a date text that `parse_moment` reads also has a time (`2025-04-03 15:00`, `2025-04-03T15:00Z`)."""
    parts = re.split(r"[T ]", value.strip(), maxsplit=1)
    return len(parts) == 2 and bool(parts[1].strip())


def close_time_settle(
    closed_at: dt.datetime, created_at: dt.datetime, *, close_text: str, time_zone: zoneinfo.ZoneInfo
) -> dt.datetime | None:
    """Return the close time to store for a deal created at `created_at`, or None when it closed before its creation.

    A close date without a time, which `parse_moment` puts at 12:00 UTC, is compared by its
    day in `time_zone`, so a deal closed on the day it was created is accepted. Such a deal
    closes at its creation time when that is later than 12:00 UTC, because the KPIs' cycle
    days (closed_at − created_at) must not be negative. A close with a time is compared as it is.
    """
    if has_time(close_text):
        return closed_at if closed_at >= created_at else None
    if closed_at.astimezone(time_zone).date() < created_at.astimezone(time_zone).date():
        return None
    return max(closed_at, created_at)


def _offset_zone(offset: str, column: str, value: str) -> dt.timezone:
    """Return the fixed zone of an offset such as `+01:00` or `-0530`; reject one outside -23:59 to +23:59."""
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    # datetime.timezone raises ValueError for 24 hours or more, and 75 minutes is a typing error, not 1:15.
    if hours > 23 or minutes > 59:
        raise RowRejected(
            column,
            value,
            gettext_noop("invalid time zone offset %(offset)s; offsets run from -23:59 to +23:59"),
            offset=offset,
        )
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


# The earlier message id, kept in the catalog so that rejected rows stored with it still translate.
INVALID_BOOL_STORED_BEFORE = gettext_noop("invalid yes/no value; expected True or False")


def parse_bool(value: str, column: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "ja", "1", "wahr", "x"):
        return True
    if lowered in ("false", "no", "nein", "0", "falsch", ""):
        return False
    # The German catalog names the German words (ja/nein, wahr/falsch) too.
    raise RowRejected(column, value, gettext_noop("invalid yes/no value; expected yes/no, true/false or 1/0"))


def text_cell(value: str, column: str, max_length: int) -> str:
    """Return a text cell as stored: formula-like text stays text; too long is rejected."""
    if len(value) > max_length:
        raise RowRejected(column, value, gettext_noop("too long; at most %(max_length)d characters"), max_length=max_length)
    return value
