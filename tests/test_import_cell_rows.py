"""TableStream.cell_rows: the cells of named columns per row, read like iterating the stream's dict rows."""

import pytest

from pipelines.importers.base import ImportSourceError
from pipelines.importers.formats import table_stream


def stream_of(tmp_path, text: str):
    path = tmp_path / "deals.csv"
    path.write_text(text, encoding="utf-8")
    return table_stream(path)


def test_cells_in_requested_order(tmp_path):
    stream = stream_of(tmp_path, "id,name,amount\nD1, Acme ,10\n")

    assert list(stream.cell_rows(("amount", "id", "name"))) == [(2, ("10", "D1", "Acme"))]


def test_missing_column_reads_blank(tmp_path):
    stream = stream_of(tmp_path, "id,amount\nD1,10\nD2,20\n")

    assert list(stream.cell_rows(("id", "account", "amount"))) == [(2, ("D1", "", "10")), (3, ("D2", "", "20"))]


def test_single_column(tmp_path):
    stream = stream_of(tmp_path, "id,amount\nD1,10\n")

    assert list(stream.cell_rows(("amount",))) == [(2, ("10",))]


def test_blank_and_short_rows(tmp_path):
    stream = stream_of(tmp_path, "id,name,amount\n,,\nD1,Acme\n\nD2\n")

    assert list(stream.cell_rows(("id", "name", "amount"))) == [(3, ("D1", "Acme", "")), (5, ("D2", "", ""))]


def test_same_values_as_dict_rows(tmp_path):
    text = 'id,name,,amount\nD1,"Acme, Inc.",x,"1,5"\n"D\n2", Beta ,,\nD3,Gamma,,7,,\n'
    stream = stream_of(tmp_path, text)
    columns = ("id", "name", "amount")

    expected = [(line, tuple(row.get(column, "") for column in columns)) for line, row in stream]

    assert list(stream.cell_rows(columns)) == expected
    assert [line for line, _cells in expected] == [2, 4, 5]


def test_extra_filled_cell_raises(tmp_path):
    stream = stream_of(tmp_path, "id,amount\nD1,1,234.56\n")

    with pytest.raises(ImportSourceError) as raised:
        list(stream.cell_rows(("id", "amount")))

    assert "line 2 has 3 cells, but the header has 2 columns" in str(raised.value.message)
