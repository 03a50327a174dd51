"""Upload size limits: the quota and people uploads apply IMPORT_MAX_UPLOAD_BYTES like the CRM import.

An XLSX workbook is a ZIP archive, so a small file can unpack to far more than the limit;
its unpacked size counts as well.
"""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled
from openpyxl import Workbook

from goals import parsing
from goals.models import Quota
from pipelines.importers.base import ImportSourceError
from pipelines.models import ImportRun
from pipelines.upload_limits import file_size_check
from spm.models import Membership

LIMIT_BYTES = 20 * 1024
# filesizeformat separates number and unit with a no-break space.
LIMIT_TEXT = "20.0\xa0KB"


def padded_csv(header: str, size: int) -> bytes:
    """Return a CSV file of exactly `size` bytes: the `header` line padded with spaces."""
    data = f"{header}\n".encode()
    return data + b" " * (size - len(data))


def repetitive_workbook(header: list[str], row: list[str], rows: int) -> bytes:
    """Return an XLSX workbook whose `rows` equal rows compress far below their unpacked size."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for _ in range(rows):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def unpacked_size(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(member.file_size for member in archive.infolist())


def too_large_message(file_name: str, size_text: str) -> str:
    return (
        f"File {file_name} is {size_text}, more than the upload limit of {LIMIT_TEXT}. "
        "Split it into smaller files or ask your administrator for a higher limit."
    )


def unpacks_too_large_message(file_name: str, size_text: str) -> str:
    return (
        f"File {file_name} unpacks to {size_text}, more than the upload limit of {LIMIT_TEXT}. "
        "Split it into smaller files or ask your administrator for a higher limit."
    )


@pytest.fixture
def small_limit(settings, tmp_path):
    settings.IMPORT_MAX_UPLOAD_BYTES = LIMIT_BYTES
    settings.MEDIA_ROOT = tmp_path


def test_quota_upload_over_limit_rejected(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    data = padded_csv("level,name,period,metric,target", 2 * LIMIT_BYTES)

    response = client.post("/o/acme/quotas/upload/", {"file": SimpleUploadedFile("quotas.csv", data)})

    assert response.status_code == 400
    assert response.context["upload_form"].errors["file"] == [too_large_message("quotas.csv", "40.0\xa0KB")]
    assert response.context["upload_result"] is None


def test_people_upload_over_limit_rejected(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    data = padded_csv("name,email", LIMIT_BYTES + 1)

    response = client.post("/o/acme/people/", {"file": SimpleUploadedFile("people.csv", data)})

    assert response.status_code == 400
    assert response.context["form"].errors["file"] == [too_large_message("people.csv", "20.0\xa0KB")]
    assert response.context["result"] is None


def test_people_upload_at_limit_accepted(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    row = "Anna Berg,anna@acme.example"
    data = f"name,email\n{row}\n".encode()
    data += b" " * (LIMIT_BYTES - len(data))

    response = client.post("/o/acme/people/", {"file": SimpleUploadedFile("people.csv", data)})

    assert response.status_code == 200
    assert response.context["result"].created == 1


def test_people_workbook_unpacking_over_limit_rejected(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    data = repetitive_workbook(["name", "email"], ["Anna Berg", "anna@acme.example"], 2000)
    assert len(data) < LIMIT_BYTES
    assert unpacked_size(data) > LIMIT_BYTES

    response = client.post("/o/acme/people/", {"file": SimpleUploadedFile("people.xlsx", data)})

    assert response.status_code == 400
    expected_size = f"{unpacked_size(data) / 1024:.1f}\xa0KB"
    assert response.context["source_error"] == unpacks_too_large_message("people.xlsx", expected_size)
    with scopes_disabled():
        assert Membership.objects.filter(organization=org).count() == 1


def test_quota_workbook_unpacking_over_limit_rejected(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    data = repetitive_workbook(["level", "name", "period", "metric", "target"], ["org", "Acme", "2026-Q1", "revenue", "100"], 600)
    assert len(data) < LIMIT_BYTES
    assert unpacked_size(data) > LIMIT_BYTES

    response = client.post("/o/acme/quotas/upload/", {"file": SimpleUploadedFile("quotas.xlsx", data)})

    assert response.status_code == 400
    expected_size = f"{unpacked_size(data) / 1024:.1f}\xa0KB"
    assert response.context["upload_error"] == unpacks_too_large_message("quotas.xlsx", expected_size)
    with scopes_disabled():
        assert Quota.objects.filter(organization=org).count() == 0


def test_crm_workbook_unpacking_over_limit_rejected(org, admin_member, client, small_limit):
    client.force_login(admin_member.user)
    data = repetitive_workbook(["Record ID", "Deal Name"], ["1", "Big deal"], 2000)
    assert len(data) < LIMIT_BYTES
    assert unpacked_size(data) > LIMIT_BYTES

    response = client.post("/o/acme/imports/", {"source": "hubspot", "files": SimpleUploadedFile("deals.xlsx", data)})

    assert response.status_code == 400
    expected_size = f"{unpacked_size(data) / 1024:.1f}\xa0KB"
    assert response.context["form"].errors["files"] == [unpacks_too_large_message("deals.xlsx", expected_size)]
    with scopes_disabled():
        assert ImportRun.objects.filter(organization=org).count() == 0


def test_read_table_rejects_oversized_bytes(db, small_limit):
    data = padded_csv("name,email", LIMIT_BYTES + 1)

    with pytest.raises(ImportSourceError) as raised:
        parsing.read_table(data, "people.csv", required=("name", "email"))

    assert str(raised.value) == too_large_message("people.csv", "20.0\xa0KB")


def test_size_check_default_limit_in_megabytes(settings):
    assert settings.IMPORT_MAX_UPLOAD_BYTES == 50 * 1024 * 1024

    with pytest.raises(ImportSourceError) as raised:
        file_size_check("people.csv", 60 * 1024 * 1024)

    assert str(raised.value) == (
        "File people.csv is 60.0\xa0MB, more than the upload limit of 50.0\xa0MB. "
        "Split it into smaller files or ask your administrator for a higher limit."
    )
