"""Rows with extra cells, date cells of workbooks, workbooks with several sheets and header-only files."""

import datetime as dt
import io

import pytest
from django.utils import translation
from django.core.management import call_command
from django.core.management.base import CommandError
from django_scopes import scope
from openpyxl import Workbook

from goals.parsing import parse_day as people_parse_day
from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.importers.formats import parse_moment, table_read
from pipelines.importers.generic import generic_table_find
from pipelines.models import Deal, DealStageChange
from tests.import_helpers import export_folder, run_file_import

HEADER = ["id", "owner", "created", "name", "stage", "status", "amount", "currency", "closed"]
MAPPING = {
    "external_id": "id",
    "owner": "owner",
    "created_at": "created",
    "name": "name",
    "stage": "stage",
    "status": "status",
    "amount": "amount",
    "currency": "currency",
    "closed_at": "closed",
}
GOOD_ROWS = [
    ["G1", "Eva Roth", "2017-01-10", "Deal one", "Qualify", "open", "1000.50", "EUR", ""],
    ["G2", "Eva Roth", "2017-01-11", "Deal two", "Won", "won", "2500", "EUR", "2017-03-01"],
    ["G3", "Max Beispiel", "2017-02-01", "Deal three", "Lost", "lost", "300", "EUR", "2017-04-02"],
]


def workbook_write(path, sheets: dict[str, list[list]]):
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def as_workbook_cell(value: str):
    """Return a CSV cell as Excel stores it: dates as datetimes at midnight, as openpyxl reads date cells."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return value or None
    return dt.datetime(day.year, day.month, day.day)


# --- Extra cells ---------------------------------------------------------------------------


def test_extra_cells_reject_file(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text('id,owner,created,amount\nZ1,Eva Roth,2017-01-10,1,234.56\nZ2,Eva Roth,2017-01-10,"1,234.56"\n')

    with pytest.raises(ImportSourceError) as caught:
        table_read(path)

    assert str(caught.value) == (
        "File deals.csv, line 2 has 5 cells, but the header has 4 columns. The likely cause is a value that "
        "contains the separator “,” without quotes, such as the amount 1,234.56 in a comma-separated file: "
        "put such values in quotes or export the file again."
    )


def test_extra_cells_message_german_quotes(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("id;owner;created;amount\nZ1;Eva Roth;2017-01-10;1;234\n", encoding="utf-8")

    with translation.override("de"), pytest.raises(ImportSourceError) as caught:
        table_read(path)

    with translation.override("de"):
        message = str(caught.value)
    assert "das Trennzeichen „;“ ohne Anführungszeichen" in message
    assert "“;”" not in message


def test_extra_cells_of_rates_reject_file(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("currency,valid_from,rate\nEUR,2016-01-09,1,234.5\n")

    with pytest.raises(ImportSourceError, match="line 2 has 4 cells, but the header has 3 columns"):
        table_read(path)


def test_trailing_empty_cells_accepted(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("a,b,c\n1,2,3,,\n4,5,6, ,\n")

    table = table_read(path)

    assert table.rows == [(2, {"a": "1", "b": "2", "c": "3"}), (3, {"a": "4", "b": "5", "c": "6"})]


def test_generic_import_with_extra_cells_stores_nothing(org, tmp_path):
    folder = export_folder(tmp_path / "generic", {"deals.csv": "id,owner,created,amount\nZ1,Eva Roth,2017-01-10,1,234.56\n"})

    with pytest.raises(ImportSourceError, match="line 2 has 5 cells"):
        run_file_import(org, "generic", folder, options={"mapping": {"external_id": "id", "owner": "owner", "created_at": "created", "amount": "amount"}})

    with scope(organization=org):
        assert not Deal.objects.exists()


# --- Date cells of workbooks ---------------------------------------------------------------


def test_workbook_date_cell_reads_as_date(tmp_path):
    path = workbook_write(
        tmp_path / "deals.xlsx",
        {"Deals": [["id", "created"], ["X1", dt.datetime(2017, 1, 10)], ["X2", dt.datetime(2017, 1, 11, 23, 30)]]},
    )

    table = table_read(path)

    assert [row["created"] for _line, row in table.rows] == ["2017-01-10", "2017-01-11 23:30:00"]


def test_csv_then_workbook_changes_nothing(org, tmp_path):
    csv_folder = export_folder(tmp_path / "csv", {"deals.csv": "\n".join(",".join(row) for row in [HEADER, *GOOD_ROWS]) + "\n"})
    xlsx_folder = tmp_path / "xlsx"
    xlsx_folder.mkdir()
    workbook_write(xlsx_folder / "deals.xlsx", {"Deals": [HEADER, *[[as_workbook_cell(cell) for cell in row] for row in GOOD_ROWS]]})
    first = run_file_import(org, "generic", csv_folder, options={"mapping": MAPPING})
    with scope(organization=org):
        moves_before = DealStageChange.objects.count()

    second = run_file_import(org, "generic", xlsx_folder, options={"mapping": MAPPING})

    assert first.counts["deals"].created == 3
    assert second.errors == []
    assert second.counts["deals"].as_dict() == {"created": 0, "updated": 0, "unchanged": 3, "deleted": 0, "rejected": 0}
    assert second.counts["stage_changes"].created == 0
    with scope(organization=org):
        assert DealStageChange.objects.count() == moves_before
        created = Deal.objects.get(external_id="G1").created_at
    assert created == dt.datetime(2017, 1, 10, 12, tzinfo=dt.timezone.utc)


def test_formula_date_names_whole_cell():
    with pytest.raises(RowRejected) as caught:
        parse_moment("=TODAY()", "created", time_zone=dt.timezone.utc)

    assert caught.value.value == "=TODAY()"
    assert str(caught.value.reason) == "formula cells are not evaluated; enter the date itself"


def test_invalid_day_names_whole_moment():
    with pytest.raises(RowRejected) as caught:
        parse_moment("2017-02-30 10:00", "created", time_zone=dt.timezone.utc)

    assert caught.value.value == "2017-02-30 10:00"
    assert str(caught.value.reason) == "invalid date; no such day, so check the day and the month"


def test_people_date_without_such_day():
    with pytest.raises(RowRejected) as caught:
        people_parse_day("2017-02-30", "active_from")

    assert str(caught.value.reason) == "invalid date; no such day, so check the day and the month"


# --- Workbooks with several sheets ---------------------------------------------------------


def test_cover_sheet_skipped(tmp_path):
    path = workbook_write(
        tmp_path / "deals.xlsx",
        {
            "Info": [["Export from CRM"], ["generated 2017"]],
            "Deals": [HEADER, [as_workbook_cell(cell) for cell in GOOD_ROWS[0]]],
        },
    )

    table = generic_table_find(path)

    assert table.sheet == "Deals"
    assert table.header == HEADER
    assert [line for line, _row in table.rows] == [2]


def test_sheet_with_named_columns_chosen(tmp_path):
    path = workbook_write(
        tmp_path / "deals.xlsx",
        {"Notes": [["Note", "Author"], ["check", "Eva"]], "Deals": [["Record ID", "Deal Name"], ["501", "Acme"]]},
    )

    table = table_read(path, columns=("Record ID",))

    assert table.sheet == "Deals"
    assert table.rows == [(2, {"Record ID": "501", "Deal Name": "Acme"})]


def test_missing_columns_name_sheets(tmp_path):
    path = workbook_write(tmp_path / "deals.xlsx", {"Info": [["Export from CRM"]], "Summary": [["Total"], [3]]})

    with pytest.raises(ImportSourceError) as caught:
        generic_table_find(path)

    assert str(caught.value) == (
        "File deals.xlsx, sheet Info, is missing the required column(s): Deal id, Owner (name or e-mail), Created on. "
        "The column names must be in the first row of the sheet. The workbook has the sheets Info, Summary: move "
        "the sheet with the data to the front, or remove the other sheets, and upload it again."
    )


def test_title_row_above_header_named(tmp_path):
    path = workbook_write(tmp_path / "deals.xlsx", {"Sheet": [["Deals Report Q1"], HEADER, GOOD_ROWS[0]]})

    with pytest.raises(ImportSourceError) as caught:
        generic_table_find(path)

    assert str(caught.value) == (
        "File deals.xlsx, sheet Sheet, is missing the required column(s): Deal id, Owner (name or e-mail), Created on. "
        "The column names must be in the first row of the sheet: remove any title rows above them."
    )


# --- Header-only files ---------------------------------------------------------------------


def test_command_rejects_header_only_file(org, tmp_path):
    folder = export_folder(tmp_path / "generic", {"deals.csv": ",".join(HEADER) + "\n"})
    maps = [f"--map={field}={column}" for field, column in MAPPING.items()]

    with pytest.raises(CommandError) as caught:
        call_command("import_crm", str(folder), *maps, org="acme", source="generic", language="en", stdout=io.StringIO(), stderr=io.StringIO())

    assert str(caught.value) == "File deals.csv has a header row but no data rows; add at least one row below the header."
    assert caught.value.returncode == 1
