"""Maven CRM export import: mapping, validation, idempotent re-runs and the import_crm command."""

import datetime as dt
import re
import io
import shutil
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django_scopes import scope, scopes_disabled

from dashboards.models import KpiSnapshot
from goals.models import Team, Territory
from pipelines.importers.base import ImportSourceError
from pipelines.models import Account, Deal, DealStageChange, ExchangeRate, Pipeline, Product, Stage
from pipelines.services import crm_import, deal_move_stage
from spm.models import AuditLog, Membership, Organization, Role, User
from tests.factories import MembershipFactory, UserFactory

SMALL_EXPORT = Path(__file__).parent / "data" / "maven_small"
REAL_EXPORT = Path(__file__).resolve().parent.parent / "demo" / "data" / "maven-crm"
TODAY = dt.date(2018, 1, 15)
PIPELINE_FILE = "sales_pipeline.csv"


def noon(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, 12, 0, tzinfo=dt.timezone.utc)


def run_import(org, path=SMALL_EXPORT, **options):
    with scope(organization=org):
        return crm_import(organization=org, source="maven", path=path, today=TODAY, **options)


def table_counts(org) -> dict[str, int]:
    with scope(organization=org):
        counts = {
            model.__name__: model.objects.count()
            for model in (Membership, Team, Territory, Account, Product, Pipeline, Stage, Deal, DealStageChange)
        }
    counts["User"] = User.objects.count()
    return counts


def deal(org, external_id: str) -> Deal:
    with scope(organization=org):
        return Deal.objects.select_related("stage", "product", "account", "territory", "owner__user").get(
            external_id=external_id
        )


def history(org, external_id: str) -> list[tuple[str | None, str, dt.datetime, bool]]:
    with scope(organization=org):
        changes = DealStageChange.objects.filter(deal__external_id=external_id).select_related("from_stage", "to_stage")
        return [
            (change.from_stage.name if change.from_stage else None, change.to_stage.name, change.changed_at, change.is_implied)
            for change in changes
        ]


def counts_of(result) -> dict[str, tuple[int, int, int, int, int]]:
    return {
        entity: (counts.created, counts.updated, counts.unchanged, counts.deleted, counts.rejected)
        for entity, counts in result.counts.items()
    }


@pytest.fixture
def export(tmp_path) -> Path:
    """A writable copy of the small export folder."""
    target = tmp_path / "export"
    shutil.copytree(SMALL_EXPORT, target)
    return target


def append_lines(folder: Path, file_name: str, *lines: str) -> None:
    with (folder / file_name).open("a", newline="") as handle:
        handle.write("".join(f"{line}\r\n" for line in lines))


def replace_line(folder: Path, file_name: str, old: str, new: str) -> None:
    path = folder / file_name
    with path.open(newline="") as handle:
        text = handle.read()
    assert old in text
    with path.open("w", newline="") as handle:
        handle.write(text.replace(old, new))


# The small export: what lands where


def test_small_export_counts(org):
    result = run_import(org)

    assert counts_of(result) == {
        "people": (6, 0, 0, 0, 0),
        "teams": (2, 0, 0, 0, 0),
        "territories": (2, 0, 0, 0, 0),
        "accounts": (3, 0, 0, 0, 0),
        "products": (3, 0, 0, 0, 0),
        "deals": (6, 0, 0, 0, 0),
        "stage_changes": (9, 0, 0, 0, 0),
    }
    assert result.errors == []


def test_small_export_statuses(org):
    run_import(org)

    with scope(organization=org):
        assert Deal.objects.filter(status="won").count() == 2
        assert Deal.objects.filter(status="lost").count() == 1
        assert Deal.objects.filter(status="open").count() == 3
        assert Deal.objects.filter(source="maven").count() == 6


def test_managers_and_agents_mapping(org):
    run_import(org)

    with scope(organization=org):
        dustin = Membership.objects.select_related("user", "team", "territory").get(external_id="Dustin Brinkmann")
        moses = Membership.objects.select_related("user", "team", "territory", "manager").get(external_id="Moses Frase")
        assert dustin.role == Role.MANAGER
        assert dustin.user.email == "dustin.brinkmann@acme.example"
        assert dustin.user.name == "Dustin Brinkmann"
        assert dustin.user.has_usable_password() is False
        assert dustin.team.name == "Dustin Brinkmann"
        assert dustin.team.manager_id == dustin.pk
        assert dustin.territory.name == "Central"
        assert moses.role == Role.REP
        assert moses.team_id == dustin.team_id
        assert moses.manager_id == dustin.pk
        assert moses.territory.name == "Central"
        assert Membership.objects.filter(role=Role.REP).count() == 4
        assert Membership.objects.filter(role=Role.MANAGER).count() == 2
        assert sorted(Territory.objects.values_list("name", flat=True)) == ["Central", "East"]


def test_agent_without_deals_imported(org):
    run_import(org)

    with scope(organization=org):
        mei_mei = Membership.objects.select_related("user", "manager__user").get(external_id="Mei-Mei Johns")
        assert mei_mei.role == Role.REP
        assert mei_mei.user.email == "mei.mei.johns@acme.example"
        assert mei_mei.manager.user.name == "Cara Losch"
        assert mei_mei.deals.count() == 0


def test_existing_member_reused_by_address(org):
    """A member without external id whose user has the generated address becomes that person."""
    with scopes_disabled():
        existing = MembershipFactory(
            organization=org, role=Role.REP, user=UserFactory(email="moses.frase@acme.example", name="Moses F.")
        )

    run_import(org)

    with scope(organization=org):
        moses = Membership.objects.select_related("user").get(external_id="Moses Frase")
    assert moses.pk == existing.pk
    assert moses.user.name == "Moses F."
    assert User.objects.filter(email="moses.frase@acme.example").count() == 1


def test_existing_user_outside_organization_rejected(org):
    with scopes_disabled():
        existing = UserFactory(email="moses.frase@acme.example", name="Moses F.")

    result = run_import(org)

    assert [(error.line, error.column) for error in result.errors if error.file_name == "sales_teams.csv"] == [
        (3, "sales_agent")
    ]
    with scopes_disabled():
        assert not Membership.objects.filter(user=existing).exists()


def test_won_deal_values(org):
    run_import(org)

    won = deal(org, "WON00001")
    assert won.name == "GTX Basic · Cancity"
    assert won.stage.name == "Won"
    assert won.status == "won"
    assert won.amount == Decimal("588.00")
    assert won.base_amount == Decimal("588.00")
    assert won.currency == "EUR"
    assert won.created_at == noon(2016, 10, 20)
    assert won.closed_at == noon(2017, 3, 1)
    assert won.expected_close_on == dt.date(2017, 3, 1)
    assert won.owner.user.name == "Moses Frase"
    assert won.territory.name == "Central"
    assert won.custom_fields == {}


def test_lost_deal_values(org):
    run_import(org)

    lost = deal(org, "LOST0001")
    assert lost.status == "lost"
    assert lost.amount == Decimal("0.00")
    assert lost.closed_at == noon(2017, 3, 15)
    assert lost.expected_close_on == dt.date(2017, 3, 15)
    assert lost.account.name == "Codehow"


def test_open_deal_uses_list_price(org):
    run_import(org)

    engaging = deal(org, "ENG00001")
    assert engaging.status == "open"
    assert engaging.stage.name == "Engaging"
    assert engaging.amount == Decimal("55.00")
    assert engaging.base_amount == Decimal("55.00")
    assert engaging.custom_fields == {"amount_source": "list_price"}
    assert engaging.created_at == noon(2017, 6, 10)
    assert engaging.closed_at is None
    assert engaging.expected_close_on is None


def test_prospecting_dated_at_export_end(org):
    run_import(org)

    prospecting = deal(org, "PRO00001")
    # The latest date in the small file is ENG00002's engage date, 2017-07-01.
    assert prospecting.created_at == noon(2017, 7, 1)
    assert prospecting.stage.name == "Prospecting"
    assert prospecting.status == "open"
    assert prospecting.amount == Decimal("550.00")
    assert history(org, "PRO00001") == [(None, "Prospecting", noon(2017, 7, 1), True)]


def test_gtxpro_maps_to_gtx_pro(org):
    run_import(org)

    with scope(organization=org):
        assert Deal.objects.filter(product__name="GTX Pro").count() == 3
        assert Product.objects.filter(name="GTXPro").exists() is False
    assert deal(org, "WON00002").name == "GTX Pro · Acme Corporation"


def test_blank_account_allowed(org):
    run_import(org)

    no_account = deal(org, "ENG00002")
    assert no_account.account is None
    assert no_account.name == "GTX Pro"
    assert no_account.amount == Decimal("4821.00")


def test_implied_history_of_closed_deal(org):
    run_import(org)

    assert history(org, "WON00001") == [
        (None, "Engaging", noon(2016, 10, 20), True),
        ("Engaging", "Won", noon(2017, 3, 1), True),
    ]
    assert history(org, "LOST0001") == [
        (None, "Engaging", noon(2017, 1, 5), True),
        ("Engaging", "Lost", noon(2017, 3, 15), True),
    ]
    assert history(org, "ENG00001") == [(None, "Engaging", noon(2017, 6, 10), True)]


def test_accounts_and_products_values(org):
    run_import(org)

    with scope(organization=org):
        codehow = Account.objects.select_related("parent").get(external_id="Codehow")
        cancity = Account.objects.get(external_id="Cancity")
        gtx_pro = Product.objects.get(name="GTX Pro")
    assert codehow.parent.name == "Acme Corporation"
    assert codehow.sector == "software"
    assert codehow.year_established == 1998
    assert codehow.annual_revenue_amount == Decimal("2714.90")
    assert codehow.employees == 2641
    assert codehow.country == "United States"
    # Typos in the source are kept as spelled, not corrected.
    assert cancity.country == "Philipines"
    assert cancity.parent_id is None
    assert gtx_pro.series == "GTX"
    assert gtx_pro.list_price_amount == Decimal("4821.00")


def test_default_pipeline_stages(org):
    run_import(org)

    with scope(organization=org):
        pipeline = Pipeline.objects.get()
        stages = list(pipeline.stages.values_list("name", "order", "kind", "probability"))
    assert pipeline.name == "Sales"
    assert pipeline.is_default is True
    assert stages == [
        ("Prospecting", 1, "open", 10),
        ("Engaging", 2, "open", 50),
        ("Won", 3, "won", 100),
        ("Lost", 4, "lost", 0),
    ]


# Re-runs


def test_rerun_changes_nothing(org):
    run_import(org)
    before = table_counts(org)

    result = run_import(org)

    assert counts_of(result) == {
        "people": (0, 0, 6, 0, 0),
        "teams": (0, 0, 2, 0, 0),
        "territories": (0, 0, 2, 0, 0),
        "accounts": (0, 0, 3, 0, 0),
        "products": (0, 0, 3, 0, 0),
        "deals": (0, 0, 6, 0, 0),
        "stage_changes": (0, 0, 9, 0, 0),
    }
    assert table_counts(org) == before


def test_changed_row_updates_only_that_deal(org, export):
    run_import(org, export)
    untouched_before = deal(org, "ENG00002").updated_at
    replace_line(
        export,
        PIPELINE_FILE,
        "ENG00001,Zane Levy,MG Special,Acme Corporation,Engaging,2017-06-10,,",
        "ENG00001,Zane Levy,MG Special,Acme Corporation,Won,2017-06-10,2017-06-20,60",
    )

    result = run_import(org, export)

    assert result.counts["deals"].updated == 1
    assert result.counts["deals"].unchanged == 5
    assert result.counts["deals"].created == 0
    assert result.counts["stage_changes"].deleted == 1
    assert result.counts["stage_changes"].created == 2
    assert result.counts["stage_changes"].unchanged == 8
    changed = deal(org, "ENG00001")
    assert changed.status == "won"
    assert changed.closed_at == noon(2017, 6, 20)
    assert changed.amount == Decimal("60.00")
    assert changed.custom_fields == {}
    assert history(org, "ENG00001") == [
        (None, "Engaging", noon(2017, 6, 10), True),
        ("Engaging", "Won", noon(2017, 6, 20), True),
    ]
    assert deal(org, "ENG00002").updated_at == untouched_before


def test_rewrite_keeps_recorded_moves(org, export):
    run_import(org, export)
    with scope(organization=org):
        won = Deal.objects.get(external_id="WON00001")
        engaging = Stage.objects.get(name="Engaging")
        deal_move_stage(deal=won, to_stage=engaging, changed_at=noon(2017, 8, 1))
    replace_line(
        export,
        PIPELINE_FILE,
        "WON00001,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-01,588",
        "WON00001,Moses Frase,GTX Basic,Cancity,Won,2016-10-20,2017-03-05,588",
    )

    run_import(org, export)

    assert history(org, "WON00001") == [
        (None, "Engaging", noon(2016, 10, 20), True),
        ("Engaging", "Won", noon(2017, 3, 5), True),
        ("Won", "Engaging", noon(2017, 8, 1), False),
    ]
    # The recorded reopening is the latest move, so the deal stays open.
    reopened = deal(org, "WON00001")
    assert reopened.status == "open"
    assert reopened.closed_at is None


def test_earlier_import_resolves_names(org, export):
    run_import(org, export)
    replace_line(export, "accounts.csv", "Cancity,retail,2001,718.62,2448,Philipines,\r\n", "")

    result = run_import(org, export)

    assert result.errors == []
    assert result.counts["accounts"].unchanged == 2
    assert deal(org, "WON00001").account.name == "Cancity"


# Rejected rows

GOOD_ROW_COUNT = 6
BAD_LINE = GOOD_ROW_COUNT + 2


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,,",
            "deal_stage",
            "Closed",
            "unknown stage; expected one of: Prospecting, Engaging, Won, Lost",
        ),
        (
            "BAD00001,Nobody Known,GTX Basic,Cancity,Engaging,2017-01-01,,",
            "sales_agent",
            "Nobody Known",
            "unknown sales agent; add them to sales_teams.csv",
        ),
        (
            "BAD00001,Zane Levy,GTX Ultra,Cancity,Engaging,2017-01-01,,",
            "product",
            "GTX Ultra",
            "unknown product; add it to products.csv",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Initech,Engaging,2017-01-01,,",
            "account",
            "Initech",
            "unknown account; add it to accounts.csv",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Engaging,20 Oct 2016,,",
            "engage_date",
            "20 Oct 2016",
            "invalid date; expected YYYY-MM-DD or DD.MM.YYYY",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Engaging,03/04/2017,,",
            "engage_date",
            "03/04/2017",
            "ambiguous date: it can be day/month or month/day; choose the date order "
            "(DD/MM/YYYY or MM/DD/YYYY) and import again",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-02-30,100",
            "close_date",
            "2017-02-30",
            "invalid date; no such day, so check the day and the month",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-05-01,2017-04-30,100",
            "close_date",
            "2017-04-30",
            "close date is before the engage date 05/01/2017",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-02-01,-5",
            "close_value",
            "-5",
            "negative amount; amounts must be 0 or more",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-02-01,12abc",
            "close_value",
            "12abc",
            "invalid number; expected e.g. 1,234.56 or 1234.56",
        ),
        (
            ",Zane Levy,GTX Basic,Cancity,Engaging,2017-01-01,,",
            "opportunity_id",
            "",
            "missing value",
        ),
        (
            "WON00001,Zane Levy,GTX Basic,Cancity,Engaging,2017-01-01,,",
            "opportunity_id",
            "WON00001",
            "duplicate opportunity_id; first listed on line 2",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,,100",
            "close_date",
            "",
            "missing value",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,Cancity,Won,2017-01-01,2017-02-01,",
            "close_value",
            "",
            "missing value; a won or lost deal needs its close value",
        ),
        (
            "BAD00001,Zane Levy,GTX Basic,,Prospecting,2017-01-01,,",
            "engage_date",
            "2017-01-01",
            "a Prospecting deal must not have an engage date; clear it or fix the stage",
        ),
    ],
)
def test_bad_deal_row_rejected(org, export, row, column, value, reason):
    append_lines(export, PIPELINE_FILE, row)

    result = run_import(org, export)

    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.file_name == PIPELINE_FILE
    assert error.line == BAD_LINE
    assert error.column == column
    assert error.value == value
    assert str(error.reason) == reason
    assert result.counts["deals"].rejected == 1
    assert result.counts["deals"].created == GOOD_ROW_COUNT


def test_duplicate_row_keeps_first(org, export):
    append_lines(export, PIPELINE_FILE, "WON00001,Zane Levy,GTX Basic,Cancity,Engaging,2017-01-01,,")

    run_import(org, export)

    first = deal(org, "WON00001")
    assert first.owner.user.name == "Moses Frase"
    assert first.status == "won"


def test_error_message_names_everything(org, export):
    append_lines(export, PIPELINE_FILE, "BAD00001,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,,")

    result = run_import(org, export)

    assert str(result.errors[0]) == (
        "sales_pipeline.csv line 8, column deal_stage, value 'Closed': "
        "unknown stage; expected one of: Prospecting, Engaging, Won, Lost"
    )


def test_unknown_parent_account_rejected(org, export):
    append_lines(export, "accounts.csv", "Sonron,services,2005,120.50,300,Germany,Nonexistent Holding")

    result = run_import(org, export)

    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.file_name == "accounts.csv"
    assert error.line == 5
    assert error.column == "subsidiary_of"
    assert error.value == "Nonexistent Holding"
    assert str(error.reason) == "unknown parent account; it is neither in this file nor imported before"
    assert result.counts["accounts"].created == 3
    assert result.counts["accounts"].rejected == 1


def test_invalid_account_number_rejected(org, export):
    append_lines(export, "accounts.csv", "Sonron,services,MMV,120.50,300,Germany,")

    result = run_import(org, export)

    error = result.errors[0]
    assert (error.file_name, error.line, error.column, error.value) == ("accounts.csv", 5, "year_established", "MMV")
    assert str(error.reason) == "invalid whole number"


def test_duplicate_agent_rejected(org, export):
    append_lines(export, "sales_teams.csv", "Zane Levy,Dustin Brinkmann,Central")

    result = run_import(org, export)

    error = result.errors[0]
    assert (error.file_name, error.line, error.column, error.value) == ("sales_teams.csv", 6, "sales_agent", "Zane Levy")
    assert str(error.reason) == "duplicate sales agent; first listed on line 4"
    with scope(organization=org):
        assert Membership.objects.get(external_id="Zane Levy").manager.external_id == "Cara Losch"


def test_missing_column_raises(org, export):
    (export / PIPELINE_FILE).write_text("opportunity_id,sales_agent,product,account,deal_stage\r\n")

    with pytest.raises(ImportSourceError) as excinfo:
        run_import(org, export)

    assert str(excinfo.value) == (
        "File sales_pipeline.csv is missing the required column(s): engage_date, close_date, close_value."
    )
    assert table_counts(org)["Membership"] == 0


def test_missing_file_raises(org, export):
    (export / "products.csv").unlink()

    with pytest.raises(ImportSourceError) as excinfo:
        run_import(org, export)

    assert str(excinfo.value) == f"File {export / 'products.csv'} is missing."


# Currencies


def test_amounts_converted_at_close_date_rate(org):
    with scopes_disabled():
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2017, 1, 1), rate=Decimal("0.9"))
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2017, 4, 1), rate=Decimal("0.95"))

    result = run_import(org, currency="USD")

    assert result.errors == []
    won_march = deal(org, "WON00001")
    assert won_march.currency == "USD"
    assert won_march.amount == Decimal("588.00")
    assert won_march.base_amount == Decimal("529.20")
    assert deal(org, "WON00002").base_amount == Decimal("4465.00")
    # Open deals use the rate valid on the import date (TODAY, 2018-01-15).
    assert deal(org, "ENG00001").base_amount == Decimal("52.25")


def test_rate_taken_on_local_close_day(org):
    """East of UTC+12, noon UTC of the close date is the next local day, whose rate applies."""
    with scopes_disabled():
        org.time_zone = "Pacific/Kiritimati"
        org.save(update_fields=["time_zone"])
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2017, 1, 1), rate=Decimal("0.9"))
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2017, 3, 2), rate=Decimal("0.8"))

    result = run_import(org, currency="USD")

    assert result.errors == []
    # WON00001 closes on 01.03.2017: 12:00 UTC is 02.03.2017 02:00 in Kiritimati (UTC+14).
    won_march = deal(org, "WON00001")
    assert won_march.closed_at == noon(2017, 3, 1)
    assert won_march.base_amount == Decimal("470.40")


def test_missing_rate_rejects_row(org):
    with scopes_disabled():
        ExchangeRate.objects.create(organization=org, currency="USD", valid_from=dt.date(2017, 3, 10), rate=Decimal("0.9"))

    result = run_import(org, currency="USD")

    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.line, error.column, error.value) == (2, "close_value", "588")
    assert str(error.reason) == (
        "no exchange rate for USD valid on 03/01/2017; add a rate for USD valid from that date or earlier"
    )
    assert result.counts["deals"].created == 5


def test_invalid_currency_raises(org):
    with pytest.raises(ImportSourceError):
        run_import(org, currency="US")


# Audit log and KPI recompute


def test_audit_log_records_counts(org):
    run_import(org)

    with scope(organization=org):
        entry = AuditLog.objects.get(action="import.finished")
    assert entry.object_type == "import"
    assert entry.after["source"] == "maven"
    assert entry.after["path"] == str(SMALL_EXPORT)
    assert entry.after["counts"]["deals"] == {"created": 6, "updated": 0, "unchanged": 0, "deleted": 0, "rejected": 0}
    assert entry.after["rejected_rows"] == 0


def test_recompute_scheduled_after_commit(org, django_capture_on_commit_callbacks):
    with mock.patch("dashboards.tasks.kpi_snapshot_recompute") as task:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            run_import(org)

    assert len(callbacks) == 1
    task.delay.assert_called_once_with(organization_id=org.pk)


def test_unchanged_rerun_schedules_nothing(org, django_capture_on_commit_callbacks):
    run_import(org)

    with django_capture_on_commit_callbacks() as callbacks:
        run_import(org)

    assert callbacks == []


def test_eager_recompute_builds_snapshots(org, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run_import(org)

    with scope(organization=org):
        year = KpiSnapshot.objects.get(grain="organization", period_kind="year", period_start=dt.date(2017, 1, 1))
    assert year.won_count == 2
    assert year.won_amount == Decimal("5288.00")
    assert year.lost_count == 1


# The management command


def call_import(*args, **options):
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_crm", *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def test_command_creates_organization(db):
    call_import(str(SMALL_EXPORT), org="demo-org", source="maven", currency="usd", create=True)

    organization = Organization.objects.get(slug="demo-org")
    assert organization.name == "Demo Org"
    assert organization.currency == "USD"
    assert organization.language == "de"
    assert organization.time_zone == "Europe/Berlin"
    assert organization.fiscal_year_start_month == 1
    with scope(organization=organization):
        assert Deal.objects.count() == 6
        assert Deal.objects.filter(currency="USD").count() == 6


def test_command_prints_summary(org):
    stdout, stderr = call_import(str(SMALL_EXPORT), org="acme", source="maven", language="en")

    lines = stdout.splitlines()
    assert lines[0].startswith(f"Imported {SMALL_EXPORT} (Maven CRM sample) into Acme in ")
    assert lines[1].split() == ["created", "updated", "unchanged", "deleted", "rejected"]
    assert lines[2].split() == ["people", "6", "0", "0", "0", "0"]
    assert lines[7].split() == ["deals", "6", "0", "0", "0", "0"]
    assert lines[8].split() == ["stage", "changes", "9", "0", "0", "0", "0"]
    assert stderr == ""


def test_command_summary_in_german(org):
    stdout, _stderr = call_import(str(SMALL_EXPORT), org="acme", source="maven", language="de")

    first = stdout.splitlines()[0]
    assert first.startswith(f"{SMALL_EXPORT} (Maven-CRM-Beispieldaten) in ")
    assert re.search(r" in \d+,\d s nach Acme", first), first


def test_command_unknown_organization_fails(db):
    with pytest.raises(CommandError) as excinfo:
        call_import(str(SMALL_EXPORT), org="nobody", source="maven", language="en")

    assert str(excinfo.value) == "Organization nobody not found; check the slug or pass --create to create it."
    assert Organization.objects.filter(slug="nobody").exists() is False


def test_command_rejected_rows_exit_one(org, export):
    append_lines(export, PIPELINE_FILE, "BAD00001,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,,")
    stderr = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_crm", str(export), org="acme", source="maven", language="en", stdout=io.StringIO(), stderr=stderr)

    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == "1 row was rejected; the accepted rows were imported."
    assert "sales_pipeline.csv line 8, column deal_stage, value 'Closed'" in stderr.getvalue()
    with scope(organization=org):
        assert Deal.objects.count() == 6


def test_command_line_rejected_rows_without_class_name(org, export, capsys, monkeypatch):
    from pipelines.management.commands.import_crm import Command

    append_lines(export, PIPELINE_FILE, "BAD00001,Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,,")
    # run_from_argv closes the connections at its end, which would end the test's transaction.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    argv = ["manage.py", "import_crm", str(export), "--org", "acme", "--source", "maven", "--language", "de"]

    with pytest.raises(SystemExit) as excinfo:
        Command().run_from_argv(argv)

    stderr_lines = capsys.readouterr().err.splitlines()
    assert excinfo.value.code == 1
    assert stderr_lines[-1] == "1 Zeile wurde abgelehnt; die übrigen Zeilen wurden importiert."
    assert not any("CommandError" in line for line in stderr_lines)
    with scope(organization=org):
        assert Deal.objects.count() == 6


def test_command_caps_printed_errors(org, export):
    append_lines(export, PIPELINE_FILE, *(f"BAD{n:05d},Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,," for n in range(55)))
    stderr = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_crm", str(export), org="acme", source="maven", language="en", stdout=io.StringIO(), stderr=stderr)

    lines = stderr.getvalue().splitlines()
    assert len(lines) == 51
    assert lines[-1] == "… and 5 more rejected rows."


@pytest.mark.parametrize(
    ("language", "rejected", "hidden"),
    [
        ("en", "1,235 rows were rejected; the accepted rows were imported.", "… and 1,185 more rejected rows."),
        ("de", "1.235 Zeilen wurden abgelehnt; die übrigen Zeilen wurden importiert.", "… und 1.185 weitere abgelehnte Zeilen."),
    ],
)
def test_command_rejected_counts_grouped(org, export, language, rejected, hidden):
    append_lines(export, PIPELINE_FILE, *(f"BAD{n:05d},Zane Levy,GTX Basic,Cancity,Closed,2017-01-01,," for n in range(1235)))
    stderr = io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command(
            "import_crm", str(export), org="acme", source="maven", language=language, stdout=io.StringIO(), stderr=stderr
        )

    assert str(excinfo.value) == rejected
    assert stderr.getvalue().splitlines()[-1] == hidden


def test_command_missing_column_fails(org, export):
    (export / "products.csv").write_text("name,series\r\nGTX Basic,GTX\r\n")

    with pytest.raises(CommandError) as excinfo:
        call_import(str(export), org="acme", source="maven", language="en")

    assert str(excinfo.value) == "File products.csv is missing the required column(s): product."
    assert excinfo.value.returncode == 1
    with scope(organization=org):
        assert Membership.objects.count() == 0


def test_command_failed_create_rolls_back(db, export):
    (export / "accounts.csv").unlink()

    with pytest.raises(CommandError):
        call_import(str(export), org="fresh", source="maven", create=True, language="en")

    assert Organization.objects.filter(slug="fresh").exists() is False


# The real Maven data set


def test_real_export_counts(db):
    call_import(str(REAL_EXPORT), org="demo", source="maven", currency="USD", create=True)

    organization = Organization.objects.get(slug="demo")
    with scope(organization=organization):
        assert Deal.objects.count() == 8800
        assert Deal.objects.filter(status="won").count() == 4238
        assert Deal.objects.filter(status="lost").count() == 2473
        assert Deal.objects.filter(status="open").count() == 2089
        assert Deal.objects.filter(status="won", closed_at__isnull=True).count() == 0
        assert Membership.objects.filter(role=Role.REP).count() == 35
        assert Membership.objects.filter(role=Role.MANAGER).count() == 6
        assert Membership.objects.filter(role=Role.REP, deals__isnull=True).count() == 5
        assert Territory.objects.count() == 3
        assert Team.objects.count() == 6
        assert Account.objects.count() == 85
        assert Account.objects.filter(parent__isnull=False).count() == 15
        assert Product.objects.count() == 7
        # 8,300 entries into the first stage of Engaging/Won/Lost rows, 6,711 closes, 500 Prospecting entries.
        assert DealStageChange.objects.count() == 15511
        assert Deal.objects.filter(product__name="GTX Pro").count() == 1480
        assert Deal.objects.filter(account__isnull=True).count() == 1425
        engaging_list_price = Deal.objects.filter(stage__name="Engaging").aggregate(total=Sum("amount"))["total"]
        assert engaging_list_price == Decimal("3892229.00")
        won_amount = Deal.objects.filter(status="won").aggregate(total=Sum("base_amount"))["total"]
        assert won_amount == Decimal("10005534.00")
