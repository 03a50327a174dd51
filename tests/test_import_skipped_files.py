"""Uploads and export folders with files that the chosen importer would skip are rejected, naming those files."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope
from openpyxl import Workbook

from pipelines.models import ImportRun
from tests.import_helpers import export_folder, import_upload, only_import_run

pytestmark = pytest.mark.usefixtures("import_storage")

GENERIC_JANUARY = "external_id;owner;created_at;status\nT1;Eva Roth;2025-02-01;open\n"
GENERIC_FEBRUARY = "external_id;owner;created_at;status\nT2;Eva Roth;2025-03-01;open\nT1;Eva Roth;2025-02-01;open\n"
HUBSPOT_DEALS = "Record ID,Deal Name,Deal Stage,Pipeline,Deal owner,Create Date\n501,Acme Roof,Closed Won,Sales Pipeline,Eva Roth,2025-01-10 09:00\n"
HUBSPOT_MORE_DEALS = HUBSPOT_DEALS.replace("501,Acme Roof", "502,Beta Roof")
HUBSPOT_CONTACTS = "Contact ID,First Name,Email\n1,Eva,eva@example.com\n"
PIPEDRIVE_DEALS = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Stage;Deal - Owner;Deal - Status;Deal - Creation date\n"
    "11;Solar Müller;1.234,56;Angebot;Jörg Weiß;open;01.02.2025 09:00\n"
)
CHANGE_LOG = {
    "deal_changes.csv": "deal_id,change_time,changed_field_key,new_value\n1,2025-02-01 09:00:00,stage_id,1\n",
    "stages.csv": "stage_id,stage_name\n1,Lead\n",
    "users.csv": "id,email\n7,eva@example.com\n",
}
OPPORTUNITIES = (
    "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Close Date,Created Date\n"
    "0065g00000QQQ01,Hist A,Lena Vogt,Negotiation,100,2025-05-30,2025-02-01 10:00\n"
)
HISTORY = "OpportunityId,StageName,CreatedDate,FromOpportunityStageName\n0065g00000QQQ01AAA,Prospecting,2025-02-01T11:00:00Z,\n"

ONE_GENERIC_FILE = (
    "The import reads only one file of deals, so it would read a_jan.csv and skip b_feb.csv. "
    "Combine the rows into one file with one header row, or import the files one after the other."
)


def upload_errors(client, source: str, files: dict[str, str]) -> list[str]:
    response = import_upload(client, source, {name: text.encode() for name, text in files.items()}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    return response.context["form"].errors["files"]


def workbook_bytes(sheets: dict[str, list[list[str]]]) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("source", "files", "message"),
    [
        ("generic", {"a_jan.csv": GENERIC_JANUARY, "b_feb.csv": GENERIC_FEBRUARY}, ONE_GENERIC_FILE),
        (
            "hubspot",
            {"deals.csv": HUBSPOT_DEALS, "hubspot.csv": HUBSPOT_MORE_DEALS},
            "The import reads only one file of deals, so it would read deals.csv and skip hubspot.csv. "
            "Combine the rows into one file with one header row, or import the files one after the other.",
        ),
        (
            "hubspot",
            {"deals.csv": HUBSPOT_DEALS, "contacts.csv": HUBSPOT_CONTACTS},
            "The import would skip contacts.csv, because a HubSpot import reads only a CSV or XLSX deals export "
            "with the column “Record ID”. Remove the other files and import again.",
        ),
        (
            "pipedrive",
            {"deals.csv": PIPEDRIVE_DEALS, "deals_2.csv": PIPEDRIVE_DEALS.replace("11;Solar", "12;Solar")},
            "The import reads only one file of deals, so it would read deals.csv and skip deals_2.csv. "
            "Combine the rows into one file with one header row, or import the files one after the other.",
        ),
        (
            "pipedrive",
            {"deals.csv": PIPEDRIVE_DEALS, "stages.csv": CHANGE_LOG["stages.csv"], "notes.tsv": "a\tb\n1\t2\n"},
            "The import would skip notes.tsv, stages.csv, because a Pipedrive deals import reads only a CSV or XLSX "
            "deals export with the column “Deal - Title”. Remove the other files and import again.",
        ),
        (
            "pipedrive",
            {**CHANGE_LOG, "deals.csv": PIPEDRIVE_DEALS},
            "The import would skip deals.csv, because a Pipedrive change log import reads only deal_changes.csv, "
            "stages.csv, users.csv, activity.csv, activity_types.csv and fields.csv. Remove the other files and import "
            "again.",
        ),
        (
            "salesforce",
            {"opportunities.csv": OPPORTUNITIES, "opportunities_q2.csv": OPPORTUNITIES},
            "The import reads only one file of opportunities, so it would read opportunities.csv and skip "
            "opportunities_q2.csv. Combine the rows into one file with one header row, or import the files one "
            "after the other.",
        ),
        (
            "salesforce",
            {"opportunities.csv": OPPORTUNITIES, "history_a.csv": HISTORY, "history_b.csv": HISTORY},
            "The import reads only one file of opportunity stage history, so it would read history_b.csv and skip "
            "history_a.csv. Combine the rows into one file with one header row, or import the files one after the "
            "other.",
        ),
        (
            "salesforce",
            {"opportunities.csv": OPPORTUNITIES, "history.csv": HISTORY, "accounts.tsv": "Id\tName\n1\tAcme\n"},
            "The import would skip accounts.tsv, because a Salesforce import reads only CSV or XLSX files: one of "
            "opportunities and one of their stage history. Remove the other files and import again.",
        ),
    ],
)
def test_upload_skipped_file_rejected(org, admin_client, source, files, message):
    assert upload_errors(admin_client, source, files) == [message]
    with scope(organization=org):
        assert ImportRun.objects.count() == 0


def test_upload_hubspot_workbook_and_csv_rejected(org, admin_client):
    workbook = workbook_bytes(
        {"Cover": [["HubSpot export"]], "Deals": [line.split(",") for line in HUBSPOT_MORE_DEALS.splitlines()]}
    )
    files = {"deals.csv": HUBSPOT_DEALS.encode(), "deals.xlsx": workbook}

    response = import_upload(admin_client, "hubspot", files, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response.context["form"].errors["files"] == [
        "The import reads only one file of deals, so it would read deals.csv and skip deals.xlsx. "
        "Combine the rows into one file with one header row, or import the files one after the other."
    ]


@pytest.mark.parametrize(
    ("source", "files"),
    [
        ("salesforce", {"opportunities.csv": OPPORTUNITIES, "history.csv": HISTORY}),
        ("pipedrive", {**CHANGE_LOG, "fields.csv": "key,name,options\n", "activity.csv": "activity_id,type\n"}),
        ("hubspot", {"deals.csv": HUBSPOT_DEALS}),
        ("generic", {"a_jan.csv": GENERIC_JANUARY}),
    ],
)
def test_upload_of_read_files_accepted(org, admin_client, source, files):
    response = import_upload(admin_client, source, {name: text.encode() for name, text in files.items()})

    assert response.status_code == 302
    assert only_import_run(org).file_names == sorted(files)


def test_command_rejects_skipped_file(org, tmp_path):
    folder = export_folder(tmp_path / "two", {"a_jan.csv": GENERIC_JANUARY, "b_feb.csv": GENERIC_FEBRUARY})
    maps = ["--map", "external_id=external_id", "--map", "owner=owner", "--map", "created_at=created_at"]

    with pytest.raises(CommandError) as raised:
        call_command("import_crm", str(folder), *maps, org="acme", source="generic", language="en", stdout=io.StringIO())

    assert str(raised.value) == ONE_GENERIC_FILE


def test_command_rejects_file_outside_maven_export(org, tmp_path):
    folder = export_folder(
        tmp_path / "maven",
        {
            "accounts.csv": "account\nAcme\n",
            "products.csv": "product\nGTX\n",
            "sales_teams.csv": "sales_agent,manager\nEva Roth,Max Bauer\n",
            "sales_pipeline.csv": "opportunity_id\nX1\n",
            "data_dictionary.csv": "Table,Field,Description\naccounts,account,Company name\n",
            "notes.csv": "note\nhello\n",
        },
    )

    with pytest.raises(CommandError) as raised:
        call_command("import_crm", str(folder), org="acme", source="maven", language="en", stdout=io.StringIO())

    assert str(raised.value) == (
        "The import would skip notes.csv, because a Maven import reads only accounts.csv, products.csv, "
        "sales_pipeline.csv and sales_teams.csv (data_dictionary.csv may be present). Remove the other files and "
        "import again."
    )
