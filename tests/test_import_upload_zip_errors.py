"""ZIP uploads that zipfile cannot unpack, or that contain no table file: a clear 400 and no folder left behind."""

import html
import io
import shutil
import struct
import subprocess
import zipfile
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope

from pipelines import services_imports
from pipelines.models import ImportRun
from tests.import_helpers import import_upload

pytestmark = pytest.mark.usefixtures("import_storage")

DEALS = b"name,amount,stage\nSolar,100,Won\n"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_patched(data: bytes, *, flag_bits: int | None = None, method: int | None = None) -> bytes:
    """Return a one-member ZIP with the general purpose flags or compression method set in both of its headers.

    The local header has the flags at offset 6 and the method at 8; the central directory
    entry has them at 8 and 10. This is what `zip -P` (flag bit 0) and an archiver writing
    Deflate64 (method 9) change.
    """
    patched = bytearray(data)
    central = patched.index(b"PK\x01\x02")
    for header, flags_offset in ((0, 6), (central, 8)):
        if flag_bits is not None:
            struct.pack_into("<H", patched, header + flags_offset, flag_bits)
        if method is not None:
            struct.pack_into("<H", patched, header + flags_offset + 2, method)
    return bytes(patched)


def import_folders(settings, org) -> list[str]:
    folder = settings.MEDIA_ROOT / "imports" / str(org.pk)
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def upload_error(client, files: dict[str, bytes]) -> tuple[int, str]:
    response = import_upload(client, "generic", files, HTTP_ACCEPT_LANGUAGE="en")
    return response.status_code, html.unescape(response.content.decode())


def test_password_protected_zip_rejected(org, admin_client, settings):
    archive = zip_patched(zip_bytes({"deals.csv": DEALS}), flag_bits=0x1)

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert (
        "deals.csv in export.zip is password-protected, so SPM cannot read it. Pack the files again without "
        "a password and upload the new ZIP file."
    ) in page
    assert import_folders(settings, org) == []
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_aes_encrypted_zip_rejected(org, admin_client, settings):
    archive = zip_patched(zip_bytes({"deals.csv": DEALS}), method=99)

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert "deals.csv in export.zip is password-protected, so SPM cannot read it." in page
    assert import_folders(settings, org) == []


def test_deflate64_zip_rejected(org, admin_client, settings):
    archive = zip_patched(zip_bytes({"data/deals.csv": DEALS}), method=9)

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert (
        "data/deals.csv in export.zip uses a compression method that SPM cannot read (Deflate64). Pack the files "
        "again with standard ZIP compression (Deflate) and upload the new ZIP file."
    ) in page
    assert import_folders(settings, org) == []


def test_unknown_compression_method_named_by_number(org, admin_client, settings):
    archive = zip_patched(zip_bytes({"deals.csv": DEALS}), method=19)

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert "deals.csv in export.zip uses a compression method that SPM cannot read (method 19)." in page


def test_unexpected_error_removes_folder(org, admin_client, settings):
    failure = mock.patch.object(services_imports, "table_files_check", side_effect=RuntimeError("disk failed"))
    with failure, pytest.raises(RuntimeError):
        import_upload(admin_client, "generic", {"deals.csv": DEALS})

    assert import_folders(settings, org) == []


def test_zip_without_table_file_names_skipped(org, admin_client, settings):
    archive = zip_bytes({"report.xls": b"\xd0\xcf\x11\xe0", "notes/summary.pdf": b"%PDF-1.4", "inner.zip": zip_bytes({"deals.csv": DEALS})})

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert (
        "The upload contains no file to import. Skipped: report.xls, notes/summary.pdf, inner.zip. SPM imports "
        "CSV, TSV, TXT, XLSX and XLSM files; it does not unpack a ZIP file inside a ZIP file."
    ) in page
    assert import_folders(settings, org) == []


def test_skipped_names_shortened(org, admin_client, monkeypatch):
    monkeypatch.setattr(services_imports, "SKIPPED_NAMES_SHOWN", 2)
    archive = zip_bytes({"a.pdf": b"1", "b.pdf": b"2", "c.pdf": b"3", "d.pdf": b"4"})

    status, page = upload_error(admin_client, {"export.zip": archive})

    assert status == 400
    assert "Skipped: a.pdf, b.pdf, and 2 more. SPM imports" in page


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip program")
def test_zip_program_password_rejected(org, admin_client, settings, tmp_path):
    (tmp_path / "deals.csv").write_bytes(DEALS)
    subprocess.run(["zip", "-q", "-P", "secret", "export.zip", "deals.csv"], cwd=tmp_path, check=True)

    status, page = upload_error(admin_client, {"export.zip": (tmp_path / "export.zip").read_bytes()})

    assert status == 400
    assert "deals.csv in export.zip is password-protected, so SPM cannot read it." in page
    assert import_folders(settings, org) == []


@pytest.mark.parametrize("flags", [{"flag_bits": 0x1}, {"method": 9}])
def test_import_crm_rejects_zip_files(org, tmp_path, flags):
    path = tmp_path / "export.zip"
    path.write_bytes(zip_patched(zip_bytes({"deals.csv": DEALS}), **flags))

    with pytest.raises(CommandError) as raised:
        call_command("import_crm", str(path), org="acme", source="generic", language="en", stdout=io.StringIO())

    assert str(raised.value) == (
        f"{path} is not a CSV, TSV, TXT or XLSX file; pass such a file or the folder of the export "
        "(unpack a ZIP file first)."
    )
