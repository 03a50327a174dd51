"""The admin import pages: upload, dry run, import, progress endpoint, failures, rejected-rows report, access."""

import csv
import io
from decimal import Decimal
from unittest import mock

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError
from django_scopes import scope, scopes_disabled

from pipelines.models import Deal, DealStageChange, ImportMapping, ImportRun, ImportRunStatus
from spm.models import AuditLog, Membership

pytestmark = pytest.mark.usefixtures("import_storage")

DEALS_EXPORT = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.000,00;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
    "13;Falsch;=1+1;Angebot;Eva Roth;open;;;05.02.2025 09:00;\n"
)


def upload(client, content=DEALS_EXPORT, name="deals.csv", source="pipedrive", **fields):
    data = {"source": source, "files": SimpleUploadedFile(name, content.encode("cp1252")), **fields}
    return client.post("/o/acme/imports/", data)


def latest_run(org) -> ImportRun:
    with scope(organization=org):
        return ImportRun.objects.order_by("-pk").first()


def test_upload_runs_dry_run(org, admin_client, django_capture_on_commit_callbacks, settings):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client)
    run = latest_run(org)
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/imports/{run.pk}/"
    assert run.status == ImportRunStatus.PREVIEWED
    assert run.summary["counts"]["deals"]["created"] == 2
    assert run.summary["counts"]["deals"]["rejected"] == 1
    assert [row["external_id"] for row in run.preview] == ["11", "12"]
    assert run.preview[0]["amount"] == "1234.56"
    assert run.preview[0]["status"] == "won"
    assert (settings.MEDIA_ROOT / run.directory / "deals.csv").is_file()
    assert run.directory.startswith(f"imports/{org.pk}/")


def test_dry_run_changes_nothing(org, admin_member, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    with scope(organization=org):
        assert Deal.objects.count() == 0
        assert DealStageChange.objects.count() == 0
        assert Membership.objects.count() == 1
        assert not AuditLog.objects.filter(action="import.finished").exists()
        assert AuditLog.objects.filter(action="import.uploaded").count() == 1


def test_preview_page_shows_counts_and_rows(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)
    page = admin_client.get(f"/o/acme/imports/{run.pk}/").content.decode()
    assert "This was a dry run" in page
    assert "Solar Müller" in page
    assert 'data-start-import' in page
    assert "1 rejected row" in page


def test_start_imports_and_audits(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/o/acme/imports/{run.pk}/", {"action": "start"})
    run.refresh_from_db()
    assert response.status_code == 302
    assert run.status == ImportRunStatus.SUCCEEDED
    assert run.progress_percent == 100
    with scope(organization=org):
        assert Deal.objects.count() == 2
        assert Deal.objects.get(external_id="11").amount == Decimal("1234.56")
        actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"import.uploaded", "import.started", "import.finished"} <= actions


def test_start_twice_imports_once(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/o/acme/imports/{run.pk}/", {"action": "start"})
        admin_client.post(f"/o/acme/imports/{run.pk}/", {"action": "start"})
    with scope(organization=org):
        assert AuditLog.objects.filter(action="import.finished").count() == 1


def test_reimport_newer_export_duplicates_nothing(org, admin_client, django_capture_on_commit_callbacks):
    for content in (DEALS_EXPORT, DEALS_EXPORT.replace("2.000,00;Verhandlung", "2.500,00;Angebot")):
        with django_capture_on_commit_callbacks(execute=True):
            upload(admin_client, content=content)
        run = latest_run(org)
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(f"/o/acme/imports/{run.pk}/", {"action": "start"})
    run.refresh_from_db()
    assert run.summary["counts"]["deals"]["updated"] == 1
    assert run.summary["counts"]["deals"]["unchanged"] == 1
    with scope(organization=org):
        assert Deal.objects.count() == 2
        moved = Deal.objects.get(external_id="12")
        stages = list(moved.stage_changes.order_by("changed_at").values_list("to_stage__name", flat=True))
    assert moved.amount == Decimal("2500.00")
    assert stages == ["Verhandlung", "Angebot"]


def test_failed_run_keeps_previous_data(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    first = latest_run(org)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/o/acme/imports/{first.pk}/", {"action": "start"})

    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, content=DEALS_EXPORT.replace("1.234,56", "9.999,00"))
    second = latest_run(org)
    failure = DatabaseError("disk full")
    with mock.patch("pipelines.importers.deal_writer.deal_close_state_refresh", side_effect=failure):
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(f"/o/acme/imports/{second.pk}/", {"action": "start"})
    second.refresh_from_db()
    assert second.status == ImportRunStatus.FAILED
    expected = (
        "The import failed because of an unexpected error and changed nothing. The error is logged with "
        f"import run {second.pk}; please tell your operator this number."
    )
    assert second.message == expected
    with scope(organization=org):
        assert Deal.objects.get(external_id="11").amount == Decimal("1234.56")
        assert Deal.objects.count() == 2
        failed = AuditLog.objects.get(action="import.failed")
    assert failed.object_id == str(second.pk)
    page = admin_client.get(f"/o/acme/imports/{second.pk}/").content.decode()
    assert "Nothing was changed." in page
    assert expected in page
    assert "disk full" not in page


def test_missing_column_fails_with_message(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, content="Deal - Title;Deal - Value\nA;1\n")
    run = latest_run(org)
    assert run.status == ImportRunStatus.FAILED
    assert "Deal - Stage" in run.message


def test_upload_over_limit_is_rejected(org, admin_client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    response = upload(admin_client)
    assert response.status_code == 400
    assert "larger than 0 MB" in response.content.decode()
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_unsupported_file_type_rejected(org, admin_client):
    response = upload(admin_client, name="deals.exe")
    assert response.status_code == 400
    assert "is not a CSV, XLSX or ZIP file" in response.content.decode()


def make_run(org, **values) -> ImportRun:
    with scope(organization=org):
        return ImportRun.objects.create(organization=org, source="pipedrive", language="en", directory="imports/x", **values)


def test_progress_full_page(org, admin_client):
    run = make_run(org, status=ImportRunStatus.RUNNING, progress_done=400, progress_total=1000)
    response = admin_client.get(f"/o/acme/imports/{run.pk}/progress/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" in page
    assert 'value="40"' in page
    assert 'hx-trigger="every 1s"' in page
    assert "400 of 1,000 rows" in page
    assert "HX-Request" in response["Vary"]


def test_progress_fragment_for_htmx(org, admin_client):
    run = make_run(org, status=ImportRunStatus.RUNNING, progress_done=400, progress_total=1000)
    response = admin_client.get(f"/o/acme/imports/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    assert "<html" not in fragment
    assert fragment.strip().startswith('<section id="import-status"')
    assert 'value="40"' in fragment
    assert f'hx-get="/o/acme/imports/{run.pk}/progress/"' in fragment


def test_progress_fragment_stops_polling_when_done(org, admin_client):
    run = make_run(org, status=ImportRunStatus.SUCCEEDED, progress_done=1000, progress_total=1000)
    fragment = admin_client.get(f"/o/acme/imports/{run.pk}/progress/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment
    assert "<progress" not in fragment


@pytest.mark.parametrize("status", [ImportRunStatus.PREVIEWED, ImportRunStatus.SUCCEEDED, ImportRunStatus.FAILED])
def test_finished_run_has_no_progress_bar(org, admin_client, status):
    run = make_run(org, status=status, progress_done=0, progress_total=0)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert "<progress" not in page
    assert "%</span>" not in page
    assert "data-progress-text" not in page


def test_running_run_shows_percent_once(org, admin_client):
    run = make_run(org, status=ImportRunStatus.RUNNING, progress_done=400, progress_total=1000)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/").content.decode()

    assert page.count("40%") == 1
    assert 'value="40"' in page
    assert 'aria-label="Import progress"' in page


def test_imports_list_shows_progress(org, admin_client):
    make_run(org, status=ImportRunStatus.RUNNING, progress_done=250, progress_total=1000)
    page = admin_client.get("/o/acme/imports/").content.decode()
    assert "25%" in page
    assert "Importing" in page


@pytest.mark.parametrize(
    "status", [ImportRunStatus.PREVIEWED, ImportRunStatus.SUCCEEDED, ImportRunStatus.FAILED]
)
def test_imports_list_shows_no_progress_of_finished_run(org, admin_client, status):
    """A checked, imported or failed run shows its status only; 0 % after a dry run read as if nothing had run."""
    run = make_run(org, status=status)

    page = admin_client.get("/o/acme/imports/").content.decode()
    row = page.split(f'data-run-id="{run.pk}"')[1].split("</tr>")[0]

    assert row.rstrip().endswith('<td class="num">–</td>\n          <td class="num">0</td>')
    assert "%" not in row


@pytest.mark.parametrize("suffix", ["", "{pk}/", "{pk}/progress/", "{pk}/rejected.csv", "{pk}/mapping/"])
def test_non_admins_get_404(org, client, manager_member, member, suffix):
    run = make_run(org, status=ImportRunStatus.PREVIEWED)
    for membership in (manager_member, member):
        client.force_login(membership.user)
        response = client.get("/o/acme/imports/" + suffix.format(pk=run.pk))
        assert response.status_code == 404


def test_other_org_admin_gets_404(org, other_org, client, other_org_admin):
    run = make_run(org, status=ImportRunStatus.PREVIEWED)
    client.force_login(other_org_admin.user)
    assert client.get(f"/o/acme/imports/{run.pk}/").status_code == 404
    assert client.get(f"/o/globex/imports/{run.pk}/").status_code == 404
    assert client.get(f"/o/globex/imports/{run.pk}/rejected.csv").status_code == 404


def test_rejected_report_english(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)
    response = admin_client.get(f"/o/acme/imports/{run.pk}/rejected.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert rows == [
        ["File", "Line", "Column", "Value", "Reason"],
        ["deals.csv", "4", "Deal - Value", "'=1+1", "formula cells are not evaluated; enter the number itself"],
    ]


@pytest.fixture
def german_catalog(settings, tmp_path):
    """A German catalog for the report's strings, so the test does not depend on the project's catalog."""
    catalog = Catalog(locale="de")
    for english, german in {
        "File": "Datei",
        "Line": "Zeile",
        "Column": "Spalte",
        "Value": "Wert",
        "Reason": "Grund",
        "formula cells are not evaluated; enter the number itself": "Formeln werden nicht ausgewertet; tragen Sie die Zahl ein",
    }.items():
        catalog.add(english, german)
    folder = tmp_path / "locale" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "django.mo", "wb") as handle:
        write_mo(handle, catalog)
    settings.LOCALE_PATHS = [tmp_path / "locale"]


def test_rejected_report_german(org, admin_member, client, german_catalog, django_capture_on_commit_callbacks):
    with scopes_disabled():
        admin_member.user.language = "de"
        admin_member.user.save(update_fields=["language"])
    client.force_login(admin_member.user)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client)
    run = latest_run(org)
    assert run.language == "de"
    response = client.get(f"/o/acme/imports/{run.pk}/rejected.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Datei", "Zeile", "Spalte", "Wert", "Grund"]
    assert rows[1][4] == "Formeln werden nicht ausgewertet; tragen Sie die Zahl ein"


GENERIC = "Nr;Kunde;Verkäufer;Angelegt;Betrag;Status;Abschluss\nA-1;Müller;Eva Roth;03.02.2025;1.000,00;gewonnen;10.03.2025\n"


def test_generic_upload_asks_for_mapping_and_saves_it(org, admin_client, django_capture_on_commit_callbacks):
    response = upload(admin_client, content=GENERIC, source="generic")
    run = latest_run(org)
    assert response["Location"] == f"/o/acme/imports/{run.pk}/mapping/"
    page = admin_client.get(f"/o/acme/imports/{run.pk}/mapping/").content.decode()
    # Columns with a field's usual name are preselected before any mapping is saved.
    assert '<option value="Verkäufer" selected>' in page
    assert '<option value="Angelegt" selected>' in page
    assert '<option value="Betrag" selected>' in page
    assert '<option value="Kunde" selected>' not in page
    mapping = {
        "external_id": "Nr",
        "owner": "Verkäufer",
        "created_at": "Angelegt",
        "name": "Kunde",
        "amount": "Betrag",
        "status": "Status",
        "closed_at": "Abschluss",
    }
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/o/acme/imports/{run.pk}/mapping/", mapping)
    run.refresh_from_db()
    assert run.status == ImportRunStatus.PREVIEWED
    assert run.summary["counts"]["deals"]["created"] == 1
    with scope(organization=org):
        assert ImportMapping.objects.get(source="generic").columns == mapping

    upload(admin_client, content=GENERIC, source="generic")
    second = latest_run(org)
    page = admin_client.get(f"/o/acme/imports/{second.pk}/mapping/").content.decode()
    assert '<option value="Verkäufer" selected>' in page


def test_preview_shows_status_label_in_german(org, admin_member, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert "<td>Gewonnen</td>" in page
    assert "<td>won</td>" not in page


def test_preview_shows_date_only_values_without_time(org, admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    run = latest_run(org)
    # A date-only source value is stored as 12:00 UTC; the Pipedrive times above are real times.
    run.preview[1]["created_at"] = "2016-10-20T12:00:00+00:00"
    run.save(update_fields=["preview"])

    english = admin_client.get(f"/o/acme/imports/{run.pk}/").content.decode()
    german = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert '<td class="num">10/20/2016</td>' in english
    assert '<td class="num">02/01/2025 9 a.m.</td>' in english
    assert '<td class="num">20.10.2016</td>' in german
    assert '<td class="num">01.02.2025 09:00</td>' in german


def test_imports_list_links_audit_log(org, admin_client):
    content = admin_client.get("/o/acme/imports/").content.decode()

    assert "No imports yet." in content
    assert 'href="/o/acme/audit/?action=import.finished"' in content
