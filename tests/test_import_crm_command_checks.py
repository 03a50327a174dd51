"""`import_crm` runs the upload page's file checks and words its messages for the command line."""

import io
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope

from pipelines.services_imports import import_mapping_save
from tests.import_helpers import export_folder, import_upload

GENERIC_HEADER = "external_id;owner;created_at;status\n"
GENERIC_DEALS = GENERIC_HEADER + "T1;Eva Roth;2025-02-01;open\n"
MAPS = ["--map", "external_id=external_id", "--map", "owner=owner", "--map", "created_at=created_at"]


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("deals.csv", GENERIC_DEALS)
    return buffer.getvalue()


def command_error(path, *args, source="generic", language="en") -> str:
    """Run import_crm on `path` and return the message it fails with."""
    with pytest.raises(CommandError) as raised:
        call_command(
            "import_crm", str(path), *args, org="acme", source=source, language=language, stdout=io.StringIO(), stderr=io.StringIO()
        )
    return str(raised.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            GENERIC_DEALS.encode("utf-16"),
            "File deals.csv is UTF-16 text, which cannot be read. Save it as CSV UTF-8 and upload it again.",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
            "File deals.csv is not a text file: it contains the byte 0x00, which no CSV file contains. "
            "Save it as CSV UTF-8 and upload it again.",
        ),
        (
            zip_bytes(),
            "File deals.csv is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: upload a "
            "workbook with the extension .xlsx, or export the data as CSV.",
        ),
        (b"", "File deals.csv is empty (0 bytes); export the data again with its header row and data rows."),
        (
            GENERIC_HEADER.encode(),
            "File deals.csv has a header row but no data rows; add at least one row below the header.",
        ),
    ],
)
@pytest.mark.parametrize("target", ["folder", "file"])
def test_command_checks_file_content(org, tmp_path, content, message, target):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "deals.csv").write_bytes(content)

    path = folder if target == "folder" else folder / "deals.csv"

    assert command_error(path, *MAPS) == message


def test_command_missing_path(org, tmp_path):
    path = tmp_path / "no-such-export"

    assert command_error(path, *MAPS) == f"{path} not found; pass the folder of the CRM export or one of its files."


def test_command_folder_without_tables(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"README.md": "notes\n"})

    assert command_error(folder, *MAPS) == f"Folder {folder} contains no CSV, TSV, TXT or XLSX file."


def test_command_file_of_other_type(org, tmp_path):
    path = tmp_path / "export.zip"
    path.write_bytes(zip_bytes())

    assert command_error(path, *MAPS) == (
        f"{path} is not a CSV, TSV, TXT or XLSX file; pass such a file or the folder of the export (unpack a ZIP file first)."
    )


def test_command_map_names_missing_column(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_DEALS})

    message = command_error(folder, *MAPS, "--map", "amount=Betrag")

    assert message == (
        "File deals.csv has no column(s) Betrag, which --map names; give the column names as the file's header row spells them."
    )


def test_command_saved_mapping_names_missing_column(org, tmp_path):
    with scope(organization=org):
        import_mapping_save(
            organization=org, source="generic", columns={"external_id": "ID", "owner": "owner", "created_at": "created_at"}, actor=None
        )
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_DEALS})

    assert command_error(folder) == (
        "File deals.csv has no column(s) ID, which the organization's saved mapping names; pass --map FIELD=COLUMN "
        "with the column names of the file's header row."
    )


def test_command_mapping_lacks_fields(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_DEALS})

    message = command_error(folder, "--map", "external_id=external_id")

    assert message == "The column mapping lacks the required field(s) owner, created_at; pass --map FIELD=COLUMN for each of them."


def test_command_ambiguous_date_names_option(org, tmp_path):
    folder = export_folder(tmp_path / "export", {"deals.csv": GENERIC_HEADER + "T1;Eva Roth;03/04/2025;open\n"})
    stderr = io.StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("import_crm", str(folder), *MAPS, org="acme", source="generic", language="en", stdout=io.StringIO(), stderr=stderr)

    assert str(raised.value) == "1 row was rejected; the accepted rows were imported."
    assert stderr.getvalue().splitlines() == [
        "deals.csv line 2, column created_at, value '03/04/2025': ambiguous date: it can be day/month or month/day; "
        "pass --date-order dmy (DD/MM/YYYY) or --date-order mdy (MM/DD/YYYY) and import again"
    ]


def test_upload_zip_with_empty_file_rejected(org, admin_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("deals.csv", b"")

    response = import_upload(admin_client, "generic", {"export.zip": buffer.getvalue()}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.context["form"].errors["files"] == [
        "File deals.csv is empty (0 bytes); export the data again with its header row and data rows."
    ]
