"""A header that names a column twice fails the file instead of reading one of the two silently."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope
from openpyxl import Workbook

from pipelines.importers.base import ImportSourceError
from pipelines.importers.formats import table_read, table_stream
from pipelines.models import ImportRun
from tests.import_helpers import export_folder, import_upload, run_file_import

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


def duplicate_columns_workbook(header: list[str]) -> bytes:
    workbook = Workbook()
    workbook.active.append(header)
    workbook.active.append([str(index) for index in range(len(header))])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


UPLOAD_CASES = [
    ("generic", "deals.csv", DUPLICATE_AMOUNT.encode(), "amount"),
    ("generic", "deals.xlsx", duplicate_columns_workbook(["external_id", "owner", "amount", "amount"]), "amount"),
    ("hubspot", "deals.csv", b"Record ID,Deal Stage,Amount,Amount\n501,Closed Won,5,7\n", "Amount"),
    ("pipedrive", "deals.csv", "Deal - Title;Deal - Value;Deal - Value\nA;1;2\n".encode(), "Deal - Value"),
    ("pipedrive", "deal_changes.csv", b"deal_id,change_time,stage_id,stage_id\n1,2025-01-01,2,3\n", "stage_id"),
    ("salesforce", "opportunities.csv", b"Id,Name,Amount,Amount\n006A,Deal,5,7\n", "Amount"),
]
EXPECTED_GERMAN = (
    "Die Datei {file} enthält die Spalte(n) {columns} mehrfach, daher ist unklar, welche gelesen werden soll. "
    "Benennen Sie die überzähligen Spalten um oder entfernen Sie sie, und importieren Sie die Datei erneut."
)


@pytest.mark.parametrize(("source", "file_name", "content", "columns"), UPLOAD_CASES)
@pytest.mark.parametrize("language", ["en", "de"])
def test_upload_duplicate_column_rejected(org, admin_client, import_storage, source, file_name, content, columns, language):
    response = import_upload(admin_client, source, {file_name: content}, HTTP_ACCEPT_LANGUAGE=language)

    expected = expected_message(file_name, columns) if language == "en" else EXPECTED_GERMAN.format(file=file_name, columns=columns)
    assert response.status_code == 400
    assert response.context["form"].errors["files"] == [expected]
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_command_duplicate_column_rejected(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": DUPLICATE_AMOUNT})

    with pytest.raises(CommandError) as raised:
        call_command(
            "import_crm",
            str(folder),
            "--map",
            "external_id=external_id",
            "--map",
            "owner=owner",
            "--map",
            "created_at=created_at",
            org="acme",
            source="generic",
            language="en",
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )

    assert str(raised.value) == expected_message("deals.csv", "amount")
