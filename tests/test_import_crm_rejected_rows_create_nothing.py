"""Pipelines and stages named only in rejected rows of the HubSpot, Salesforce and Pipedrive deals exports.

Each export below names new stages, and a new pipeline where the format has one, in rows
that are rejected for another reason. The reasons are an amount that is no number, an
impossible date, and an owner whose generated e-mail address belongs to another name
("Joerg Weiss" after "Jörg Weiß"). Only the third row, with its stage "Angebot", is accepted.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scopes_disabled

from pipelines.models import DealStageChange, ImportRunStatus
from tests.import_helpers import (
    export_folder,
    import_start,
    pipeline_names,
    run_file_import,
    stage_rows,
    uploaded_dry_run,
)

HUBSPOT_HEADER = (
    "Record ID,Deal Name,Deal Stage,Pipeline,Amount,Deal owner,Create Date,Close Date,"
    'Date entered "Appointment Scheduled (Sales Pipeline)",Date entered "Closed Won (Sales Pipeline)"\n'
)
# H-2 names the new pipeline "Partner" and has an impossible creation date.
HUBSPOT_CSV = HUBSPOT_HEADER + (
    "H-1,Eins,Demo,Sales Pipeline,abc,Eva Roth,2025-01-10 09:00,2025-03-31,2025-01-10 09:00,\n"
    "H-2,Zwei,Pilot,Partner,100,Eva Roth,2025-02-30 09:00,,,\n"
    "H-3,Drei,Angebot,Sales Pipeline,300,Jörg Weiß,2025-01-12 08:00,2025-04-30,2025-01-12 08:00,\n"
    "H-4,Vier,Workshop,Sales Pipeline,400,Joerg Weiss,2025-01-13 08:00,,,\n"
)

SALESFORCE_OPPORTUNITIES = (
    "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Amount,Close Date,Created Date\n"
    "0065g00000SF001,Eins,Eva Roth,Demo,abc,2025-05-30,2025-01-05 10:00\n"
    "0065g00000SF002,Zwei,Eva Roth,Pilot,100,2025-05-30,2025-02-30 10:00\n"
    "0065g00000SF003,Drei,Jörg Weiß,Angebot,300,2025-05-30,2025-01-06 10:00\n"
    "0065g00000SF004,Vier,Joerg Weiss,Workshop,400,2025-05-30,2025-01-07 10:00\n"
)
# "Qualify" is in the history of the rejected SF001 only, "Orphan" in that of an opportunity the report lacks,
# whose row is rejected.
SALESFORCE_HISTORY = (
    "OpportunityId,StageName,CreatedDate\n"
    "0065g00000SF001AAA,Qualify,2025-01-05T09:00:00Z\n"
    "0065g00000SF003AAA,Prospecting,2025-01-06T09:00:00Z\n"
    "0065g00000SF003AAA,Angebot,2025-01-20T09:00:00Z\n"
    "0065g00000SF009AAA,Orphan,2025-01-08T09:00:00Z\n"
)

PIPEDRIVE_HEADER = (
    "Deal - ID,Deal - Title,Deal - Pipeline,Deal - Stage,Deal - Owner,Deal - Status,Deal - Value,"
    "Deal - Won time,Deal - Lost time,Deal - Creation date\n"
)
# Row 22 names the new pipeline "Partner" and is won at an impossible time. Row 24 is lost,
# so the stages "Won" and "Lost" are named only by rejected rows too.
PIPEDRIVE_CSV = PIPEDRIVE_HEADER + (
    "21,Eins,,Demo,Eva Roth,open,abc,,,2025-02-01 09:00\n"
    "22,Zwei,Partner,Pilot,Eva Roth,won,100,2025-02-30 10:00,,2025-02-01 09:00\n"
    "23,Drei,,Angebot,Jörg Weiß,open,300,,,2025-02-03 09:00\n"
    "24,Vier,,Workshop,Joerg Weiss,lost,400,,2025-03-01 10:00,2025-02-04 09:00\n"
)


def utc(year, month, day, hour=0):
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def history(org, external_id: str) -> list[tuple]:
    with scopes_disabled():
        return list(
            DealStageChange.objects.filter(organization=org, deal__external_id=external_id)
            .order_by("changed_at", "id")
            .values_list("from_stage__name", "to_stage__name", "changed_at", "is_implied")
        )


def rejected(result) -> list[tuple[int, str]]:
    return [(error.line, str(error.column)) for error in result.errors]


def test_hubspot_rejected_rows_add_no_stage(org, tmp_path):
    """The stages that the columns list are created with the accepted deal's pipeline, but "Demo", "Pilot", "Workshop" and "Partner" are not."""
    result = run_file_import(org, "hubspot", export_folder(tmp_path / "hubspot", {"deals.csv": HUBSPOT_CSV}))

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 3
    assert rejected(result) == [(2, "Amount"), (3, "Create Date"), (5, "Deal owner")]
    assert pipeline_names(org) == ["Sales Pipeline"]
    assert stage_rows(org) == [
        ("Sales Pipeline", "Appointment Scheduled", 1, "open"),
        ("Sales Pipeline", "Angebot", 2, "open"),
        ("Sales Pipeline", "Closed Won", 3, "won"),
    ]
    # Angebot has no "Date entered" cell, so the deal entered it with its latest recorded move. Berlin is UTC+1.
    assert history(org, "H-3") == [
        (None, "Appointment Scheduled", utc(2025, 1, 12, 7), False),
        ("Appointment Scheduled", "Angebot", utc(2025, 1, 12, 7), True),
    ]


def test_hubspot_file_of_rejected_rows_adds_no_pipeline(org, tmp_path):
    """The only row has an impossible creation date, so neither its pipeline nor the stages its columns list are created."""
    text = HUBSPOT_HEADER + "H-1,Eins,Demo,Sales Pipeline,100,Eva Roth,2025-02-30 09:00,,2025-01-10 09:00,\n"

    result = run_file_import(org, "hubspot", export_folder(tmp_path / "hubspot", {"deals.csv": text}))

    assert rejected(result) == [(2, "Create Date")]
    assert pipeline_names(org) == []
    assert stage_rows(org) == []


def test_salesforce_rejected_rows_add_no_stage(org, tmp_path):
    folder = export_folder(
        tmp_path / "salesforce",
        {"opportunities.csv": SALESFORCE_OPPORTUNITIES, "opportunity_history.csv": SALESFORCE_HISTORY},
    )

    result = run_file_import(org, "salesforce", folder)

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 3
    assert result.counts["stage_changes"].rejected == 1
    assert rejected(result) == [(5, "OpportunityId"), (2, "Amount"), (3, "Created Date"), (5, "Opportunity Owner")]
    assert pipeline_names(org) == ["Salesforce"]
    # Numbered in the order they were first named: the report's stages come before the history's.
    assert stage_rows(org) == [("Salesforce", "Angebot", 1, "open"), ("Salesforce", "Prospecting", 2, "open")]
    assert history(org, "0065g00000SF003") == [
        (None, "Prospecting", utc(2025, 1, 6, 9), False),
        ("Prospecting", "Angebot", utc(2025, 1, 20, 9), False),
    ]


def test_salesforce_file_of_rejected_rows_adds_no_pipeline(org, tmp_path):
    text = "Opportunity ID,Opportunity Owner,Stage,Created Date\n0065g00000SF001,Eva Roth,Demo,2025-02-30 10:00\n"

    result = run_file_import(org, "salesforce", export_folder(tmp_path / "salesforce", {"opportunities.csv": text}))

    assert rejected(result) == [(2, "Created Date")]
    assert pipeline_names(org) == []
    assert stage_rows(org) == []


def test_pipedrive_deals_rejected_rows_add_no_stage(org, tmp_path):
    result = run_file_import(org, "pipedrive", export_folder(tmp_path / "pipedrive", {"deals.csv": PIPEDRIVE_CSV}))

    assert result.counts["deals"].created == 1
    assert result.counts["deals"].rejected == 3
    assert rejected(result) == [(2, "Deal - Value"), (3, "Deal - Won time"), (5, "Deal - Owner")]
    assert pipeline_names(org) == ["Pipedrive"]
    assert stage_rows(org) == [("Pipedrive", "Angebot", 1, "open")]


def test_pipedrive_deals_closed_stages_follow_open(org, tmp_path):
    """Won and lost stages of accepted deals are created and moved after the open stages named later in the file."""
    text = PIPEDRIVE_HEADER + (
        "31,Eins,,Angebot,Eva Roth,won,100,2025-03-01 10:00,,2025-02-01 09:00\n"
        "32,Zwei,,Verhandlung,Eva Roth,lost,200,,2025-03-02 10:00,2025-02-02 09:00\n"
        "33,Drei,,Qualifiziert,Eva Roth,open,300,,,2025-02-03 09:00\n"
    )

    result = run_file_import(org, "pipedrive", export_folder(tmp_path / "pipedrive", {"deals.csv": text}))

    assert result.errors == []
    assert stage_rows(org) == [
        ("Pipedrive", "Angebot", 1, "open"),
        ("Pipedrive", "Verhandlung", 2, "open"),
        ("Pipedrive", "Qualifiziert", 3, "open"),
        ("Pipedrive", "Won", 4, "won"),
        ("Pipedrive", "Lost", 5, "lost"),
    ]
    assert history(org, "31") == [(None, "Angebot", utc(2025, 2, 1, 8), True), ("Angebot", "Won", utc(2025, 3, 1, 9), True)]


def hubspot_rows(name: str, count: int) -> dict[str, str]:
    rows = [f"{name}-{number},Deal,{name} {number},Sales Pipeline,100,Eva Roth,2025-01-10 09:00,," for number in range(count)]
    return {"deals.csv": HUBSPOT_HEADER + "\n".join(rows) + "\n"}


def salesforce_rows(name: str, count: int) -> dict[str, str]:
    rows = [f"0065g{name:0>6}{number:04d},Eva Roth,{name} {number},2025-01-05 10:00" for number in range(count)]
    return {"opportunities.csv": "Opportunity ID,Opportunity Owner,Stage,Created Date\n" + "\n".join(rows) + "\n"}


def pipedrive_rows(name: str, count: int) -> dict[str, str]:
    rows = [f"{name}-{number},Deal,,{name} {number},Eva Roth,open,100,,,2025-02-01 09:00" for number in range(count)]
    return {"deals.csv": PIPEDRIVE_HEADER + "\n".join(rows) + "\n"}


@pytest.mark.parametrize(
    ("source", "files_for"),
    [("hubspot", hubspot_rows), ("salesforce", salesforce_rows), ("pipedrive", pipedrive_rows)],
)
def test_queries_flat_in_new_stages(org, tmp_path, source, files_for):
    """Ten rows with ten new stages cost the same queries as two rows with two, because one statement inserts the stages."""

    def queries_for(name: str, count: int) -> int:
        folder = export_folder(tmp_path / name, files_for(name, count))
        with CaptureQueriesContext(connection) as queries:
            result = run_file_import(org, source, folder)
        assert result.counts["deals"].created == count
        return len(queries)

    # The first import creates the pipeline and the owner, so it runs once before the two that are compared.
    queries_for("Warm", 1)

    assert queries_for("Ten", 10) == queries_for("Two", 2)


@pytest.mark.usefixtures("import_storage")
@pytest.mark.parametrize(
    ("source", "files", "stages"),
    [
        (
            "hubspot",
            {"deals.csv": HUBSPOT_CSV},
            [
                ("Sales Pipeline", "Appointment Scheduled", 1, "open"),
                ("Sales Pipeline", "Angebot", 2, "open"),
                ("Sales Pipeline", "Closed Won", 3, "won"),
            ],
        ),
        (
            "salesforce",
            {"opportunities.csv": SALESFORCE_OPPORTUNITIES, "opportunity_history.csv": SALESFORCE_HISTORY},
            [("Salesforce", "Angebot", 1, "open"), ("Salesforce", "Prospecting", 2, "open")],
        ),
        ("pipedrive", {"deals.csv": PIPEDRIVE_CSV}, [("Pipedrive", "Angebot", 1, "open")]),
    ],
)
def test_dry_run_then_import_stages(org, admin_client, django_capture_on_commit_callbacks, source, files, stages):
    encoded = {name: text.encode() for name, text in files.items()}
    run = uploaded_dry_run(org, admin_client, django_capture_on_commit_callbacks, source, encoded)

    assert run.status == ImportRunStatus.PREVIEWED
    assert run.summary["counts"]["deals"]["created"] == 1
    assert run.summary["counts"]["deals"]["rejected"] == 3
    assert [row["stage"] for row in run.preview] == ["Angebot"]
    assert pipeline_names(org) == []
    assert stage_rows(org) == []

    import_start(admin_client, django_capture_on_commit_callbacks, run)

    assert run.status == ImportRunStatus.SUCCEEDED
    assert run.summary["counts"]["deals"]["rejected"] == 3
    assert pipeline_names(org) == [stages[0][0]]
    assert stage_rows(org) == stages
