"""Messages of web import runs: errors after the commit, unexpected errors, and the reader's language."""

import html
import logging
from unittest import mock

import pytest
from django_scopes import scope, scopes_disabled

from pipelines.models import Deal, ImportRun, ImportRunStatus
from spm.models import AuditLog
from tests.import_helpers import (
    import_start,
    import_upload,
    only_import_run,
    uploaded_dry_run,
)

pytestmark = pytest.mark.usefixtures("import_storage")

DEALS_EXPORT = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.000,00;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
)
MISSING_STAGE = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Owner;Deal - Status;Deal - Creation date\n"
    "11;Solar Müller;100;Jörg Weiß;open;01.02.2025 09:00\n"
)
MISSING_STAGE_ENGLISH = "File deals.csv is missing the required column(s): Deal - Stage."
MISSING_STAGE_GERMAN = "Fehlende Pflichtspalte(n) in der Datei deals.csv: Deal - Stage."


def page_text(client, run: ImportRun, language: str) -> str:
    return html.unescape(client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode())


@pytest.mark.django_db(transaction=True)
def test_recompute_error_keeps_run_succeeded(org, admin_client, caplog):
    # Without an outer test transaction the import commits for real and, with eager Celery, runs
    # the KPI recompute inside its on_commit callback, as a web import without a Celery broker does.
    import_upload(admin_client, "pipedrive", {"deals.csv": DEALS_EXPORT.encode()})
    run = only_import_run(org)
    assert run.status == ImportRunStatus.PREVIEWED
    failure = ValueError("year 10000 is out of range")

    with (
        mock.patch("dashboards.services.kpi_snapshot_recompute", side_effect=failure),
        caplog.at_level(logging.ERROR, logger="pipelines.services_imports"),
    ):
        admin_client.post(f"/o/acme/imports/{run.pk}/", {"action": "start"})

    run.refresh_from_db()
    assert run.status == ImportRunStatus.SUCCEEDED
    assert run.summary["counts"]["deals"]["created"] == 2
    with scope(organization=org):
        assert sorted(Deal.objects.values_list("external_id", flat=True)) == ["11", "12"]
    with scopes_disabled():
        assert not AuditLog.objects.filter(action="import.failed").exists()
    assert f"Work after the import's commit failed organization_id={org.pk} import_run_id={run.pk}" in caplog.text
    assert "year 10000 is out of range" in caplog.text
    warning = (
        "The data was imported, but updating the figures afterwards failed, so dashboards and reports may still "
        f"show the figures from before the import. The error is logged with import run {run.pk}; please tell your "
        "operator this number."
    )
    page = page_text(admin_client, run, "en")
    assert "Imported." in page
    assert warning in page
    assert "Nothing was changed." not in page
    assert "year 10000" not in page


def test_unexpected_error_hides_exception_text(org, admin_client, django_capture_on_commit_callbacks, caplog):
    failure = ValueError("year 10000 is out of range")

    with (
        mock.patch("pipelines.services_imports.crm_import", side_effect=failure),
        caplog.at_level(logging.ERROR, logger="pipelines.services_imports"),
    ):
        run = uploaded_dry_run(
            org, admin_client, django_capture_on_commit_callbacks, "pipedrive", {"deals.csv": DEALS_EXPORT.encode()}
        )

    assert run.status == ImportRunStatus.FAILED
    assert f"Import run failed organization_id={org.pk} import_run_id={run.pk}" in caplog.text
    assert "year 10000 is out of range" in caplog.text
    english = page_text(admin_client, run, "en")
    assert (
        "The import failed because of an unexpected error and changed nothing. The error is logged with "
        f"import run {run.pk}; please tell your operator this number."
    ) in english
    assert "year 10000" not in english
    assert "year 10000" not in page_text(admin_client, run, "de")


def test_failure_message_in_reader_language(org, admin_client, django_capture_on_commit_callbacks):
    run = uploaded_dry_run(
        org,
        admin_client,
        django_capture_on_commit_callbacks,
        "pipedrive",
        {"deals.csv": MISSING_STAGE.encode()},
        HTTP_ACCEPT_LANGUAGE="de",
    )

    assert run.language == "de"
    assert run.status == ImportRunStatus.FAILED
    assert run.message == MISSING_STAGE_GERMAN
    assert run.message_data == {
        "msgid": "File %(file)s is missing the required column(s): %(columns)s.",
        "params": {"file": "deals.csv", "columns": "Deal - Stage"},
    }
    english = page_text(admin_client, run, "en")
    assert f"Nothing was changed.</p>\n      <p class=\"mb-0\">{MISSING_STAGE_ENGLISH}</p>" in english
    assert "Fehlende" not in english
    assert MISSING_STAGE_GERMAN in page_text(admin_client, run, "de")


def test_stored_text_message_shown_as_stored(org, admin_client):
    with scopes_disabled():
        run = ImportRun.objects.create(
            organization=org,
            source="pipedrive",
            language="de",
            directory="imports/old",
            status=ImportRunStatus.FAILED,
            message=MISSING_STAGE_GERMAN,
        )

    assert MISSING_STAGE_GERMAN in page_text(admin_client, run, "en")


def test_import_start_clears_warning(org, admin_client, django_capture_on_commit_callbacks):
    run = uploaded_dry_run(
        org, admin_client, django_capture_on_commit_callbacks, "pipedrive", {"deals.csv": DEALS_EXPORT.encode()}
    )
    with scopes_disabled():
        ImportRun.objects.filter(pk=run.pk).update(message="old", message_data={"msgid": "old", "params": {}})

    import_start(admin_client, django_capture_on_commit_callbacks, run)

    assert run.status == ImportRunStatus.SUCCEEDED
    assert run.message == ""
    assert run.message_data == {}
