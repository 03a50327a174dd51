"""Reading German Excel and CRM files: encodings, separators, numbers, dates and formula cells."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from openpyxl import Workbook

from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.importers.formats import (
    csv_safe_cell,
    parse_day,
    parse_decimal,
    parse_moment,
    parse_money,
    parse_percent,
    table_read,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def test_utf8_bom_header_is_clean(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes("\ufeffName,Betrag\nMüller,10\n".encode("utf-8"))
    table = table_read(path)
    assert table.header == ["Name", "Betrag"]
    assert table.encoding == "utf-8-sig"
    assert table.rows == [(2, {"Name": "Müller", "Betrag": "10"})]


def test_cp1252_file_with_semicolons(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes("Kunde;Betrag\nGroß & Söhne;1.234,56 €\n".encode("cp1252"))
    table = table_read(path)
    assert table.encoding == "cp1252"
    assert table.delimiter == ";"
    assert table.rows[0][1]["Kunde"] == "Groß & Söhne"
    assert parse_money(table.rows[0][1]["Betrag"], "Betrag") == Decimal("1234.56")


def test_quoted_semicolon_does_not_split(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text('Name;Note\n"A; B";x\n', encoding="utf-8")
    assert table_read(path).rows[0][1] == {"Name": "A; B", "Note": "x"}


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ImportSourceError, match="missing"):
        table_read(tmp_path / "nothing.csv")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.234,56", Decimal("1234.56")),
        ("1.234,56\u00a0€", Decimal("1234.56")),
        ("€ 1.234.567,8", Decimal("1234567.8")),
        ("1234,5", Decimal("1234.5")),
        ("1,234.56", Decimal("1234.56")),
        ("1234.56", Decimal("1234.56")),
        ("1.234", Decimal("1234")),
        ("EUR 99", Decimal("99")),
        ("-5,5", Decimal("-5.5")),
    ],
)
def test_number_styles(text, expected):
    assert parse_decimal(text, "Betrag") == expected


@pytest.mark.parametrize("text", ["1.23.4", "abc", "1,2,3", "12 34,5x"])
def test_invalid_number_rejected(text):
    with pytest.raises(RowRejected, match="invalid number"):
        parse_decimal(text, "Betrag")


@pytest.mark.parametrize("text", ["=1+2", "+49", "@SUM(A1)", "=HYPERLINK(\"http://x\")"])
def test_formula_cell_is_not_a_number(text):
    with pytest.raises(RowRejected, match="formula"):
        parse_money(text, "Betrag")


def test_negative_amount_rejected():
    with pytest.raises(RowRejected, match="negative"):
        parse_money("-1,00", "Betrag")


def test_money_rounds_half_up():
    assert parse_money("0,005", "Betrag") == Decimal("0.01")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-04-03", dt.date(2025, 4, 3)),
        ("03.04.2025", dt.date(2025, 4, 3)),
        ("3.4.2025", dt.date(2025, 4, 3)),
        ("13/04/2025", dt.date(2025, 4, 13)),
        ("04/13/2025", dt.date(2025, 4, 13)),
        ("05/05/2025", dt.date(2025, 5, 5)),
    ],
)
def test_unambiguous_dates(text, expected):
    assert parse_day(text, "Datum") == expected


def test_ambiguous_date_asks_for_format():
    with pytest.raises(RowRejected) as caught:
        parse_day("03/04/2025", "Datum")
    assert "ambiguous" in str(caught.value.reason)
    assert "DD/MM/YYYY or MM/DD/YYYY" in str(caught.value.reason)


def test_date_order_resolves_ambiguity():
    assert parse_day("03/04/2025", "Datum", date_order="dmy") == dt.date(2025, 4, 3)
    assert parse_day("03/04/2025", "Datum", date_order="mdy") == dt.date(2025, 3, 4)


def test_impossible_date_rejected():
    with pytest.raises(RowRejected, match="no such day"):
        parse_day("31.02.2025", "Datum")


def test_naive_time_is_organization_local():
    # 2024-07-01 10:00 in Berlin is summer time, UTC+2.
    moment = parse_moment("2024-07-01 10:00:00", "change_time", time_zone=BERLIN)
    assert moment == dt.datetime(2024, 7, 1, 8, 0, tzinfo=dt.timezone.utc)


def test_winter_time_and_t_separator():
    moment = parse_moment("2024-01-09T21:32:09", "add_time", time_zone=BERLIN)
    assert moment == dt.datetime(2024, 1, 9, 20, 32, 9, tzinfo=dt.timezone.utc)


def test_german_date_with_time():
    moment = parse_moment("03.04.2025 14:30", "Create Date", time_zone=BERLIN)
    assert moment == dt.datetime(2025, 4, 3, 12, 30, tzinfo=dt.timezone.utc)


def test_explicit_offset_wins_over_time_zone():
    moment = parse_moment("2025-04-03T10:00:00Z", "CreatedDate", time_zone=BERLIN)
    assert moment == dt.datetime(2025, 4, 3, 10, 0, tzinfo=dt.timezone.utc)
    moment = parse_moment("2025-04-03T10:00:00+0100", "CreatedDate", time_zone=BERLIN)
    assert moment == dt.datetime(2025, 4, 3, 9, 0, tzinfo=dt.timezone.utc)


def test_date_only_is_noon_utc():
    assert parse_moment("03.04.2025", "Close Date", time_zone=BERLIN) == dt.datetime(
        2025, 4, 3, 12, 0, tzinfo=dt.timezone.utc
    )


@pytest.mark.parametrize("text, expected", [("40", 40), ("40 %", 40), ("0,25", 25), ("100", 100)])
def test_percent(text, expected):
    assert parse_percent(text, "Probability") == expected


def test_xlsx_formula_read_as_text(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["ID", "Name", "Betrag"])
    sheet.append([1, "=1+1", 1234.5])
    sheet.append([2, "Plain", "=A2*1000"])
    path = tmp_path / "deals.xlsx"
    workbook.save(path)
    table = table_read(path)
    assert table.rows[0][1] == {"ID": "1", "Name": "=1+1", "Betrag": "1234.5"}
    assert table.rows[1][1]["Betrag"] == "=A2*1000"
    with pytest.raises(RowRejected, match="formula"):
        parse_money(table.rows[1][1]["Betrag"], "Betrag")


@pytest.mark.parametrize("text", ["=cmd", "+1", "-1", "@x", "\tx", "\rx"])
def test_csv_safe_cell_escapes_formulas(text):
    assert csv_safe_cell(text) == "'" + text


def test_csv_safe_cell_keeps_text():
    assert csv_safe_cell("Müller GmbH") == "Müller GmbH"


def test_random_bytes_as_xlsx_rejected(tmp_path):
    path = tmp_path / "deals.xlsx"
    path.write_bytes(b"\x00\x01not a zip archive\xff" * 20)

    with pytest.raises(ImportSourceError) as excinfo:
        table_read(path)

    assert "deals.xlsx is not a readable XLSX workbook" in str(excinfo.value)


def test_bom_invalid_utf8_fallback():
    """A byte order mark does not force UTF-8: the rest is read as Windows-1252 like a file without it."""
    from pipelines.importers.formats import bytes_decode

    assert bytes_decode(b"\xef\xbb\xbfGr\xfc\xdfe", "p.csv") == ("Grüße", "cp1252")
    assert bytes_decode("\ufeffGrüße".encode(), "p.csv") == ("Grüße", "utf-8-sig")
