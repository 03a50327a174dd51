"""spm.exports: formula escaping in CSV and XLSX, numbers as numbers, translated headers."""

import io
from decimal import Decimal

from django.utils import translation
from django.utils.translation import gettext_lazy
from openpyxl import load_workbook

from spm.exports import INTEGER, MONEY, PERCENT, Column, Table, cell_escape, csv_response, xlsx_workbook_bytes


def sample_table() -> Table:
    return Table(
        name="funnel 2017/Q2",
        columns=[Column("Stage"), Column("Deals", INTEGER), Column("Amount", MONEY), Column("Rate", PERCENT)],
        rows=[
            ["=cmd|' /C calc'!A0", 3, Decimal("1234.50"), Decimal("0.375")],
            ["+SUM(A1)", -2, Decimal("-10.00"), None],
            ["@x", 0, Decimal("0"), Decimal("1")],
            ["-1", 1, Decimal("1"), Decimal("0")],
            ["\tTab", 1, Decimal("1"), Decimal("0")],
            ["Plain", 1, Decimal("1"), Decimal("0")],
        ],
    )


def csv_text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8")


def test_cell_escape_prefixes_formula_starts():
    assert cell_escape("=1+1") == "'=1+1"
    assert cell_escape("+1") == "'+1"
    assert cell_escape("-1") == "'-1"
    assert cell_escape("@SUM") == "'@SUM"
    assert cell_escape("\t1") == "'\t1"
    assert cell_escape("\r1") == "'\r1"
    assert cell_escape("Lead") == "Lead"


def test_csv_escapes_formula_cells():
    lines = csv_text(csv_response(sample_table())).lstrip("\ufeff").splitlines()

    assert lines[0] == "Stage,Deals,Amount,Rate"
    assert lines[1] == "'=cmd|' /C calc'!A0,3,1234.50,0.3750"
    assert lines[2] == "'+SUM(A1),-2,-10.00,"
    assert lines[3] == "'@x,0,0.00,1.0000"
    assert lines[4] == "'-1,1,1.00,0.0000"
    assert lines[5] == "'\tTab,1,1.00,0.0000"
    assert lines[6] == "Plain,1,1.00,0.0000"


def test_csv_response_is_an_attachment():
    response = csv_response(sample_table())

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="funnel-2017-Q2.csv"'


def test_xlsx_escapes_formula_cells_and_keeps_numbers():
    workbook = load_workbook(io.BytesIO(xlsx_workbook_bytes(sample_table())))
    sheet = workbook.active

    assert sheet["A2"].value == "'=cmd|' /C calc'!A0"
    assert sheet["A2"].data_type == "s"
    assert sheet["A3"].value == "'+SUM(A1)"
    assert sheet["B2"].value == 3
    assert sheet["C2"].value == 1234.5
    assert sheet["C2"].number_format == "#,##0.00"
    assert sheet["B3"].value == -2
    assert sheet["D2"].value == 0.375
    assert sheet["D2"].number_format == "0.0%"
    assert sheet["D3"].value is None


def test_headers_follow_active_language():
    # Django's own German catalog translates "Yes" as "Ja".
    table = Table(name="t", columns=[Column(gettext_lazy("Yes"))], rows=[])

    with translation.override("de"):
        german = csv_text(csv_response(table))
    with translation.override("en"):
        english = csv_text(csv_response(table))

    assert german == "\ufeffJa\r\n"
    assert english == "\ufeffYes\r\n"
