"""`import_crm` runs the upload page's file checks and words its messages for the command line."""

import ast
import io
import zipfile

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_scopes import scope

from pipelines.management.commands.import_crm import COMMAND_WORDING
from pipelines.models import Account, Deal
from pipelines.services_imports import import_mapping_save
from spm.models import Organization
from tests.import_helpers import export_folder, import_upload
from tests.test_import_maven import SMALL_EXPORT

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
            "File deals.csv is UTF-16 text, which cannot be read. Save it as CSV UTF-8 and import it again.",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
            "File deals.csv is a PNG image, not a CSV file; export the data as CSV UTF-8 or XLSX.",
        ),
        (
            GENERIC_HEADER.encode() + b"T1;Eva\x00Roth;2025-02-01;open\n",
            "File deals.csv is not a text file: it contains the byte 0x00, which no CSV file contains. "
            "Save it as CSV UTF-8 and import it again.",
        ),
        (
            GENERIC_HEADER.encode() + b"T1;Eva Roth;2025-02-01;\x81\n",
            "File deals.csv is neither UTF-8 nor Windows-1252: it contains the byte 0x81, which neither can read. "
            "Save it as CSV UTF-8 and import it again.",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,
            "File deals.csv is an Excel 97-2003 workbook (.xls), which cannot be read. "
            "Save it as an Excel workbook (.xlsx) or as CSV UTF-8 and import it again.",
        ),
        (
            zip_bytes(),
            "File deals.csv is a ZIP archive, not a CSV file. An Excel workbook is a ZIP archive too: give a "
            "workbook the extension .xlsx, or export the data as CSV. Unpack other ZIP files first.",
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


FILE_TYPE_CASES = [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image", "ein PNG-Bild"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image", "ein JPEG-Bild"),
    (b"GIF89a\x01\x00\x01\x00", "a GIF image", "ein GIF-Bild"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document", "ein PDF-Dokument"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "a gzip archive", "ein gzip-Archiv"),
]


@pytest.mark.parametrize(("content", "kind_en", "kind_de"), FILE_TYPE_CASES)
def test_command_names_file_type(org, tmp_path, content, kind_en, kind_de):
    folder = export_folder(tmp_path / "export", {})
    (folder / "deals.csv").write_bytes(content)
    (folder / "deals.xlsx").write_bytes(content)

    assert command_error(folder / "deals.csv", *MAPS) == (
        f"File deals.csv is {kind_en}, not a CSV file; export the data as CSV UTF-8 or XLSX."
    )
    assert command_error(folder / "deals.csv", *MAPS, language="de") == (
        f"Die Datei deals.csv ist {kind_de}, keine CSV-Datei; exportieren Sie die Daten als „CSV UTF-8“ oder XLSX."
    )
    assert command_error(folder / "deals.xlsx", *MAPS) == (
        f"File deals.xlsx is {kind_en}, not an Excel workbook; export the data as CSV UTF-8 or XLSX."
    )
    assert command_error(folder / "deals.xlsx", *MAPS, language="de") == (
        f"Die Datei deals.xlsx ist {kind_de}, keine Excel-Arbeitsmappe; exportieren Sie die Daten als „CSV UTF-8“ "
        "oder XLSX."
    )


def test_command_german_says_import_again(org, tmp_path):
    folder = export_folder(tmp_path / "export", {})
    (folder / "deals.csv").write_bytes(GENERIC_DEALS.encode("utf-16"))

    assert command_error(folder, *MAPS, language="de") == (
        "Die Datei deals.csv ist UTF-16-Text, der nicht gelesen werden kann. Speichern Sie sie als „CSV UTF-8“ und "
        "importieren Sie sie erneut."
    )


def test_command_wording_keys_exist():
    """Every message that the command rewords is still a message id in pipelines, so no rewording is lost."""
    msgids = set()
    for path in (settings.BASE_DIR / "pipelines").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "gettext_noop" and node.args:
                msgids.add(getattr(node.args[0], "value", None))

    for msgid in COMMAND_WORDING:
        assert msgid in msgids, msgid


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


@pytest.mark.parametrize("create", [False, True], ids=["existing", "created"])
def test_command_maven_unreadable_deal_row(org, tmp_path, create):
    """A deal row that the csv module cannot read fails the Maven import with the check's message, writing nothing.

    The command leaves reading the Maven deal file to the importer, which raises the same error.
    """
    folder = tmp_path / "export"
    export_folder(folder, {path.name: path.read_text() for path in SMALL_EXPORT.iterdir()})
    with (folder / "sales_pipeline.csv").open("a") as handle:
        handle.write(f'"{"x" * 200_000}",a,b\n')
    slug = "fresh" if create else "acme"

    with pytest.raises(CommandError) as raised:
        call_command(
            "import_crm", str(folder), *(["--create"] if create else []), org=slug, source="maven", language="en",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip

    assert str(raised.value) == (
        "File sales_pipeline.csv, line 8: a cell is longer than 131072 characters, the most an import reads. "
        "A quotation mark that is not closed makes the rest of the file one cell: close it, or shorten the cell, "
        "and import the file again."
    )
    assert not Organization.objects.filter(slug="fresh").exists()
    with scope(organization=org):
        assert Account.objects.count() == 0
        assert Deal.objects.count() == 0
