"""Pipedrive imports: the deal change log with its lookup files, and the deals export."""

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django_scopes import scope

from pipelines.models import Activity, ActivityKind, Deal, DealStageChange, DealStatus, ExchangeRate, Stage, StageKind
from pipelines.services import crm_import
from spm.models import AuditLog, Membership, Role

CHANGELOG = Path(__file__).parent / "data" / "pipedrive_changelog"
ENPAL = Path(__file__).resolve().parent.parent / "demo" / "data" / "enpal-pipedrive"
TODAY = dt.date(2025, 1, 15)


def utc(year, month, day, hour=0, minute=0):
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.timezone.utc)


def run_import(org, path, **options):
    with scope(organization=org):
        return crm_import(organization=org, source="pipedrive", path=path, today=TODAY, **options)


def history(org, external_id):
    with scope(organization=org):
        changes = DealStageChange.objects.filter(deal__external_id=external_id).select_related("from_stage", "to_stage")
        return [
            (change.from_stage.name if change.from_stage else None, change.to_stage.name, change.changed_at)
            for change in changes.order_by("changed_at", "id")
        ]


@pytest.fixture
def changelog(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(CHANGELOG, folder)
    return folder


def test_changelog_counts(org, changelog):
    result = run_import(org, changelog)
    assert result.counts["people"].created == 2
    assert result.counts["people"].rejected == 1
    assert result.counts["deals"].created == 2
    assert result.counts["deals"].rejected == 1
    assert result.counts["stage_changes"].created == 6
    assert result.counts["activities"].created == 2
    assert result.counts["activities"].rejected == 1


def test_changelog_stages_open_in_id_order(org, changelog):
    run_import(org, changelog)
    with scope(organization=org):
        stages = list(Stage.objects.filter(pipeline__name="Pipedrive").order_by("order").values_list("name", "kind"))
    assert stages == [
        ("Lead Generation", StageKind.OPEN),
        ("Qualified lead", StageKind.OPEN),
        ("Negotiation", StageKind.OPEN),
    ]


def test_changelog_history_in_berlin_time(org, changelog):
    run_import(org, changelog)
    # March 2024 before the clock change: Berlin is UTC+1.
    assert history(org, "100") == [
        (None, "Lead Generation", utc(2024, 3, 1, 8)),
        ("Lead Generation", "Qualified lead", utc(2024, 3, 5, 11)),
        ("Qualified lead", "Negotiation", utc(2024, 3, 20, 11)),
        ("Negotiation", "Qualified lead", utc(2024, 3, 25, 11)),
    ]


def test_changelog_backward_move_is_current_stage(org, changelog):
    run_import(org, changelog)
    with scope(organization=org):
        deal = Deal.objects.select_related("stage").get(external_id="100")
    assert deal.stage.name == "Qualified lead"
    assert deal.status == DealStatus.OPEN
    assert deal.closed_at is None


def test_lost_reason_keeps_deal_open(org, changelog):
    run_import(org, changelog)
    with scope(organization=org):
        deal = Deal.objects.get(external_id="100")
    assert deal.status == DealStatus.OPEN
    assert deal.custom_fields == {"lost_reason": "Pricing Issues"}
    assert deal.lost_reason == ""


def test_duplicate_add_time_keeps_earliest(org, changelog):
    result = run_import(org, changelog)
    with scope(organization=org):
        deal = Deal.objects.get(external_id="200")
    # 2024-06-30 08:00 in Berlin summer time (UTC+2).
    assert deal.created_at == utc(2024, 6, 30, 6)
    rejected = [error for error in result.errors if error.file_name == "deal_changes.csv"]
    assert [(error.line, error.value) for error in rejected] == [(10, "2024-07-01T10:00:00")]
    assert "line 11" in str(rejected[0].reason)



def test_stage_change_before_add_time_rejected(org, changelog):
    """A stage_id row on an earlier day than add_time rejects the deal, reported on that row; add_time stays the creation."""
    with (changelog / "deal_changes.csv").open("a") as handle:
        handle.write("300,2024-05-09 21:32:09,add_time,2024-05-09T21:32:09\n")
        handle.write("300,2024-04-09 21:32:09,stage_id,1\n")
        handle.write("300,2024-04-09 21:32:09,user_id,2\n")

    result = run_import(org, changelog)

    assert result.counts["deals"].created == 2
    assert result.counts["deals"].rejected == 2
    rejected = [error for error in result.errors if error.value == "2024-04-09 21:32:09"]
    assert [(error.line, error.column) for error in rejected] == [(16, "change_time")]
    params = rejected[0].reason.params
    assert params["entered"] == dt.date(2024, 4, 9)
    assert params["created"] == dt.date(2024, 5, 9)
    assert str(params["created_in"]) == "add_time on line 15"
    with scope(organization=org):
        assert not Deal.objects.filter(external_id="300").exists()


def test_same_day_stage_change_sets_creation(org, changelog):
    with (changelog / "deal_changes.csv").open("a") as handle:
        handle.write("300,2024-05-09 21:32:09,add_time,2024-05-09T21:32:09\n")
        handle.write("300,2024-05-09 08:00:00,stage_id,1\n")
        handle.write("300,2024-05-09 08:00:00,user_id,2\n")

    result = run_import(org, changelog)

    assert result.counts["deals"].created == 3
    with scope(organization=org):
        deal = Deal.objects.get(external_id="300")
    # 08:00 in Berlin summer time (UTC+2).
    assert deal.created_at == utc(2024, 5, 9, 6)


def test_duplicate_email_merges_users(org, changelog):
    result = run_import(org, changelog)
    with scope(organization=org):
        owner = Deal.objects.select_related("owner__user").get(external_id="100").owner
        members = list(Membership.objects.values_list("user__email", "role").order_by("user__email"))
    # user_id 3 has Ada's address in upper case; the deal's last owner change points at it.
    assert owner.user.email == "ada@example.org"
    assert members == [("ada@example.org", Role.REP), ("alan@example.org", Role.REP)]
    user_errors = [error for error in result.errors if error.file_name == "users.csv"]
    assert [(error.line, error.column) for error in user_errors] == [(4, "email")]


def test_activities_mapped(org, changelog):
    result = run_import(org, changelog)
    with scope(organization=org):
        first = Activity.objects.select_related("deal", "owner__user").get(external_id="9001")
        second = Activity.objects.select_related("owner__user").get(external_id="9002")
    assert first.kind == ActivityKind.CALL
    assert first.type_name == "Sales Call 1"
    assert first.is_done is True
    assert first.deal.external_id == "100"
    assert first.occurred_at == utc(2024, 3, 2, 14)
    assert second.is_done is False
    assert second.deal_id is None
    assert second.owner.user.email == "ada@example.org"
    duplicates = [error for error in result.errors if error.file_name == "activity.csv"]
    assert [(error.line, error.value) for error in duplicates] == [(4, "9001")]


def test_reimport_same_files_changes_nothing(org, changelog):
    run_import(org, changelog)
    result = run_import(org, changelog)
    assert result.counts["deals"].unchanged == 2
    assert result.counts["deals"].created == 0
    assert result.counts["deals"].updated == 0
    assert result.counts["stage_changes"].created == 0
    assert result.counts["stage_changes"].unchanged == 6
    assert result.counts["activities"].unchanged == 2
    with scope(organization=org):
        assert DealStageChange.objects.count() == 6
        assert Activity.objects.count() == 2


def test_reimport_newer_log_appends_history(org, changelog):
    run_import(org, changelog)
    with (changelog / "deal_changes.csv").open("a") as handle:
        handle.write("100,2024-04-10 12:00:00,stage_id,3\n")
        handle.write("300,2024-05-01 09:00:00,add_time,2024-05-01T09:00:00\n")
        handle.write("300,2024-05-01 09:00:00,user_id,2\n")
        handle.write("300,2024-05-01 09:00:00,stage_id,1\n")
    result = run_import(org, changelog)
    assert result.counts["deals"].created == 1
    assert result.counts["deals"].updated == 1
    assert result.counts["deals"].unchanged == 1
    assert result.counts["stage_changes"].created == 2
    assert result.counts["stage_changes"].unchanged == 6
    assert history(org, "100")[-1] == ("Qualified lead", "Negotiation", utc(2024, 4, 10, 10))
    with scope(organization=org):
        assert DealStageChange.objects.count() == 8
        assert Deal.objects.get(external_id="100").stage.name == "Negotiation"


def test_import_writes_audit_log(org, changelog):
    run_import(org, changelog)
    with scope(organization=org):
        entry = AuditLog.objects.get(action="import.finished")
    assert entry.object_id == "pipedrive"
    assert entry.after["counts"]["deals"]["created"] == 2


DEALS_EXPORT = (
    "Deal - ID;Deal - Title;Deal - Value;Deal - Currency of value;Deal - Stage;Deal - Owner;Deal - Status;"
    "Deal - Won time;Deal - Lost time;Deal - Creation date;Deal - Expected close date\n"
    "11;Solar Müller;1.234,56;EUR;Angebot;Jörg Weiß;won;15.03.2025 10:00;;01.02.2025 09:00;\n"
    "12;Dach Schmidt;2.000,00;USD;Verhandlung;Jörg Weiß;open;;;03.02.2025 09:00;30.04.2025\n"
    "13;Speicher Wolf;500;EUR;Angebot;Eva Roth;lost;;20.03.2025 16:00;04.02.2025 09:00;\n"
    "14;Falsch;=1+1;EUR;Angebot;Eva Roth;open;;;05.02.2025 09:00;\n"
)


@pytest.fixture
def deals_export(tmp_path):
    folder = tmp_path / "deals"
    folder.mkdir()
    (folder / "deals.csv").write_bytes(DEALS_EXPORT.encode("cp1252"))
    return folder


def test_deals_export_cp1252_semicolons(org, deals_export):
    with scope(organization=org):
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), rate=Decimal("0.9"))
    result = run_import(org, deals_export)
    assert result.counts["deals"].created == 3
    assert result.counts["deals"].rejected == 1
    assert result.errors[0].line == 5
    assert result.errors[0].column == "Deal - Value"
    with scope(organization=org):
        won = Deal.objects.select_related("owner__user", "stage").get(external_id="11")
        usd = Deal.objects.get(external_id="12")
        lost = Deal.objects.get(external_id="13")
    assert won.name == "Solar Müller"
    assert won.amount == Decimal("1234.56")
    assert won.status == DealStatus.WON
    assert won.closed_at == utc(2025, 3, 15, 9)
    assert won.owner.user.name == "Jörg Weiß"
    assert usd.base_amount == Decimal("1800.00")
    assert usd.expected_close_on == dt.date(2025, 4, 30)
    assert lost.status == DealStatus.LOST
    assert history(org, "11") == [
        (None, "Angebot", utc(2025, 2, 1, 8)),
        ("Angebot", "Won", utc(2025, 3, 15, 9)),
    ]


def test_deals_export_reimport_appends_move(org, deals_export):
    with scope(organization=org):
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2025, 1, 1), rate=Decimal("0.9"))
    run_import(org, deals_export)
    changed = DEALS_EXPORT.replace(
        "12;Dach Schmidt;2.000,00;USD;Verhandlung;Jörg Weiß;open;;;",
        "12;Dach Schmidt;2.000,00;USD;Verhandlung;Jörg Weiß;won;10.04.2025 12:00;;",
    )
    (deals_export / "deals.csv").write_bytes(changed.encode("cp1252"))
    result = run_import(org, deals_export)
    assert result.counts["deals"].updated == 1
    assert result.counts["deals"].unchanged == 2
    assert result.counts["stage_changes"].created == 1
    assert history(org, "12") == [
        (None, "Verhandlung", utc(2025, 2, 3, 8)),
        ("Verhandlung", "Won", utc(2025, 4, 10, 10)),
    ]


def test_enpal_funnel_matches_source(org):
    result = run_import(org, ENPAL)
    with scope(organization=org):
        stages = Stage.objects.filter(pipeline__name="Pipedrive").order_by("order")
        reached = [
            DealStageChange.objects.filter(to_stage=stage).values("deal_id").distinct().count() for stage in stages
        ]
        statuses = set(Deal.objects.values_list("status", flat=True))
    assert result.counts["deals"].created == 1995
    assert result.counts["stage_changes"].created == 8906
    assert result.counts["activities"].created == 4568
    assert result.counts["people"].created == 1783
    assert reached == [1995, 1479, 1305, 1086, 894, 741, 588, 479, 324]
    assert statuses == {DealStatus.OPEN}


def test_deals_export_won_without_won_time_asks_to_fill_it(org, deals_export):
    (deals_export / "deals.csv").write_bytes(
        DEALS_EXPORT.replace("won;15.03.2025 10:00;", "won;;").encode("cp1252")
    )
    result = run_import(org, deals_export)

    assert result.errors[0].line == 2
    assert result.errors[0].column == "Deal - Won time"
    assert result.errors[0].value == ""
    assert "a won deal needs its won time, so fill in this cell" in str(result.errors[0].reason)


def test_deals_export_lost_without_lost_time_column_names_the_absent_column(org, deals_export):
    rows = [line.split(";") for line in DEALS_EXPORT.splitlines()]
    without_lost_time = "".join(";".join(row[:8] + row[9:]) + "\n" for row in rows)
    (deals_export / "deals.csv").write_bytes(without_lost_time.encode("cp1252"))
    result = run_import(org, deals_export)

    lost_error = next(error for error in result.errors if error.line == 4)
    assert str(lost_error.column) == "Deal - Lost time (not in the file)"
    assert lost_error.value == ""
    assert "export the file with this column" in str(lost_error.reason)
