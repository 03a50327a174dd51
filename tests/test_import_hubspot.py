"""HubSpot deals export: stage history rebuilt from the "Date entered" columns."""

import datetime as dt
from decimal import Decimal

import pytest
from django_scopes import scope

from dashboards.models import Grain, KpiSnapshot, PeriodKind
from dashboards.services import kpi_snapshot_recompute
from pipelines.models import Deal, DealStageChange, DealStatus, Stage, StageKind
from pipelines.services import crm_import

HEADER = (
    'Record ID,Deal Name,Deal Stage,Pipeline,Amount,Deal owner,Create Date,Close Date,'
    'Date entered "Appointment Scheduled (Sales Pipeline)",Date entered "Contract Sent (Sales Pipeline)",'
    'Date entered "Closed Won (Sales Pipeline)",Date entered "Closed Lost (Sales Pipeline)"\n'
)
ROWS = (
    "501,Acme Roof,Closed Won,Sales Pipeline,1200.50,Eva Roth,2025-01-10 09:00,2025-02-20 15:00,"
    "2025-01-10 09:00,2025-01-20 10:00,2025-02-20 15:00,\n"
    "502,Beta Solar,Contract Sent,Sales Pipeline,800,Max Kurz,2025-01-12 08:00,2025-03-31,"
    "2025-01-12 08:00,2025-01-25 11:00,,\n"
    "503,Gamma,Closed Lost,Sales Pipeline,,Eva Roth,2025-01-15 08:00,2025-02-01 09:00,,,,\n"
)


def utc(year, month, day, hour=0):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


def write(folder, text, encoding="utf-8"):
    folder.mkdir(exist_ok=True)
    (folder / "hubspot-crm-exports-deals.csv").write_bytes(text.encode(encoding))
    return folder


def run_import(org, folder, **options):
    with scope(organization=org):
        return crm_import(organization=org, source="hubspot", path=folder, today=dt.date(2025, 4, 1), **options)


def history(org, external_id):
    with scope(organization=org):
        return list(
            DealStageChange.objects.filter(deal__external_id=external_id)
            .order_by("changed_at", "id")
            .values_list("from_stage__name", "to_stage__name", "changed_at")
        )


def test_history_from_date_entered(org, tmp_path):
    result = run_import(org, write(tmp_path / "x", HEADER + ROWS))
    assert result.counts["deals"].created == 3
    assert result.counts["stage_changes"].created == 6
    # January and February: Berlin is UTC+1.
    assert history(org, "501") == [
        (None, "Appointment Scheduled", utc(2025, 1, 10, 8)),
        ("Appointment Scheduled", "Contract Sent", utc(2025, 1, 20, 9)),
        ("Contract Sent", "Closed Won", utc(2025, 2, 20, 14)),
    ]


def test_status_and_amounts(org, tmp_path):
    run_import(org, write(tmp_path / "x", HEADER + ROWS))
    with scope(organization=org):
        won = Deal.objects.get(external_id="501")
        open_deal = Deal.objects.get(external_id="502")
        lost = Deal.objects.get(external_id="503")
    assert won.status == DealStatus.WON
    assert won.closed_at == utc(2025, 2, 20, 14)
    assert won.amount == Decimal("1200.50")
    assert open_deal.status == DealStatus.OPEN
    assert open_deal.expected_close_on == dt.date(2025, 3, 31)
    assert lost.status == DealStatus.LOST
    assert lost.amount is None
    # No "Date entered" cell: the only known move is the close.
    assert history(org, "503") == [(None, "Closed Lost", utc(2025, 2, 1, 8))]


def test_stage_order_and_kinds(org, tmp_path):
    run_import(org, write(tmp_path / "x", HEADER + ROWS))
    with scope(organization=org):
        stages = list(Stage.objects.filter(pipeline__name="Sales Pipeline").order_by("order").values_list("name", "kind"))
    assert stages == [
        ("Appointment Scheduled", StageKind.OPEN),
        ("Contract Sent", StageKind.OPEN),
        ("Closed Won", StageKind.WON),
        ("Closed Lost", StageKind.LOST),
    ]


def test_bom_and_german_semicolons(org, tmp_path):
    german = (HEADER + ROWS).replace(",", ";").replace("1200.50", "1.200,50")
    german = german.replace("2025-01-10 09:00", "10.01.2025 09:00")
    run_import(org, write(tmp_path / "x", "\ufeff" + german))
    with scope(organization=org):
        deal = Deal.objects.get(external_id="501")
    assert deal.amount == Decimal("1200.50")
    assert deal.created_at == utc(2025, 1, 10, 8)


def test_ambiguous_date_rejected_then_accepted(org, tmp_path):
    text = HEADER + ROWS.replace("2025-03-31", "03/04/2025")
    result = run_import(org, write(tmp_path / "x", text))
    assert result.counts["deals"].rejected == 1
    assert result.errors[0].column == "Close Date"
    assert "ambiguous" in str(result.errors[0].reason)
    run_import(org, write(tmp_path / "x", text), options={"date_order": "dmy"})
    with scope(organization=org):
        assert Deal.objects.get(external_id="502").expected_close_on == dt.date(2025, 4, 3)


def test_reimport_appends_only_new_moves(org, tmp_path):
    folder = write(tmp_path / "x", HEADER + ROWS)
    run_import(org, folder)
    newer = ROWS.replace(
        "502,Beta Solar,Contract Sent,Sales Pipeline,800,Max Kurz,2025-01-12 08:00,2025-03-31,2025-01-12 08:00,2025-01-25 11:00,,",
        "502,Beta Solar,Closed Won,Sales Pipeline,900,Max Kurz,2025-01-12 08:00,2025-03-05 10:00,2025-01-12 08:00,2025-01-25 11:00,2025-03-05 10:00,",
    )
    result = run_import(org, write(folder, HEADER + newer))
    assert result.counts["deals"].updated == 1
    assert result.counts["deals"].unchanged == 2
    assert result.counts["stage_changes"].created == 1
    assert result.counts["stage_changes"].unchanged == 6
    with scope(organization=org):
        assert DealStageChange.objects.count() == 7
        deal = Deal.objects.get(external_id="502")
    assert deal.status == DealStatus.WON
    assert deal.amount == Decimal("900.00")


def test_missing_record_id_column(org, tmp_path):
    from pipelines.importers.base import ImportSourceError

    with pytest.raises(ImportSourceError, match="Record ID"):
        run_import(org, write(tmp_path / "x", "Deal Name,Amount\nA,1\n"))


def test_lost_deal_without_close_date_asks_to_fill_it(org, tmp_path):
    text = HEADER + ROWS.replace("Eva Roth,2025-01-15 08:00,2025-02-01 09:00,", "Eva Roth,2025-01-15 08:00,,")
    result = run_import(org, write(tmp_path / "x", text))

    assert result.errors[0].line == 4
    assert result.errors[0].column == "Close Date"
    assert result.errors[0].value == ""
    assert "a won or lost deal needs its close date, so fill in this cell" in str(result.errors[0].reason)


def test_stage_without_date_entered_stays_current(org, tmp_path):
    """An open deal whose stage has no "Date entered" enters it at its latest recorded move and stays there.

    Both moves have the same time, so the implied one must be stored after the recorded one.
    Twenty deals make it unlikely (2**-20) that a stored order which is only right by chance passes.
    """
    rows = "".join(
        f"6{number:02d},Deal,Contract Sent,Sales Pipeline,100,Eva Roth,2025-01-{number + 1:02d} 09:00,,"
        f"2025-01-{number + 1:02d} 09:00,,,\n"
        for number in range(20)
    )

    result = run_import(org, write(tmp_path / "x", HEADER + rows))

    assert result.errors == []
    with scope(organization=org):
        stages = dict(Deal.objects.values_list("external_id", "stage__name"))
    assert stages == {f"6{number:02d}": "Contract Sent" for number in range(20)}
    assert history(org, "600") == [
        (None, "Appointment Scheduled", utc(2025, 1, 1, 8)),
        ("Appointment Scheduled", "Contract Sent", utc(2025, 1, 1, 8)),
    ]


def test_stage_entered_before_creation_rejected(org, tmp_path):
    """A "Date entered" on an earlier day than Create Date rejects the row; the deal is not stored as open."""
    row = "504,Eta,Closed Won,Sales Pipeline,10,Eva Roth,2025-03-08,,2025-03-08,,2025-01-01,\n"

    result = run_import(org, write(tmp_path / "x", HEADER + ROWS + row))

    assert result.counts["deals"].created == 3
    assert result.counts["deals"].rejected == 1
    error = result.errors[0]
    assert error.line == 5
    assert error.column == 'Date entered "Closed Won (Sales Pipeline)"'
    assert error.value == "2025-01-01"
    assert error.reason.params == {"entered": dt.date(2025, 1, 1), "created": dt.date(2025, 3, 8), "created_in": "Create Date"}
    assert str(error.reason) == (
        "stage change on 01/01/2025 is before the deal was created on 03/08/2025 (Create Date); correct one of the two dates"
    )
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="504").exists()


def test_same_day_entry_sets_creation(org, tmp_path):
    """A date-only Create Date is 12:00 UTC; a move at 09:00 Berlin time that day becomes the creation time."""
    row = "504,Eta,Appointment Scheduled,Sales Pipeline,10,Eva Roth,2025-03-08,,2025-03-08 09:00,,,\n"

    result = run_import(org, write(tmp_path / "x", HEADER + row))

    assert result.errors == []
    with scope(organization=org):
        deal = Deal.objects.get(external_id="504")
    assert deal.created_at == utc(2025, 3, 8, 8)


def test_deal_stage_decides_over_later_date_entered(org, tmp_path):
    """A stage entered after the current stage contradicts Deal Stage, so the row is rejected, not stored in that stage."""
    row = "504,Eta,Closed Won,Sales Pipeline,10,Eva Roth,2025-01-05,,2025-03-01,,2025-02-01,\n"

    result = run_import(org, write(tmp_path / "x", HEADER + row))

    assert result.counts["deals"].rejected == 1
    error = result.errors[0]
    assert error.column == 'Date entered "Appointment Scheduled (Sales Pipeline)"'
    assert error.value == "2025-03-01"
    assert error.reason.params == {"stage": "Closed Won", "current": dt.date(2025, 2, 1)}
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="504").exists()


def test_deal_stage_decides_between_same_time_entries(org, tmp_path):
    """Two stages entered at the same instant: the deal is in the stage that Deal Stage names, whatever the column order."""
    rows = (
        "504,Open,Appointment Scheduled,Sales Pipeline,10,Eva Roth,2025-01-05,,2025-01-05,,2025-01-05,\n"
        "505,Won,Closed Won,Sales Pipeline,10,Eva Roth,2025-01-05,,2025-01-05,,2025-01-05,\n"
    )

    result = run_import(org, write(tmp_path / "x", HEADER + rows))

    assert result.errors == []
    with scope(organization=org):
        deals = {deal.external_id: deal for deal in Deal.objects.select_related("stage")}
    assert deals["504"].stage.name == "Appointment Scheduled"
    assert deals["504"].status == DealStatus.OPEN
    assert deals["505"].stage.name == "Closed Won"
    assert deals["505"].status == DealStatus.WON


def test_close_date_before_creation_rejected(org, tmp_path):
    row = "504,Eta,Closed Lost,Sales Pipeline,10,Eva Roth,2025-03-08 10:00,2025-03-01,,,,\n"

    result = run_import(org, write(tmp_path / "x", HEADER + row))

    assert result.counts["deals"].rejected == 1
    assert result.errors[0].column == "Close Date"
    assert result.errors[0].value == "2025-03-01"
    assert str(result.errors[0].reason) == "close date is before the creation date"


def test_close_on_creation_day_closes_at_creation(org, tmp_path):
    """A Close Date earlier on the creation day, a date alone or with a time, closes the deal at its creation time."""
    rows = (
        "601,Iota,Closed Won,Sales Pipeline,100,Eva Roth,2017-03-01T14:00Z,2017-03-01,,,,\n"
        "602,Kappa,Closed Lost,Sales Pipeline,100,Eva Roth,2017-03-01T14:00Z,2017-03-01 09:00,,,,\n"
        "603,Lambda,Closed Won,Sales Pipeline,100,Eva Roth,2017-03-02 09:00,2017-03-02,,,,\n"
    )

    result = run_import(org, write(tmp_path / "x", HEADER + rows))
    kpi_snapshot_recompute(organization=org)

    assert result.errors == []
    with scope(organization=org):
        deals = {deal.external_id: deal for deal in Deal.objects.all()}
        march = KpiSnapshot.objects.get(
            period_kind=PeriodKind.MONTH, period_start=dt.date(2017, 3, 1), grain=Grain.ORGANIZATION
        )
    assert deals["601"].created_at == utc(2017, 3, 1, 14)
    assert deals["601"].closed_at == utc(2017, 3, 1, 14)
    assert deals["602"].closed_at == utc(2017, 3, 1, 14)
    # 09:00 in Berlin is 08:00 UTC, earlier than the 12:00 UTC of a date alone, which stays the close time.
    assert deals["603"].created_at == utc(2017, 3, 2, 8)
    assert deals["603"].closed_at == utc(2017, 3, 2, 12)
    assert march.won_count == 2
    assert march.lost_count == 1
    # Deal 601 adds 0 days and deal 603 adds 4 hours, 1/6 of a day.
    assert march.cycle_days_sum == Decimal("0.166667")
    assert march.cycle_days_median == Decimal("0.083333")


def test_same_day_entry_replaces_implied_entry(org, tmp_path):
    """An export without "Date entered" implies the entry, and a later entry earlier that day replaces it."""
    folder = tmp_path / "x"
    run_import(org, write(folder, HEADER + "506,Theta,Appointment Scheduled,Sales Pipeline,10,Eva Roth,2025-03-10 10:00,,,,,\n"))
    with_history = HEADER + "506,Theta,Contract Sent,Sales Pipeline,10,Eva Roth,2025-03-10 10:00,,,2025-03-10 08:00,,\n"

    result = run_import(org, write(folder, with_history))

    assert result.errors == []
    assert result.counts["stage_changes"].created == 1
    assert result.counts["stage_changes"].deleted == 1
    with scope(organization=org):
        deal = Deal.objects.get(external_id="506")
        contract_sent = Stage.objects.get(name="Contract Sent").pk
    # March before the clock change: Berlin is UTC+1.
    assert history(org, "506") == [(None, "Contract Sent", utc(2025, 3, 10, 7))]
    assert deal.stage_id == contract_sent
    assert deal.status == DealStatus.OPEN
    assert deal.created_at == utc(2025, 3, 10, 7)

    again = run_import(org, write(folder, with_history))

    assert again.counts["deals"].unchanged == 1
    assert again.counts["stage_changes"].created == 0
    assert again.counts["stage_changes"].deleted == 0
    assert again.counts["stage_changes"].unchanged == 1
    assert history(org, "506") == [(None, "Contract Sent", utc(2025, 3, 10, 7))]
