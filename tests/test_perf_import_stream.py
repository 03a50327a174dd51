"""Streaming reader of the CSV import: the same rows as reading the whole file, in flat memory.

The Maven deal file is read row by row (formats.table_stream), so an import's
memory does not grow with the file. These tests pin that the stream reads what
`table_read` reads, in German Excel's encoding too, and that iterating a file
uses far less memory than the file's size.
"""

import tracemalloc
from decimal import Decimal

import pytest

from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.importers.formats import parse_day, parse_money, table_read, table_stream

GERMAN_EXCEL = (
    "Kunde;Betrag;Abschluss\r\n"
    "Groß & Söhne;1.234,56 €;31.12.2026\r\n"
    ";;\r\n"
    '"Müller; Partner";99,5;01.02.2027\r\n'
    "Weiß AG;7\r\n"
)


def test_stream_reads_cp1252_semicolons(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(GERMAN_EXCEL.encode("cp1252"))

    stream = table_stream(path)
    rows = list(stream)

    assert stream.encoding == "cp1252"
    assert stream.delimiter == ";"
    assert stream.header == ["Kunde", "Betrag", "Abschluss"]
    assert rows == [
        (2, {"Kunde": "Groß & Söhne", "Betrag": "1.234,56 €", "Abschluss": "31.12.2026"}),
        (4, {"Kunde": "Müller; Partner", "Betrag": "99,5", "Abschluss": "01.02.2027"}),
        (5, {"Kunde": "Weiß AG", "Betrag": "7", "Abschluss": ""}),
    ]
    assert parse_money(rows[0][1]["Betrag"], "Betrag") == Decimal("1234.56")


def test_stream_matches_table_read(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(("\ufeff" + GERMAN_EXCEL).encode("utf-8"))

    stream = table_stream(path)
    table = table_read(path)

    assert stream.encoding == table.encoding == "utf-8-sig"
    assert list(stream) == table.rows


def test_stream_iterates_twice(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("id,amount\nA,1\nB,2\n", encoding="utf-8")
    stream = table_stream(path)

    first = list(stream)
    second = list(stream)

    assert first == second == [(2, {"id": "A", "amount": "1"}), (3, {"id": "B", "amount": "2"})]


def test_stream_rejects_bad_byte_after_bom(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(b"\xef\xbb\xbfName\nM\x81ller\n")

    with pytest.raises(ImportSourceError, match="neither UTF-8 nor Windows-1252"):
        table_stream(path)


def test_stream_rejects_undefined_cp1252_byte(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes("Name\nGroß\n".encode("cp1252") + b"\x81\n")

    with pytest.raises(ImportSourceError) as caught:
        table_stream(path)

    # The message names the byte, not Python's codec error text.
    assert str(caught.value) == (
        "File deals.csv is neither UTF-8 nor Windows-1252: it contains the byte 0x81, which neither can read."
        " Save it as CSV UTF-8 and upload it again."
    )


def test_stream_memory_flat_in_rows(tmp_path):
    path = tmp_path / "deals.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("opportunity_id,sales_agent,deal_stage,close_value\n")
        for index in range(60_000):
            handle.write(f"O{index:07d},Agent {index % 300},Won,{index}\n")
    file_bytes = path.stat().st_size
    stream = table_stream(path)

    tracemalloc.start()
    try:
        count = sum(1 for _row in stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert count == 60_000
    assert file_bytes > 1_500_000
    # One row and the reader's buffers, not the file: well below a tenth of it.
    assert peak < file_bytes / 10


@pytest.mark.parametrize(
    "text, reason",
    [("2026-02-30", "no such day"), ("2026-13-01", "no such day"), ("2026-W01-1", "expected YYYY-MM-DD")],
)
def test_iso_fast_path_rejects_like_before(text, reason):
    with pytest.raises(RowRejected, match=reason):
        parse_day(text, "close_date")


def test_money_fast_path_keeps_cents():
    assert parse_money("4821", "close_value") == Decimal("4821.00")
    assert str(parse_money("0", "close_value")) == "0.00"
