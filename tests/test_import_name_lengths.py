"""Names longer than their column are rejected with the limit named, never cut, so a second import of the same file still matches."""

import shutil
from pathlib import Path

import pytest
from django_scopes import scope

from pipelines.importers.base import ImportSourceError
from pipelines.models import Activity, Deal, Stage
from tests.import_helpers import pipeline_names, run_file_import

CHANGELOG = Path(__file__).parent / "data" / "pipedrive_changelog"
LONG_PIPELINE = "Vertriebspipeline Süd " + "x" * 228


def deals_export(folder: Path) -> Path:
    """Write a Pipedrive "Deal - …" export as Pipedrive's German export writes it: semicolons, Windows-1252."""
    folder.mkdir()
    text = (
        "Deal - ID;Deal - Title;Deal - Owner;Deal - Pipeline;Deal - Stage;Deal - Status;Deal - Creation date\n"
        f"1;Solar Müller;Eva Roth;{LONG_PIPELINE};Angebot;open;2025-01-10\n"
        "2;Dach Weiß;Eva Roth;Vertrieb;Angebot;open;2025-01-11\n"
    )
    (folder / "deals.csv").write_bytes(text.encode("cp1252"))
    return folder


def test_pipedrive_long_pipeline_name_rejected_twice(org, tmp_path):
    assert len(LONG_PIPELINE) == 250
    folder = deals_export(tmp_path / "deals")

    first = run_file_import(org, "pipedrive", folder)
    second = run_file_import(org, "pipedrive", folder)

    for result in (first, second):
        assert [str(error) for error in result.errors] == [
            f"deals.csv line 2, column Deal - Pipeline, value '{LONG_PIPELINE[:60]}…': too long; at most 200 characters"
        ]
    assert first.counts["deals"].created == 1
    assert second.counts["deals"].unchanged == 1
    assert pipeline_names(org) == ["Vertrieb"]
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", flat=True)) == ["2"]


def test_pipedrive_long_activity_type_name_rejected(org, tmp_path):
    folder = tmp_path / "changelog"
    shutil.copytree(CHANGELOG, folder)
    long_name = "Sales Call " + "y" * 90
    types = (folder / "activity_types.csv").read_text(encoding="utf-8")
    (folder / "activity_types.csv").write_text(types.replace("Sales Call 1", long_name), encoding="utf-8")

    result = run_file_import(org, "pipedrive", folder)

    activity_errors = [str(error) for error in result.errors if error.file_name == "activity.csv"]
    assert activity_errors == [
        (
            "activity.csv line 2, column type, value 'meeting': the name of this activity type in activity_types.csv "
            "is too long; at most 100 characters"
        )
    ]
    with scope(organization=org):
        assert sorted(Activity.objects.values_list("type_name", flat=True)) == ["Follow Up Call", "Follow Up Call"]


def test_salesforce_long_history_stage_name_rejected(org, tmp_path):
    from tests.test_import_salesforce import OPPORTUNITIES, export, run_import

    long_stage = "Verhandlung " + "z" * 200
    history = (
        "OpportunityId,StageName,Amount,CloseDate,Probability,CreatedDate,FromOpportunityStageName,CurrencyIsoCode\n"
        "0065g00000AbCdEAAX,Prospecting,10000,2025-03-31,10,2025-01-05T09:00:00Z,,USD\n"
        f"0065g00000AbCdEAAX,{long_stage},10000,2025-03-31,80,2025-02-15T09:00:00Z,Prospecting,USD\n"
        f"0065g00000AbCdEAAX,{long_stage},11000,2025-03-31,80,2025-02-20T09:00:00Z,{long_stage},USD\n"
        "0065g00000AbCdEAAX,Closed Won,10000,2025-03-10,100,2025-03-10T16:00:00Z,Negotiation/Review,USD\n"
    )
    folder = export(tmp_path, OPPORTUNITIES, history)

    first = run_import(org, folder)
    second = run_import(org, folder)

    expected = [
        f"opportunity_history.csv line {line}, column StageName, value '{long_stage[:60]}…': too long; at most 200 characters"
        for line in (3, 4)
    ]
    assert [str(error) for error in first.errors] == expected
    assert [str(error) for error in second.errors] == expected
    with scope(organization=org):
        assert not Stage.objects.filter(name__startswith="Verhandlung").exists()


def test_hubspot_long_entered_stage_column_rejected(org, tmp_path):
    long_stage = "Angebot " + "w" * 200
    folder = tmp_path / "hubspot"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        f'Record ID,Deal Stage,Pipeline,Deal owner,Create Date,Date entered "{long_stage} (Sales Pipeline)"\n'
        f"501,{long_stage},Sales Pipeline,Eva Roth,2025-01-10,2025-01-10\n",
        encoding="utf-8",
    )

    with pytest.raises(ImportSourceError) as raised:
        run_file_import(org, "hubspot", folder)

    assert str(raised.value) == (
        f'Column Date entered "{long_stage[:46]}… names a stage or pipeline longer than 200 characters. '
        "Shorten the name in HubSpot and export the deals again."
    )
    assert pipeline_names(org) == []
