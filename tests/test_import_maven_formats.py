"""Maven export files as German Excel saves them: semicolons, decimal comma, dd.mm.yyyy, Windows-1252, BOM."""

import csv
import datetime as dt
import io
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from django_scopes import scope

from pipelines.models import Account, Deal, DealStageChange, Product
from pipelines.services import crm_import

SMALL_EXPORT = Path(__file__).parent / "data" / "maven_small"
TODAY = dt.date(2018, 1, 15)
PIPELINE_FILE = "sales_pipeline.csv"
MONEY_COLUMNS = {"revenue", "sales_price", "close_value"}
DATE_COLUMNS = {"engage_date", "close_date"}
NBSP = "\u00a0"
AMBIGUOUS_REASON = (
    "ambiguous date: it can be day/month or month/day; choose the date order (DD/MM/YYYY or MM/DD/YYYY) and import again"
)


def run_import(org, path, **options):
    with scope(organization=org):
        return crm_import(organization=org, source="maven", path=path, today=TODAY, options=options)


def german_money(text: str) -> str:
    """Write `1100.04` as Excel does in German: `1.100,04 €` with a non-breaking space before the sign."""
    if not text:
        return text
    whole, _dot, cents = Decimal(text).quantize(Decimal("0.01")).to_eng_string().partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    return f"{'.'.join(groups)},{cents}{NBSP}€"


def german_date(text: str) -> str:
    return dt.date.fromisoformat(text).strftime("%d.%m.%Y") if text else text


def german_copy(source: Path, target: Path) -> None:
    """Write every file of `source` to `target` as semicolon CSV in Windows-1252 with German numbers and dates."""
    target.mkdir()
    for path in source.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = list(rows[0].keys())
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            cells = []
            for column in header:
                value = row[column]
                if column in MONEY_COLUMNS:
                    value = german_money(value)
                elif column in DATE_COLUMNS:
                    value = german_date(value)
                cells.append(value)
            writer.writerow(cells)
        (target / path.name).write_bytes(buffer.getvalue().encode("cp1252"))


def deal_snapshot(org) -> dict[str, tuple]:
    with scope(organization=org):
        deals = Deal.objects.select_related("owner", "stage", "product", "account")
        return {
            deal.external_id: (
                deal.name,
                deal.owner.external_id,
                deal.stage.name,
                deal.status,
                deal.amount,
                deal.base_amount,
                deal.created_at,
                deal.expected_close_on,
                deal.closed_at,
                deal.custom_fields,
            )
            for deal in deals
        }


def reference_snapshot(org) -> dict[str, object]:
    with scope(organization=org):
        return {
            "accounts": sorted(
                Account.objects.values_list("name", "annual_revenue_amount", "employees", "year_established")
            ),
            "products": sorted(Product.objects.values_list("name", "list_price_amount")),
            "moves": sorted(
                DealStageChange.objects.values_list("deal__external_id", "to_stage__name", "changed_at")
            ),
        }


@pytest.fixture
def german_export(tmp_path) -> Path:
    target = tmp_path / "german"
    german_copy(SMALL_EXPORT, target)
    return target


@pytest.fixture
def export(tmp_path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(SMALL_EXPORT, target)
    return target


def test_german_copy_is_semicolon_cp1252(german_export):
    data = (german_export / "accounts.csv").read_bytes()

    assert b"Acme Corporation;technolgy;1996;1.100,04\xa0\x80;2822" in data
    assert b"2016-10-20" not in (german_export / PIPELINE_FILE).read_bytes()
    assert b"20.10.2016" in (german_export / PIPELINE_FILE).read_bytes()


def test_german_copy_matches_original(org, other_org, german_export):
    original = run_import(org, SMALL_EXPORT)
    german = run_import(other_org, german_export)

    assert german.errors == []
    assert german.counts["deals"].created == original.counts["deals"].created
    assert deal_snapshot(other_org) == deal_snapshot(org)
    assert reference_snapshot(other_org) == reference_snapshot(org)


def test_german_copy_values_by_hand(org, german_export):
    run_import(org, german_export)

    deals = deal_snapshot(org)
    won = deals["WON00001"]
    assert won[4] == Decimal("588.00")
    assert won[6] == dt.datetime(2016, 10, 20, 12, 0, tzinfo=dt.timezone.utc)
    assert won[7] == dt.date(2017, 3, 1)
    with scope(organization=org):
        acme = Account.objects.get(name="Acme Corporation")
    assert acme.annual_revenue_amount == Decimal("1100.04")
    assert acme.employees == 2822


def test_german_copy_after_original_unchanged(org, german_export):
    run_import(org, SMALL_EXPORT)
    before = deal_snapshot(org)

    result = run_import(org, german_export)

    assert result.errors == []
    assert result.has_changes is False
    assert result.counts["deals"].unchanged == len(before)
    assert deal_snapshot(org) == before


def test_german_copy_rerun_changes_nothing(org, german_export):
    run_import(org, german_export)

    result = run_import(org, german_export)

    assert result.has_changes is False


def test_byte_order_mark_file_imports(org, other_org, export):
    path = export / PIPELINE_FILE
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    result = run_import(org, export)
    run_import(other_org, SMALL_EXPORT)

    assert result.errors == []
    assert deal_snapshot(org) == deal_snapshot(other_org)


def append_german_row(folder: Path, line: str) -> None:
    with (folder / PIPELINE_FILE).open("ab") as handle:
        handle.write(f"{line}\r\n".encode("cp1252"))


def test_ambiguous_date_rejected(org, german_export):
    append_german_row(german_export, "BAD00001;Zane Levy;GTX Basic;Cancity;Engaging;03/04/2017;;")

    result = run_import(org, german_export)

    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.file_name == PIPELINE_FILE
    assert error.line == 8
    assert error.column == "engage_date"
    assert error.value == "03/04/2017"
    assert str(error.reason) == AMBIGUOUS_REASON


def test_ambiguous_date_with_date_order(org, german_export):
    append_german_row(german_export, "BAD00001;Zane Levy;GTX Basic;Cancity;Engaging;03/04/2017;;")

    result = run_import(org, german_export, date_order="mdy")

    assert result.errors == []
    assert deal_snapshot(org)["BAD00001"][6] == dt.datetime(2017, 3, 4, 12, 0, tzinfo=dt.timezone.utc)


def test_formula_text_cell_stays_text(org, german_export):
    append_german_row(german_export, "=1+1;Zane Levy;GTX Basic;Cancity;Won;01.02.2017;01.03.2017;1.234,50\xa0€")

    result = run_import(org, german_export)

    assert result.errors == []
    formula_deal = deal_snapshot(org)["=1+1"]
    assert formula_deal[0] == "GTX Basic · Cancity"
    assert formula_deal[4] == Decimal("1234.50")


def test_formula_amount_cell_rejected(org, german_export):
    append_german_row(german_export, "BAD00001;Zane Levy;GTX Basic;Cancity;Won;01.02.2017;01.03.2017;=SUM(A1:A2)")

    result = run_import(org, german_export)

    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.file_name, error.line, error.column) == (PIPELINE_FILE, 8, "close_value")
    assert error.value == "=SUM(A1:A2)"
    assert str(error.reason) == "formula cells are not evaluated; enter the number itself"


def test_german_thousands_whole_number(org, german_export):
    with (german_export / "accounts.csv").open("ab") as handle:
        handle.write("Sonron;services;2005;120,50\xa0€;1.300;Deutschland;\r\n".encode("cp1252"))

    result = run_import(org, german_export)

    assert result.errors == []
    with scope(organization=org):
        sonron = Account.objects.get(name="Sonron")
    assert sonron.employees == 1300
    assert sonron.annual_revenue_amount == Decimal("120.50")
