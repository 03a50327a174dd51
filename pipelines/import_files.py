"""Checks of the table files each CRM importer reads from an upload or export folder, so files it would skip are rejected.

The importers pick their files by name (Maven, the Pipedrive change log) or take the
first file of a kind (generic, HubSpot, a Pipedrive deals list, Salesforce). A second
file of the same kind, or a file of another export, would be skipped without notice and
its rows would be missing from the counts. `import_files_check` names such files before
the import starts. The rules follow the file choice in pipelines.importers.
"""

import zipfile
from pathlib import Path

from django.utils.translation import gettext_noop

from pipelines.importers.base import ImportSourceError, Message
from pipelines.importers.formats import sheet_choose, table_stream
from pipelines.importers.maven import (
    ACCOUNTS_FILE,
    PIPELINE_FILE,
    PRODUCTS_FILE,
    TEAMS_FILE,
)
from pipelines.importers.pipedrive import (
    ACTIVITY_FILE,
    ACTIVITY_TYPES_FILE,
    CHANGES_FILE,
    FIELDS_FILE,
    STAGES_FILE,
    USERS_FILE,
)
from pipelines.importers.upload_checks import WORKBOOK_SUFFIXES
from pipelines.models import ImportSource

# The column description in Maven's sample export, which the importer does not need.
MAVEN_DICTIONARY_FILE = "data_dictionary.csv"
MAVEN_FILES = (ACCOUNTS_FILE, PRODUCTS_FILE, PIPELINE_FILE, TEAMS_FILE, MAVEN_DICTIONARY_FILE)
PIPEDRIVE_CHANGE_LOG_FILES = (CHANGES_FILE, STAGES_FILE, USERS_FILE, ACTIVITY_FILE, ACTIVITY_TYPES_FILE, FIELDS_FILE)
# File types that the HubSpot, Pipedrive and Salesforce importers read. They ignore .tsv and .xlsm files.
CRM_EXPORT_SUFFIXES = (".csv", ".xlsx", ".txt")
SALESFORCE_HISTORY_COLUMNS = ("FromOpportunityStageName", "OpportunityId")

HUBSPOT_EXPECTED = gettext_noop("a HubSpot import reads only a CSV or XLSX deals export with the column “Record ID”")
PIPEDRIVE_DEALS_EXPECTED = gettext_noop(
    "a Pipedrive deals import reads only a CSV or XLSX deals export with the column “Deal - Title”"
)
PIPEDRIVE_CHANGE_LOG_EXPECTED = gettext_noop(
    "a Pipedrive change log import reads only deal_changes.csv, stages.csv, users.csv, activity.csv, "
    "activity_types.csv and fields.csv"
)
SALESFORCE_EXPECTED = gettext_noop(
    "a Salesforce import reads only CSV or XLSX files: one of opportunities and one of their stage history"
)
MAVEN_EXPECTED = gettext_noop(
    "a Maven import reads only accounts.csv, products.csv, sales_pipeline.csv and sales_teams.csv "
    "(data_dictionary.csv may be present)"
)


def import_files_check(source: str, directory: Path, names: list[str]) -> None:
    """Raise ImportSourceError when the `source` importer would skip one of the table files `names` in `directory`.

    Passes when the importer would read none of the files, because the importer then
    reports the missing export with its own message.
    """
    names = sorted(names)
    if source == ImportSource.GENERIC:
        _one_file_check(gettext_noop("deals"), names)
    elif source == ImportSource.HUBSPOT:
        _kind_files_check(directory, names, "Record ID", HUBSPOT_EXPECTED)
    elif source == ImportSource.PIPEDRIVE and CHANGES_FILE in names:
        _named_files_check(names, PIPEDRIVE_CHANGE_LOG_FILES, PIPEDRIVE_CHANGE_LOG_EXPECTED)
    elif source == ImportSource.PIPEDRIVE:
        _kind_files_check(directory, names, "Deal - Title", PIPEDRIVE_DEALS_EXPECTED)
    elif source == ImportSource.SALESFORCE:
        _salesforce_files_check(directory, names)
    elif source == ImportSource.MAVEN:
        _named_files_check(names, MAVEN_FILES, MAVEN_EXPECTED)


def _one_file_check(kind: str, names: list[str], used: str = "") -> None:
    """Raise ImportSourceError when `names` lists several files of a kind that the importer reads only one of.

    `used` is the file it reads, by default the first.
    """
    if len(names) < 2:
        return
    used = used or names[0]
    raise ImportSourceError(
        Message(
            gettext_noop(
                "The import reads only one file of %(kind)s, so it would read %(used)s and skip %(skipped)s. "
                "Combine the rows into one file with one header row, or import the files one after the other."
            ),
            {"kind": Message(kind), "used": used, "skipped": ", ".join(name for name in names if name != used)},
        )
    )


def _other_files_check(names: list[str], read: list[str], expected: str) -> None:
    """Raise naming the files of `names` that are not in `read`; `expected` names the files the importer reads."""
    skipped = [name for name in names if name not in read]
    if not skipped:
        return
    raise ImportSourceError(
        Message(
            gettext_noop(
                "The import would skip %(skipped)s, because %(expected)s. Remove the other files and import again."
            ),
            {"skipped": ", ".join(skipped), "expected": Message(expected)},
        )
    )


def _named_files_check(names: list[str], known: tuple[str, ...], expected: str) -> None:
    _other_files_check(names, [name for name in names if name in known], expected)


def _kind_files_check(directory: Path, names: list[str], column: str, expected: str) -> None:
    """Check an export of one deals file, which the importer recognizes by `column`."""
    deal_files = [
        name for name in names if name.lower().endswith(CRM_EXPORT_SUFFIXES) and column in table_header(directory / name, column)
    ]
    if not deal_files:
        return
    _one_file_check(gettext_noop("deals"), deal_files)
    _other_files_check(names, deal_files, expected)


def _salesforce_files_check(directory: Path, names: list[str]) -> None:
    """Check for one opportunity file and at most one stage history file.

    The importer reads the first file in name order without history columns as the
    opportunities, and the last file with them as the history.
    """
    opportunities, history = [], []
    for name in names:
        if not name.lower().endswith(CRM_EXPORT_SUFFIXES):
            continue
        header = table_header(directory / name)
        if any(column in header for column in SALESFORCE_HISTORY_COLUMNS):
            history.append(name)
        else:
            opportunities.append(name)
    if not opportunities:
        return
    _one_file_check(gettext_noop("opportunities"), opportunities)
    if history:
        _one_file_check(gettext_noop("opportunity stage history"), history, used=history[-1])
    _other_files_check(names, opportunities + history, SALESFORCE_EXPECTED)


def table_header(path: Path, column: str = "") -> list[str]:
    """Return the header row of a table file, or [] when it cannot be read.

    A workbook's header comes from the sheet that the importer reads: with `column`, the
    first sheet that has it.
    """
    if path.suffix.lower() not in WORKBOOK_SUFFIXES:
        try:
            return table_stream(path).header
        except ImportSourceError:
            return []
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        return []
    try:
        if not workbook.worksheets:
            return []
        sheet = sheet_choose(workbook, (column,) if column else ())
        first_row = next(sheet.iter_rows(max_row=1, values_only=True), ())
        return ["" if cell is None else str(cell).strip() for cell in first_row]
    finally:
        workbook.close()
