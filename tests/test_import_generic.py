"""Generic CSV/XLSX import through a column mapping."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation
from django_scopes import scope
from openpyxl import Workbook

from pipelines.importers.base import ImportSourceError
from pipelines.importers.generic import mapping_suggest
from pipelines.models import Deal, DealStageChange, DealStatus
from pipelines.services import crm_import

MAPPING = {
    "external_id": "Nr",
    "owner": "Verkäufer",
    "created_at": "Angelegt",
    "name": "Kunde",
    "stage": "Phase",
    "status": "Status",
    "amount": "Betrag",
    "closed_at": "Abschluss",
}
CSV = (
    "Nr;Kunde;Verkäufer;Angelegt;Phase;Status;Betrag;Abschluss\n"
    "A-1;Müller GmbH;Eva Roth;03.02.2025;Angebot;gewonnen;1.000,50 €;10.03.2025\n"
    "A-2;=HYPERLINK(\"x\");eva.roth@acme.example;04.02.2025;Angebot;offen;200;\n"
    "A-3;Wolf;Eva Roth;05.02.2025;Angebot;verloren;;\n"
)


def run_import(org, folder, mapping=MAPPING, **options):
    with scope(organization=org):
        return crm_import(
            organization=org, source="generic", path=folder, today=dt.date(2025, 4, 1), options={"mapping": mapping, **options}
        )


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "generic"
    path.mkdir()
    (path / "deals.csv").write_bytes(CSV.encode("cp1252"))
    return path


def test_generic_csv_with_mapping(org, folder):
    result = run_import(org, folder)
    assert result.counts["deals"].created == 2
    assert result.counts["deals"].rejected == 1
    assert result.errors[0].line == 4
    assert "close date" in str(result.errors[0].reason)
    with scope(organization=org):
        won = Deal.objects.select_related("stage").get(external_id="A-1")
        formula = Deal.objects.get(external_id="A-2")
        moves = list(DealStageChange.objects.filter(deal=won).order_by("changed_at").values_list("to_stage__name", flat=True))
    assert won.status == DealStatus.WON
    assert won.amount == Decimal("1000.50")
    assert won.closed_at == dt.datetime(2025, 3, 10, 12, tzinfo=dt.timezone.utc)
    assert moves == ["Angebot", "Won"]
    # The formula stays text in a text field; it is never evaluated.
    assert formula.name == '=HYPERLINK("x")'
    assert formula.status == DealStatus.OPEN


def test_owner_by_name_and_email_is_one_person(org, folder):
    run_import(org, folder)
    with scope(organization=org):
        owners = set(Deal.objects.values_list("owner_id", flat=True))
    assert len(owners) == 1


def test_mapping_needs_required_fields(org, folder):
    with pytest.raises(ImportSourceError, match="Owner"):
        run_import(org, folder, mapping={"external_id": "Nr", "created_at": "Angelegt"})


def test_mapping_to_unknown_column(org, folder):
    with pytest.raises(ImportSourceError, match="Seller"):
        run_import(org, folder, mapping={**MAPPING, "owner": "Seller"})


def test_generic_xlsx(org, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ID", "Owner", "Created", "Amount"])
    sheet.append(["X-1", "Eva Roth", dt.datetime(2025, 2, 3, 9, 30), 1234.5])
    sheet.append(["X-2", "Eva Roth", "2025-02-04", "=B2*2"])
    folder = tmp_path / "xlsx"
    folder.mkdir()
    workbook.save(folder / "deals.xlsx")
    result = run_import(org, folder, mapping={"external_id": "ID", "owner": "Owner", "created_at": "Created", "amount": "Amount"})
    assert result.counts["deals"].created == 1
    assert result.errors[0].column == "Amount"
    assert "formula" in str(result.errors[0].reason)
    with scope(organization=org):
        deal = Deal.objects.get(external_id="X-1")
    assert deal.amount == Decimal("1234.50")
    # 09:30 in Berlin winter time.
    assert deal.created_at == dt.datetime(2025, 2, 3, 8, 30, tzinfo=dt.timezone.utc)


def test_won_row_without_mapped_close_date_names_the_unmapped_field(org, folder):
    mapping = {field: column for field, column in MAPPING.items() if field != "closed_at"}
    result = run_import(org, folder, mapping=mapping)
    error = result.errors[0]
    assert error.line == 2
    assert str(error.column) == "Closed on (not mapped)"
    assert error.value == ""
    assert "map the column that contains it to the field “Closed on”" in str(error.reason)


def test_won_row_without_mapped_close_date_reads_in_german(org, folder):
    mapping = {field: column for field, column in MAPPING.items() if field != "closed_at"}
    with translation.override("de"):
        result = run_import(org, folder, mapping=mapping)
        message = str(result.errors[0])
    assert message.startswith("deals.csv Zeile 2, Spalte Abgeschlossen am (nicht zugeordnet), Wert '': ")
    assert "Status" not in message
    assert "ordnen Sie also die Spalte, die es enthält, dem Feld „Abgeschlossen am“ zu" in message


def test_lost_row_with_empty_close_date_names_the_mapped_column(org, folder):
    result = run_import(org, folder)
    error = result.errors[0]
    assert error.line == 4
    assert error.column == "Abschluss"
    assert error.value == ""
    assert "fill in this cell" in str(error.reason)


def test_reimport_counts_snapshot_moves_unchanged(org, folder):
    first = run_import(org, folder)
    second = run_import(org, folder)

    # A-1 entered "Angebot" and was won, A-2 is open in "Angebot": three moves in all.
    assert first.counts["stage_changes"].created == 3
    assert second.counts["stage_changes"].created == 0
    assert second.counts["stage_changes"].unchanged == 3
    assert second.counts["stage_changes"].deleted == 0
    assert second.counts["deals"].unchanged == 2


def test_reimport_counts_open_deals_moves_unchanged(org, tmp_path):
    path = tmp_path / "open"
    path.mkdir()
    rows = "".join(f"N-{number};Eva Roth;0{number}.05.2017\n" for number in range(1, 7))
    (path / "deals.csv").write_text("Nr;Verkäufer;Angelegt\n" + rows, encoding="utf-8")
    mapping = {"external_id": "Nr", "owner": "Verkäufer", "created_at": "Angelegt"}

    first = run_import(org, path, mapping=mapping)
    second = run_import(org, path, mapping=mapping)

    assert first.counts["stage_changes"].created == 6
    assert second.counts["stage_changes"].created == 0
    assert second.counts["stage_changes"].unchanged == 6


def test_reimport_after_stage_change_counts_created_and_unchanged(org, folder):
    run_import(org, folder)
    moved = CSV.replace("04.02.2025;Angebot;offen", "04.02.2025;Vertrag;offen")
    (folder / "deals.csv").write_bytes(moved.encode("cp1252"))

    result = run_import(org, folder)

    assert result.counts["stage_changes"].created == 1
    assert result.counts["stage_changes"].unchanged == 3


def test_mapping_suggests_german_and_english_headers():
    columns = ["Deal-ID", "Besitzer", "Erstellt am", "Betrag", "Phase", "Status", "Notiz", "Währung", "Close date"]

    suggested = mapping_suggest(columns)

    assert suggested == {
        "external_id": "Deal-ID",
        "owner": "Besitzer",
        "created_at": "Erstellt am",
        "stage": "Phase",
        "status": "Status",
        "amount": "Betrag",
        "currency": "Währung",
        "closed_at": "Close date",
    }


def test_mapping_suggests_each_column_once():
    assert mapping_suggest(["Name", "name"]) == {"name": "Name"}
