"""XLSX number cells above 2**53 have lost digits, so they fail the file with a hint to store them as text."""

import pytest
from openpyxl import Workbook

from pipelines.importers.base import ImportSourceError
from pipelines.importers.formats import table_read
from tests.import_helpers import run_file_import

EXPECTED = (
    "File deals.xlsx, sheet Deals, line 3, column Record ID: the number 123456789012345696 has more digits than "
    "Excel stores exactly, so its last digits are lost. Format the column as text in Excel, enter the values again "
    "(or paste them from the CRM's export), and import the file again."
)


def workbook_save(path, rows):
    workbook = Workbook()
    workbook.active.title = "Deals"
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def test_float_id_beyond_2_53_fails(tmp_path):
    # Excel writes an 18-digit number as a double: 1.234567890123457E+17.
    path = workbook_save(
        tmp_path / "deals.xlsx",
        [["Record ID", "Amount"], [601, 5.0], [123456789012345678.0, 7.0]],
    )

    with pytest.raises(ImportSourceError) as raised:
        table_read(path)

    assert str(raised.value) == EXPECTED


def test_exact_numbers_kept(tmp_path):
    path = workbook_save(
        tmp_path / "deals.xlsx",
        [["Record ID", "Amount"], [9007199254740991, 5.0], ["123456789012345678", 7.5]],
    )

    table = table_read(path)

    assert table.rows == [
        (2, {"Record ID": "9007199254740991", "Amount": "5"}),
        (3, {"Record ID": "123456789012345678", "Amount": "7.5"}),
    ]


def test_hubspot_workbook_with_float_id_fails(org, tmp_path):
    folder = tmp_path / "hs"
    folder.mkdir()
    workbook_save(
        folder / "deals.xlsx",
        [
            ["Record ID", "Deal Stage", "Deal owner", "Create Date"],
            ["601", "Closed Won", "Eva Roth", "2025-01-10"],
            [123456789012345678.0, "Closed Won", "Eva Roth", "2025-01-10"],
        ],
    )

    with pytest.raises(ImportSourceError) as raised:
        run_file_import(org, "hubspot", folder)

    assert str(raised.value) == EXPECTED
