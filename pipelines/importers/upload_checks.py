"""Checks that an uploaded table file matches its extension and has data rows, before its rows are read.

People rename files: a ZIP archive or an XLSX workbook saved as .csv, an old .xls
workbook, a PDF. Read as text, such a file gives a garbage header, and the upload then
reports missing columns or no rows at all. These checks name the actual problem. Every
upload of tables uses them: people, quotas, exchange rates and the CRM imports.
"""

import zipfile
from pathlib import Path

from django.utils.translation import gettext, gettext_noop

from pipelines.importers.base import ImportSourceError, Message
from pipelines.importers.formats import sheet_choose

# Bytes read from the start of a file to recognize its type and, for small files, its rows.
HEAD_BYTES = 64 * 1024
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
# Files that the CRM importers read as tables.
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", *WORKBOOK_SUFFIXES)
ZIP_SIGNATURE = b"PK\x03\x04"
# Compound File Binary, the container of Excel 97-2003 workbooks (.xls).
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
UTF16_BYTE_ORDER_MARKS = (b"\xff\xfe", b"\xfe\xff")
# Starts of common files that are no table, each with the noun phrase that names the file type.
FILE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", gettext_noop("a PNG image")),
    (b"\xff\xd8\xff", gettext_noop("a JPEG image")),
    (b"GIF87a", gettext_noop("a GIF image")),
    (b"GIF89a", gettext_noop("a GIF image")),
    (b"II*\x00", gettext_noop("a TIFF image")),
    (b"MM\x00*", gettext_noop("a TIFF image")),
    (b"%PDF-", gettext_noop("a PDF document")),
    (b"\x1f\x8b", gettext_noop("a gzip archive")),
    (b"Rar!\x1a\x07", gettext_noop("a RAR archive")),
    (b"7z\xbc\xaf\x27\x1c", gettext_noop("a 7-Zip archive")),
)
# Characters of a CSV line whose cells are all empty, as Excel writes them (";;;").
EMPTY_ROW_CHARACTERS = " \t;,|\"'"


def table_head_check(head: bytes, file_name: str) -> None:
    """Raise ImportSourceError when `head`, the first bytes of the file, does not fit the extension of `file_name`.

    No file may be an .xls workbook or a file type of FILE_SIGNATURES (PDF, PNG, …). An
    .xlsx or .xlsm file must be a ZIP archive. Any other file must be text: not a ZIP
    archive or UTF-16 text, and without NUL bytes, which CSV text in UTF-8 or
    Windows-1252 never contains. An empty `head` passes.
    """
    if head.startswith(OLE2_SIGNATURE):
        raise ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s is an Excel 97-2003 workbook (.xls), which cannot be read. "
                    "Save it as an Excel workbook (.xlsx) or as CSV UTF-8 and upload it again."
                ),
                {"file": file_name},
            )
        )
    is_workbook = file_name.lower().endswith(WORKBOOK_SUFFIXES)
    _signature_check(head, file_name, is_workbook=is_workbook)
    if is_workbook:
        if head and not head.startswith(ZIP_SIGNATURE):
            raise ImportSourceError(
                Message(
                    gettext_noop(
                        "File %(file)s is not an Excel workbook, although its name ends in .xlsx. "
                        "Save it from Excel as .xlsx, or as CSV UTF-8 with the extension .csv, and upload it again."
                    ),
                    {"file": file_name},
                )
            )
        return
    if head.startswith(ZIP_SIGNATURE):
        raise ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: "
                    "upload a workbook with the extension .xlsx, or export the data as CSV."
                ),
                {"file": file_name},
            )
        )
    if head.startswith(UTF16_BYTE_ORDER_MARKS):
        raise ImportSourceError(
            Message(
                gettext_noop("File %(file)s is UTF-16 text, which cannot be read. Save it as CSV UTF-8 and upload it again."),
                {"file": file_name},
            )
        )
    if b"\x00" in head:
        raise ImportSourceError(
            Message(
                gettext_noop(
                    "File %(file)s is not a text file: it contains the byte 0x00, which no CSV file contains. "
                    "Save it as CSV UTF-8 and upload it again."
                ),
                {"file": file_name},
            )
        )


def _signature_check(head: bytes, file_name: str, *, is_workbook: bool) -> None:
    """Raise ImportSourceError naming the file type when `head` starts with one of FILE_SIGNATURES."""
    for signature, kind in FILE_SIGNATURES:
        if not head.startswith(signature):
            continue
        if is_workbook:
            msgid = gettext_noop("File %(file)s is %(kind)s, not an Excel workbook; export the data as CSV UTF-8 or XLSX.")
        else:
            msgid = gettext_noop("File %(file)s is %(kind)s, not a CSV file; export the data as CSV UTF-8 or XLSX.")
        raise ImportSourceError(Message(msgid, {"file": file_name, "kind": Message(kind)}))


def empty_file_error(file_name: str) -> ImportSourceError:
    """Return the error for a file of 0 bytes, the same for every upload form and `import_crm`."""
    return ImportSourceError(
        Message(
            gettext_noop("File %(file)s is empty (0 bytes); export the data again with its header row and data rows."),
            {"file": file_name},
        )
    )


def table_file_check(path: Path) -> None:
    """Run `table_head_check` on the first HEAD_BYTES of the file at `path`; a missing file is left to the reader."""
    if not path.is_file():
        return
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    table_head_check(head, path.name)


def no_data_rows_error(file_name: str) -> ImportSourceError:
    return ImportSourceError(
        Message(
            gettext_noop("File %(file)s has a header row but no data rows; add at least one row below the header."),
            {"file": file_name},
        )
    )


def folder_data_rows_check(path: Path) -> None:
    """Raise ImportSourceError when no table file of the folder (or the file) at `path` has a data row.

    The same rule as for uploads: a single file without data rows may belong to an export
    of several files, so only an export whose table files all lack them fails.
    """
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    tables = [file for file in files if file.is_file() and file.suffix.lower() in TABLE_SUFFIXES]
    if not tables or any(file_has_data_rows(table) for table in tables):
        return
    if len(tables) == 1:
        raise no_data_rows_error(tables[0].name)
    raise ImportSourceError(
        gettext("None of the files %(files)s has data rows below its header row.")
        % {"files": ", ".join(table.name for table in tables)}
    )


def file_has_data_rows(path: Path) -> bool:
    """Return whether the table file at `path` has a non-empty row below its first row, the header.

    Reads at most the first HEAD_BYTES of a text file, and a longer file counts as having
    data rows. A text header that spans several lines inside quotes counts as data rows too,
    as does a workbook that openpyxl cannot open, so the importer reports those files.
    """
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        return _workbook_has_data_rows(path)
    if path.stat().st_size > HEAD_BYTES:
        return True
    # Only whether a line is empty matters here, so bytes that do not decode may be replaced.
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip(EMPTY_ROW_CHARACTERS)]
    return len(lines) > 1


def _workbook_has_data_rows(path: Path) -> bool:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        return True
    try:
        if not workbook.worksheets:
            return True
        # The sheet the importer reads: a cover sheet with only a title is skipped.
        for cells in sheet_choose(workbook, ()).iter_rows(min_row=2, values_only=True):
            if any(cell is not None and str(cell).strip() for cell in cells):
                return True
        return False
    finally:
        workbook.close()
