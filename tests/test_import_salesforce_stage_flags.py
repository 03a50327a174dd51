"""Salesforce stage kinds: most rows' Won/Closed flags decide, and rows that contradict them are rejected."""

import pytest
from django_scopes import scope

from pipelines.models import Deal, DealStatus, Stage, StageKind
from tests.factories import PipelineFactory, StageFactory
from tests.import_helpers import export_folder, run_file_import

HEADER = "Opportunity ID,Opportunity Name,Opportunity Owner,Stage,Close Date,Created Date,Won,Closed\n"
OPEN_A = "0065g00000ZZZ01,Open prospect A,Lena Vogt,Prospecting,2025-05-30,2025-02-01 10:00,0,0\n"
WON_FLAGGED = "0065g00000ZZZ02,Mis-flagged,Lena Vogt,Prospecting,2025-03-30,2025-02-01 10:00,1,1\n"
OPEN_B = "0065g00000ZZZ03,Open prospect B,Lena Vogt,Prospecting,2025-05-30,2025-02-01 10:00,0,0\n"
MISFLAGGED_REASON = (
    "Won=1 and Closed=1 mean won, but stage Prospecting is open in this import, and all opportunities of a stage "
    "need the same flags; correct the flags or the stage in Salesforce and export again"
)


def prospecting_rows(org):
    with scope(organization=org):
        stages = list(Stage.objects.filter(name__iexact="prospecting").values_list("name", "kind", "probability"))
        deals = sorted(Deal.objects.values_list("external_id", "status"))
    return stages, deals


@pytest.mark.parametrize("order", ["bad_first", "bad_middle"])
def test_minority_flags_rejected(org, tmp_path, order):
    rows = [WON_FLAGGED, OPEN_A, OPEN_B] if order == "bad_first" else [OPEN_A, WON_FLAGGED, OPEN_B]
    folder = export_folder(tmp_path / "sf", {"opportunities.csv": HEADER + "".join(rows)})

    result = run_file_import(org, "salesforce", folder)

    line = rows.index(WON_FLAGGED) + 2
    assert [str(error) for error in result.errors] == [
        f"opportunities.csv line {line}, column Closed, value '1': {MISFLAGGED_REASON}"
    ]
    stages, deals = prospecting_rows(org)
    assert stages == [("Prospecting", StageKind.OPEN, 0)]
    assert deals == [("0065g00000ZZZ01", DealStatus.OPEN), ("0065g00000ZZZ03", DealStatus.OPEN)]


def test_won_without_closed_rejected(org, tmp_path):
    folder = export_folder(
        tmp_path / "sf",
        {"opportunities.csv": HEADER + OPEN_A + "0065g00000ZZZ04,Half,Lena Vogt,Prospecting,2025-05-30,2025-02-01 10:00,1,0\n"},
    )

    result = run_file_import(org, "salesforce", folder)

    assert [str(error) for error in result.errors] == [
        "opportunities.csv line 3, column Closed, value '0': Won=1 with Closed=0 is contradictory, because a won "
        "opportunity is closed; correct the flags in Salesforce and export again"
    ]


def test_invalid_flag_rejected(org, tmp_path):
    folder = export_folder(
        tmp_path / "sf",
        {"opportunities.csv": HEADER + OPEN_A + "0065g00000ZZZ05,Maybe,Lena Vogt,Prospecting,2025-05-30,2025-02-01 10:00,0,maybe\n"},
    )

    result = run_file_import(org, "salesforce", folder)

    assert [str(error) for error in result.errors] == [
        "opportunities.csv line 3, column Closed, value 'maybe': invalid yes/no value; expected yes/no, true/false or 1/0"
    ]


def test_stored_wrong_kind_corrected(org, tmp_path):
    # A stage that an earlier import stored as won from a single mis-flagged row.
    with scope(organization=org):
        pipeline = PipelineFactory(organization=org, name="Salesforce")
        StageFactory(pipeline=pipeline, name="Prospecting", kind=StageKind.WON, probability=100, order=1)
    folder = export_folder(tmp_path / "sf", {"opportunities.csv": HEADER + OPEN_A + OPEN_B})

    result = run_file_import(org, "salesforce", folder)

    assert result.errors == []
    stages, deals = prospecting_rows(org)
    assert stages == [("Prospecting", StageKind.OPEN, 0)]
    assert deals == [("0065g00000ZZZ01", DealStatus.OPEN), ("0065g00000ZZZ03", DealStatus.OPEN)]


def test_tie_goes_to_name_kind(org, tmp_path):
    folder = export_folder(
        tmp_path / "sf",
        {
            "opportunities.csv": HEADER
            + "0065g00000ZZZ06,Open,Lena Vogt,Closed Won,2025-03-30,2025-02-01 10:00,0,0\n"
            + "0065g00000ZZZ07,Won,Lena Vogt,Closed Won,2025-03-30,2025-02-01 10:00,1,1\n"
        },
    )

    result = run_file_import(org, "salesforce", folder)

    assert [str(error) for error in result.errors] == [
        "opportunities.csv line 2, column Closed, value '0': Won=0 and Closed=0 mean open, but stage Closed Won is won "
        "in this import, and all opportunities of a stage need the same flags; correct the flags or the stage in Salesforce and export again"
    ]
    with scope(organization=org):
        assert list(Deal.objects.values_list("external_id", "status")) == [("0065g00000ZZZ07", DealStatus.WON)]
