"""Rejection reasons stored on import and sync runs read in the viewer's language, not in the language of the run."""

import csv
import datetime as dt
import html
import io

import pytest
from django.urls import reverse
from django.utils import translation
from django_scopes import scope, scopes_disabled
from rest_framework.test import APIClient

from integrations.api.services import api_token_create
from integrations.sync.models import (
    CrmConnection,
    CrmProvider,
    CrmSyncRun,
    SyncStatus,
    SyncTrigger,
)
from integrations.sync.services import _errors
from pipelines.importers.base import Message, RowError, RowRejected
from pipelines.models import ImportRun, ImportRunStatus
from pipelines.services import crm_import
from pipelines.services_records import records_import
from tests.import_helpers import uploaded_dry_run

pytestmark = pytest.mark.usefixtures("import_storage")

# Row 4 has a formula as amount, row 5 repeats the deal id of row 3 and row 6 is won without its won time.
DEALS_EXPORT = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.000,00;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
    "13;Falsch;=1+1;Angebot;Eva Roth;open;;;05.02.2025 09:00;\n"
    "12;Doppelt;100;Angebot;Eva Roth;open;;;06.02.2025 09:00;\n"
    "14;Ohne Datum;100;Angebot;Eva Roth;won;;;07.02.2025 09:00;\n"
)
ENGLISH_ROWS = [
    ["deals.csv", "4", "Deal - Value", "=1+1", "formula cells are not evaluated; enter the number itself"],
    ["deals.csv", "5", "Deal - ID", "12", "duplicate deal; first listed on line 3"],
    ["deals.csv", "6", "Deal - Won time", "", "missing value; a won deal needs its won time, so fill in this cell"],
]
GERMAN_ROWS = [
    ["deals.csv", "4", "Deal - Value", "=1+1", "Formelzellen werden nicht ausgewertet; geben Sie die Zahl direkt ein"],
    ["deals.csv", "5", "Deal - ID", "12", "Deal doppelt vorhanden; zuerst in Zeile 3"],
    [
        "deals.csv",
        "6",
        "Deal - Won time",
        "",
        "Wert fehlt: ein gewonnener Deal benötigt den Zeitpunkt, zu dem er gewonnen wurde; füllen Sie diese Zelle aus",
    ],
]


@pytest.fixture
def german_run(org, admin_client, django_capture_on_commit_callbacks) -> ImportRun:
    """A dry run of DEALS_EXPORT uploaded with the interface in German."""
    files = {"deals.csv": DEALS_EXPORT.encode("cp1252")}
    return uploaded_dry_run(org, admin_client, django_capture_on_commit_callbacks, "pipedrive", files, HTTP_ACCEPT_LANGUAGE="de")


def reason_cells(page: str) -> list[str]:
    return [html.unescape(cell.split("</td>")[0]) for cell in page.split("<td data-reason>")[1:]]


def rejected_csv(client, run: ImportRun, language: str) -> list[list[str]]:
    response = client.get(f"/o/acme/imports/{run.pk}/rejected.csv", HTTP_ACCEPT_LANGUAGE=language)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def stored_run(org, admin_member, rejected_rows: list) -> ImportRun:
    """Store a finished German import run with `rejected_rows` as they were written, without running an import."""
    with scopes_disabled():
        return ImportRun.objects.create(
            organization=org,
            source="pipedrive",
            created_by=admin_member.user,
            language="de",
            directory="imports/old",
            status=ImportRunStatus.SUCCEEDED,
            summary={"counts": {}},
            rejected_rows=rejected_rows,
        )


def finished_sync_run(org, deals: list[dict]) -> CrmSyncRun:
    """Import `deals` as a HubSpot sync while German is active and store the finished run with their rejections."""
    with translation.override("de"), scope(organization=org):
        result = records_import(organization=org, source="hubspot", label="sync:hubspot", deals=deals)
        connection = CrmConnection.objects.create(
            organization=org, provider=CrmProvider.HUBSPOT, base_url="http://127.0.0.1:9", access_token="token"
        )
        return CrmSyncRun.objects.create(
            organization=org,
            connection=connection,
            trigger=SyncTrigger.MANUAL,
            status=SyncStatus.SUCCEEDED,
            errors=_errors(result),
        )


def test_run_stores_message_ids(german_run):
    assert german_run.language == "de"
    assert german_run.status == ImportRunStatus.PREVIEWED
    assert german_run.rejected_rows == [
        ["deals.csv", 4, "Deal - Value", "=1+1", {"msgid": "formula cells are not evaluated; enter the number itself", "params": {}}],
        ["deals.csv", 5, "Deal - ID", "12", {"msgid": "duplicate deal; first listed on line %(line)d", "params": {"line": 3}}],
        [
            "deals.csv",
            6,
            "Deal - Won time",
            "",
            {
                "msgid": "missing value; %(needs)s, so fill in this cell",
                "params": {"needs": {"msgid": "a won deal needs its won time", "params": {}}},
            },
        ],
    ]


def test_german_run_page_in_english(german_run, admin_client):
    page = admin_client.get(f"/o/acme/imports/{german_run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert reason_cells(page) == [row[4] for row in ENGLISH_ROWS]


def test_german_run_page_in_german(german_run, admin_client):
    page = admin_client.get(f"/o/acme/imports/{german_run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert reason_cells(page) == [row[4] for row in GERMAN_ROWS]


def test_german_run_fragment_in_english(german_run, admin_client):
    page = admin_client.get(
        f"/o/acme/imports/{german_run.pk}/progress/", HTTP_ACCEPT_LANGUAGE="en", HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "<html" not in page
    assert reason_cells(page) == [row[4] for row in ENGLISH_ROWS]


def test_german_run_report_in_english(german_run, admin_client):
    rows = rejected_csv(admin_client, german_run, "en")

    assert rows[0] == ["File", "Line", "Column", "Value", "Reason"]
    # The export prefixes the formula value with ' so that a spreadsheet keeps it as text.
    assert rows[1:] == [["deals.csv", "4", "Deal - Value", "'=1+1", ENGLISH_ROWS[0][4]], *ENGLISH_ROWS[1:]]


def test_german_run_report_in_german(german_run, admin_client):
    rows = rejected_csv(admin_client, german_run, "de")

    assert rows[0] == ["Datei", "Zeile", "Spalte", "Wert", "Grund"]
    assert rows[1:] == [["deals.csv", "4", "Deal - Value", "'=1+1", GERMAN_ROWS[0][4]], *GERMAN_ROWS[1:]]


def test_run_stored_as_text_reads_as_stored(org, admin_member, admin_client):
    # Older versions stored the reason as translated text.
    run = stored_run(org, admin_member, [["deals.csv", 4, "Deal - Value", "=1+1", "Formelzellen werden nicht ausgewertet"]])

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    rows = rejected_csv(admin_client, run, "en")

    assert reason_cells(page) == ["Formelzellen werden nicht ausgewertet"]
    assert rows[1] == ["deals.csv", "4", "Deal - Value", "'=1+1", "Formelzellen werden nicht ausgewertet"]


def test_translated_column_follows_reader(org, tmp_path):
    folder = tmp_path / "generic"
    folder.mkdir()
    (folder / "deals.csv").write_text("Nr;Verkäufer;Angelegt;Status\nA-1;Eva Roth;03.02.2025;gewonnen\n", encoding="utf-8")

    with translation.override("de"), scope(organization=org):
        result = crm_import(
            organization=org,
            source="generic",
            path=folder,
            options={"mapping": {"external_id": "Nr", "owner": "Verkäufer", "created_at": "Angelegt", "status": "Status"}},
        )
    stored = RowError.from_json(result.errors[0].as_json())

    with translation.override("en"):
        assert str(stored) == (
            "deals.csv line 2, column Closed on (not mapped), value '': missing value; a won or lost deal needs its "
            "close date, so map the column that contains it to the field “Closed on”"
        )
    with translation.override("de"):
        assert str(stored.column) == "Abgeschlossen am (nicht zugeordnet)"


def test_message_round_trip_keeps_nested_params():
    message = Message("missing value; %(needs)s, so fill in this cell", {"needs": Message("a won deal needs its won time")})

    assert Message.from_json(message.as_json()) == message
    assert Message.from_json("schon übersetzt") == Message.literal("schon übersetzt")
    assert Message.literal("100 %").as_json() == "100 %"
    assert str(Message.literal("100 %")) == "100 %"


def test_message_rejects_parameters_json_cannot_store():
    with pytest.raises(TypeError, match="Message parameter 'amount' must be str, int, datetime.date or Message, not float"):
        Message("too large: %(amount)s", {"amount": 1.5})


def test_rejection_with_message_takes_no_params():
    with pytest.raises(TypeError, match="RowRejected takes params only with a message id, not with a Message"):
        RowRejected("Amount", "x", Message("invalid number"), extra=1)


def test_mismatched_translation_shows_source_text(monkeypatch):
    # A stored run outlives catalog changes, and a translation with other placeholders must not break the page.
    monkeypatch.setattr("pipelines.importers.base.gettext", lambda msgid: "Zeile %(zeile)d doppelt")

    assert str(Message("duplicate deal; first listed on line %(line)d", {"line": 3})) == "duplicate deal; first listed on line 3"


@pytest.fixture
def german_sync_run(org) -> CrmSyncRun:
    """A finished HubSpot sync run whose records were rejected while German was active."""
    return finished_sync_run(org, [{"external_id": "D-1", "owner": "Eva Roth", "stage": "Open"}])


def test_german_sync_run_stores_message_ids(german_sync_run):
    assert german_sync_run.errors == [
        {
            "entity": "deals",
            "external_id": "D-1",
            "field": "created_at",
            "reason": {"msgid": "missing value", "params": {}},
        }
    ]


@pytest.mark.parametrize(("language", "message"), [("en", "created_at: missing value"), ("de", "created_at: Wert fehlt")])
def test_german_sync_run_page_in_reader_language(org, admin_client, german_sync_run, language, message):
    url = f"/o/acme/integrations/{german_sync_run.connection_id}/runs/{german_sync_run.pk}/"

    page = html.unescape(admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode())

    assert f"<tr><td>deals</td><td>D-1</td><td>{message}</td></tr>" in page


def test_sync_run_stored_as_text_reads_as_stored(org, german_sync_run):
    german_sync_run.errors = [{"entity": "deals", "external_id": "D-1", "message": "created_at: Wert fehlt"}]

    with translation.override("en"):
        assert german_sync_run.rejected_records == [{"entity": "deals", "external_id": "D-1", "message": "created_at: Wert fehlt"}]


# Dates in reasons. The only row is won on 5 December 2026 in Swiss francs, and the organization has no CHF rate.
CHF_EXPORT = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Currency of value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "31;Franken;1.000,00;CHF;Angebot;Eva Roth;won;05.12.2026 10:00;;01.11.2026 09:00;\n"
)
RATE_MSGID = (
    "no exchange rate for %(currency)s valid on %(date)s; upload rates for %(currency)s valid from that date or earlier"
)
RATE_REASONS = {
    "en": "no exchange rate for CHF valid on 12/05/2026; upload rates for CHF valid from that date or earlier",
    "de": "kein Wechselkurs für CHF am 05.12.2026 gültig; laden Sie Kurse für CHF hoch, die ab diesem Datum oder früher gelten",
}
# The same deal as a sync or API record.
CHF_DEAL = {
    "external_id": "D-2",
    "owner": "Eva Roth",
    "status": "won",
    "amount": 1000,
    "currency": "CHF",
    "created_at": "2026-11-01",
    "closed_at": "2026-12-05",
}


@pytest.fixture
def chf_run(org, admin_client, django_capture_on_commit_callbacks) -> ImportRun:
    """A dry run of CHF_EXPORT uploaded with the interface in German."""
    files = {"deals.csv": CHF_EXPORT.encode()}
    return uploaded_dry_run(org, admin_client, django_capture_on_commit_callbacks, "pipedrive", files, HTTP_ACCEPT_LANGUAGE="de")


def test_run_stores_date_as_iso(chf_run):
    assert chf_run.rejected_rows == [
        ["deals.csv", 2, "Deal - Value", "1.000,00", {"msgid": RATE_MSGID, "params": {"currency": "CHF", "date": "2026-12-05"}}]
    ]


@pytest.mark.parametrize("language", ["en", "de"])
def test_run_page_shows_date_in_reader_format(chf_run, admin_client, language):
    page = admin_client.get(f"/o/acme/imports/{chf_run.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    assert reason_cells(page) == [RATE_REASONS[language]]


@pytest.mark.parametrize("language", ["en", "de"])
def test_run_fragment_shows_date_in_reader_format(chf_run, admin_client, language):
    page = admin_client.get(
        f"/o/acme/imports/{chf_run.pk}/progress/", HTTP_ACCEPT_LANGUAGE=language, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "<html" not in page
    assert reason_cells(page) == [RATE_REASONS[language]]


@pytest.mark.parametrize("language", ["en", "de"])
def test_run_report_shows_date_in_reader_format(chf_run, admin_client, language):
    rows = rejected_csv(admin_client, chf_run, language)

    assert rows[1:] == [["deals.csv", "2", "Deal - Value", "1.000,00", RATE_REASONS[language]]]


@pytest.mark.parametrize(
    ("language", "engage_reason"),
    [
        ("en", "close date is before the engage date 05/01/2017"),
        ("de", "das Abschlussdatum liegt vor dem Engage-Datum 01.05.2017"),
    ],
)
def test_older_run_iso_text_date_localized(org, admin_member, admin_client, language, engage_reason):
    """Runs stored before dates were typed hold the dates as ISO text, which reads as a date too."""
    engage_msgid = "close date is before the engage date %(engage_date)s"
    run = stored_run(
        org,
        admin_member,
        [
            ["deals.csv", 2, "Deal - Value", "1.000,00", {"msgid": RATE_MSGID, "params": {"currency": "CHF", "date": "2026-12-05"}}],
            ["sales_pipeline.csv", 3, "close_date", "2017-04-30", {"msgid": engage_msgid, "params": {"engage_date": "2017-05-01"}}],
        ],
    )

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    rows = rejected_csv(admin_client, run, language)

    assert reason_cells(page) == [RATE_REASONS[language], engage_reason]
    assert [row[4] for row in rows[1:]] == [RATE_REASONS[language], engage_reason]


def test_older_run_impossible_date_as_stored(org, admin_member, admin_client):
    run = stored_run(
        org,
        admin_member,
        [["deals.csv", 2, "Deal - Value", "1", {"msgid": RATE_MSGID, "params": {"currency": "CHF", "date": "2026-02-30"}}]],
    )

    page = admin_client.get(f"/o/acme/imports/{run.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert reason_cells(page) == [
        "kein Wechselkurs für CHF am 2026-02-30 gültig; laden Sie Kurse für CHF hoch, die ab diesem Datum oder früher gelten"
    ]


@pytest.fixture
def chf_sync_run(org) -> CrmSyncRun:
    """A finished HubSpot sync run whose CHF deal, won on 5 December 2026, was rejected while German was active."""
    return finished_sync_run(org, [dict(CHF_DEAL)])


def test_sync_run_stores_date_as_iso(chf_sync_run):
    assert chf_sync_run.errors == [
        {
            "entity": "deals",
            "external_id": "D-2",
            "field": "amount",
            "reason": {"msgid": RATE_MSGID, "params": {"currency": "CHF", "date": "2026-12-05"}},
        }
    ]


@pytest.mark.parametrize("language", ["en", "de"])
def test_sync_run_page_shows_date_in_reader_format(org, admin_client, chf_sync_run, language):
    url = f"/o/acme/integrations/{chf_sync_run.connection_id}/runs/{chf_sync_run.pk}/"

    page = html.unescape(admin_client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode())

    assert f"<tr><td>deals</td><td>D-2</td><td>amount: {RATE_REASONS[language]}</td></tr>" in page


@pytest.mark.parametrize(("language", "shown"), [("en", "12/05/2026"), ("de", "05.12.2026")])
def test_date_parameter_round_trip(language, shown):
    message = Message("valid on %(date)s", {"date": dt.date(2026, 12, 5)})
    stored = message.as_json()

    assert stored == {"msgid": "valid on %(date)s", "params": {"date": "2026-12-05"}}
    assert Message.from_json(stored) == message
    with translation.override(language):
        assert str(Message.from_json(stored)) == f"valid on {shown}"


def test_message_rejects_datetime_parameter():
    with pytest.raises(TypeError, match="Message parameter 'at' must be str, int, datetime.date or Message, not datetime"):
        Message("at %(at)s", {"at": dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)})


@pytest.mark.parametrize("language", ["en", "de"])
def test_api_rejection_shows_date_in_request_language(org, language):
    with scope(organization=org):
        _token, plain = api_token_create(organization=org, name="write token", scope="write", actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}", HTTP_ACCEPT_LANGUAGE=language)

    body = client.post(reverse("api_deals"), {"records": [CHF_DEAL]}, format="json").json()

    assert [(error["field"], error["reason"]) for error in body["rejected"]] == [("amount", RATE_REASONS[language])]
