"""A header that names a column twice fails the file instead of reading one of the two silently."""

import pytest
from openpyxl import Workbook

from pipelines.importers.base import ImportSourceError
from pipelines.importers.formats import table_read, table_stream
from pipelines.models import ImportRunStatus
from tests.import_helpers import export_folder, run_file_import, uploaded_dry_run

DUPLICATE_AMOUNT = "external_id;owner;created_at;amount;amount\nF1;Eva Roth;2025-01-01;5;7\n"


def expected_message(file_name: str, columns: str) -> str:
    return (
        f"File {file_name} has the column(s) {columns} more than once, so it is unclear which one to read. "
        "Rename or remove the extra column(s) and import the file again."
    )


def test_csv_duplicate_column_fails(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text(DUPLICATE_AMOUNT, encoding="utf-8")

    with pytest.raises(ImportSourceError) as raised:
        table_read(path)
    assert str(raised.value) == expected_message("deals.csv", "amount")

    with pytest.raises(ImportSourceError) as streamed:
        table_stream(path)
    assert str(streamed.value) == expected_message("deals.csv", "amount")


def test_xlsx_duplicate_columns_all_named(tmp_path):
    workbook = Workbook()
    workbook.active.append(["Record ID", "Amount", "Deal Stage", "Amount", "Deal Stage", "Amount", None, None])
    workbook.active.append(["1", "5", "Won", "7", "Lost", "9"])
    path = tmp_path / "deals.xlsx"
    workbook.save(path)

    with pytest.raises(ImportSourceError) as raised:
        table_read(path)

    assert str(raised.value) == expected_message("deals.xlsx", "Amount, Deal Stage")


def test_empty_trailing_header_cells_allowed(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("external_id;owner;;\nF1;Eva Roth;;\n", encoding="utf-8")

    table = table_read(path)

    assert table.header == ["external_id", "owner", "", ""]
    assert table.rows == [(2, {"external_id": "F1", "owner": "Eva Roth"})]


def test_hubspot_duplicate_column_fails(org, tmp_path):
    folder = export_folder(
        tmp_path / "hs",
        {"deals.csv": "Record ID,Deal Stage,Deal owner,Create Date,Amount,Amount\n501,Closed Won,Eva Roth,2025-01-10,5,7\n"},
    )

    with pytest.raises(ImportSourceError) as raised:
        run_file_import(org, "hubspot", folder)

    assert str(raised.value) == expected_message("deals.csv", "Amount")


def test_upload_with_duplicate_column_fails(org, admin_client, import_storage, django_capture_on_commit_callbacks):
    files = {"deals.csv": "Deal - Title;Deal - Value;Deal - Value\nA;1;2\n".encode()}

    run = uploaded_dry_run(org, admin_client, django_capture_on_commit_callbacks, "pipedrive", files)

    assert run.status == ImportRunStatus.FAILED
    assert run.message == expected_message("deals.csv", "Deal - Value")
