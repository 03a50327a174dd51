"""Pipeline and stage names match existing ones ignoring case and surrounding spaces, keeping the stored spelling."""

import pytest
from django.urls import reverse

from pipelines.models import StageKind
from tests.import_helpers import (
    export_folder,
    pipeline_names,
    run_file_import,
    stage_rows,
)
from tests.test_api import DEAL_RECORD, client_for, make_token

HUBSPOT_HEADER = (
    'Record ID,Deal Stage,Pipeline,Deal owner,Create Date,Date entered "Appointment Scheduled (Sales Pipeline)",'
    'Date entered "Contract Sent (Sales Pipeline)"\n'
)


def test_hubspot_names_in_other_case_match(org, tmp_path):
    folder = export_folder(
        tmp_path / "hs",
        {
            "deals.csv": HUBSPOT_HEADER
            + "501,Contract Sent,Sales Pipeline,Eva Roth,2025-01-10,2025-01-10,2025-01-20\n"
            + "502,contract sent, sales pipeline ,Eva Roth,2025-01-12,2025-01-12,2025-01-22\n"
        },
    )

    result = run_file_import(org, "hubspot", folder)

    assert result.errors == []
    assert result.counts["deals"].created == 2
    assert pipeline_names(org) == ["Sales Pipeline"]
    assert stage_rows(org) == [
        ("Sales Pipeline", "Appointment Scheduled", 1, StageKind.OPEN),
        ("Sales Pipeline", "Contract Sent", 2, StageKind.OPEN),
    ]


def test_hubspot_later_import_matches_stored_names(org, tmp_path):
    first = export_folder(
        tmp_path / "first", {"deals.csv": HUBSPOT_HEADER + "501,Contract Sent,Sales Pipeline,Eva Roth,2025-01-10,2025-01-10,2025-01-20\n"}
    )
    second = export_folder(
        tmp_path / "second",
        {
            "deals.csv": (
                "Record ID,Deal Stage,Pipeline,Deal owner,Create Date\n"
                "502,CONTRACT SENT,sales pipeline,Eva Roth,2025-01-12\n"
            )
        },
    )
    run_file_import(org, "hubspot", first)

    result = run_file_import(org, "hubspot", second)

    assert result.errors == []
    assert pipeline_names(org) == ["Sales Pipeline"]
    assert [row[1] for row in stage_rows(org)] == ["Appointment Scheduled", "Contract Sent"]


def test_pipedrive_deals_export_pipeline_case(org, tmp_path):
    folder = export_folder(
        tmp_path / "pd",
        {
            "deals.csv": (
                "Deal - ID;Deal - Title;Deal - Owner;Deal - Pipeline;Deal - Stage;Deal - Status;Deal - Creation date\n"
                "1;A;Eva Roth;Vertrieb;Angebot;open;2025-01-10\n"
                "2;B;Eva Roth;VERTRIEB ;angebot;open;2025-01-11\n"
            )
        },
    )

    result = run_file_import(org, "pipedrive", folder)

    assert result.errors == []
    assert pipeline_names(org) == ["Vertrieb"]
    assert [row[1] for row in stage_rows(org)] == ["Angebot"]


@pytest.mark.django_db
def test_api_pipeline_name_case(org):
    _token, plain = make_token(org, "write")
    client = client_for(plain)
    client.post(reverse("api_deals"), {"records": [{**DEAL_RECORD, "pipeline": "Sales Pipeline"}]}, format="json")

    body = client.post(
        reverse("api_deals"),
        {"records": [{**DEAL_RECORD, "external_id": "D2", "pipeline": " sales pipeline ", "stage": "NEGOTIATION"}]},
        format="json",
    ).json()

    assert body["rejected"] == []
    assert pipeline_names(org) == ["Sales Pipeline"]
    assert [row[1] for row in stage_rows(org) if row[0] == "Sales Pipeline"] == ["Negotiation"]
