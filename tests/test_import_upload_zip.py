"""ZIP uploads on the import page: macOS metadata files and files of the same name in different folders."""

import html
import io
import zipfile

import pytest
from django_scopes import scope

from pipelines.models import ImportRun, ImportRunStatus
from tests.import_helpers import import_upload, only_import_run

pytestmark = pytest.mark.usefixtures("import_storage")

DEALS_JANUARY = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;open;;;01.02.2025 09:00;\n"
)
DEALS_FEBRUARY = DEALS_JANUARY.replace("11;Solar Müller", "12;Dach Schmidt")
# An AppleDouble file: a binary header that contains the Finder's extended attributes of deals.csv.
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\x09"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_finder_zip_skips_mac_metadata(org, admin_client, django_capture_on_commit_callbacks, settings):
    archive = zip_bytes(
        {
            "deals.csv": DEALS_JANUARY.encode(),
            "__MACOSX/._deals.csv": APPLE_DOUBLE,
            "export/._notes.csv": APPLE_DOUBLE,
            "export/.DS_Store": APPLE_DOUBLE,
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = import_upload(admin_client, "pipedrive", {"export.zip": archive})

    assert response.status_code == 302
    run = only_import_run(org)
    assert run.file_names == ["deals.csv"]
    assert run.status == ImportRunStatus.PREVIEWED
    assert run.summary["counts"]["deals"]["created"] == 1
    assert sorted(path.name for path in (settings.MEDIA_ROOT / run.directory).iterdir()) == ["deals.csv"]


def test_zip_same_name_in_two_folders_rejected(org, admin_client):
    archive = zip_bytes({"jan/deals.csv": DEALS_JANUARY.encode(), "feb/deals.csv": DEALS_FEBRUARY.encode()})

    response = import_upload(admin_client, "pipedrive", {"months.zip": archive})

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert (
        "The upload contains two files named deals.csv: months.zip/jan/deals.csv and months.zip/feb/deals.csv. "
        "An import reads only one file of a name; upload the files one after the other."
    ) in page
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_zip_member_same_name_as_upload_rejected(org, admin_client):
    archive = zip_bytes({"feb/deals.csv": DEALS_FEBRUARY.encode()})

    response = import_upload(admin_client, "pipedrive", {"deals.csv": DEALS_JANUARY.encode(), "feb.zip": archive})

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "two files named deals.csv: deals.csv and feb.zip/feb/deals.csv." in page
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_zip_different_names_kept(org, admin_client, django_capture_on_commit_callbacks):
    archive = zip_bytes(
        {
            "log/deal_changes.csv": b"deal_id;change_time;changed_field_key;new_value\n1;2025-02-01 09:00;stage_id;1\n",
            "log/stages.csv": b"stage_id;stage_name\n1;Lead\n",
        }
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = import_upload(admin_client, "pipedrive", {"months.zip": archive})

    assert response.status_code == 302
    assert only_import_run(org).file_names == ["deal_changes.csv", "stages.csv"]
