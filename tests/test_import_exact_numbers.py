"""Numbers that must not be read as thousands, percent cells, same-day closes and clearer parse messages.

A text amount `1.234` is a thousand in the file imports, but an exchange rate with three
decimals, an XLSX number cell and an API amount are read as written.
"""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from openpyxl import Workbook

from goals import parsing
from pipelines.importers.base import ImportSourceError, RowRejected
from pipelines.importers.formats import parse_bool, parse_day, parse_percent, table_read
from pipelines.models import Deal, ExchangeRate, ImportRun
from pipelines.services_rates import exchange_rates_parse
from tests.import_helpers import export_folder, run_file_import
from tests.test_api import DEAL_RECORD, client_for, make_token
from tests.test_upload_errors import upload_error
from tests.test_upload_limits import (
    repetitive_workbook,
    unpacked_size,
    unpacks_too_large_message,
)

TOO_MANY_DECIMALS = "invalid number with more than two decimal places; round it to cents, for example 1,234.56"
GENERIC_MAPPING = {
    "external_id": "id",
    "owner": "owner",
    "created_at": "created",
    "status": "status",
    "closed_at": "closed",
    "amount": "amount",
    "probability": "probability",
}


def workbook_bytes(rows: list[list], number_formats: dict[str, str] | None = None) -> bytes:
    """Return an XLSX workbook of `rows`, with `number_formats` (cell such as "E2" to format) applied."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    for cell, number_format in (number_formats or {}).items():
        sheet[cell].number_format = number_format
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_ecb_three_decimals_are_decimals(tmp_path):
    path = write(tmp_path, "eurofxref-hist.csv", "Date,USD,CZK,JPY\n2016-01-04,1.0898,27.023,131.07\n")

    rates, errors = exchange_rates_parse(path=path, base_currency="USD")

    assert errors == []
    # One euro is 1.0898 USD and 27.023 CZK, so one koruna is 1.0898 / 27.023 USD.
    assert rates == {
        ("EUR", dt.date(2016, 1, 4)): Decimal("1.08980000"),
        ("CZK", dt.date(2016, 1, 4)): Decimal("0.04032861"),
        ("JPY", dt.date(2016, 1, 4)): Decimal("0.00831464"),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("currency,date,rate\nGBP,2016-01-08,1.234\n", Decimal("1.23400000")),
        ("currency;date;rate\nGBP;08.01.2016;1,234\n", Decimal("1.23400000")),
        ('currency,date,rate\nIDR,2016-01-08,"15,123.456"\n', Decimal("15123.45600000")),
        ("currency;date;rate\nIDR;08.01.2016;15.123,456\n", Decimal("15123.45600000")),
    ],
)
def test_rate_list_three_decimals_are_decimals(tmp_path, text, expected):
    rates, errors = exchange_rates_parse(path=write(tmp_path, "rates.csv", text), base_currency="EUR")

    assert errors == []
    assert list(rates.values()) == [expected]


def test_rate_workbook_number_cells_exact(tmp_path):
    content = workbook_bytes([["Date", "USD", "CZK"], [dt.datetime(2016, 1, 4), 1.0898, 27.023]])

    rates, errors = exchange_rates_parse(path=write(tmp_path, "rates.xlsx", content), base_currency="EUR")

    assert errors == []
    assert rates == {
        ("USD", dt.date(2016, 1, 4)): Decimal("0.91759956"),
        ("CZK", dt.date(2016, 1, 4)): Decimal("0.03700551"),
    }


def test_rate_workbook_over_unpacked_limit_rejected(settings, tmp_path):
    settings.IMPORT_MAX_UPLOAD_BYTES = 20 * 1024
    content = repetitive_workbook(["currency", "date", "rate"], ["USD", "2016-01-04", "1.1"], 2000)
    size_text = f"{unpacked_size(content) / 1024:.1f}\xa0KB"

    with pytest.raises(ImportSourceError) as raised:
        exchange_rates_parse(path=write(tmp_path, "bomb.xlsx", content), base_currency="EUR")

    assert str(raised.value) == unpacks_too_large_message("bomb.xlsx", size_text)


def test_number_cells_keep_exact_value(tmp_path):
    content = workbook_bytes([["amount", "share"], [999.999, 0.4], [1234.5, 1.0], [12, 0.995]], {"B3": "0%", "B4": "0.0%"})

    table = table_read(write(tmp_path, "deals.xlsx", content))

    assert [row["amount"] for _line, row in table.rows] == ["999.999", "1234.5", "12"]
    assert [row["amount"].number for _line, row in table.rows] == [Decimal("999.999"), Decimal("1234.5"), Decimal("12")]
    assert [parse_percent(row["share"], "share") for _line, row in table.rows] == [40, 100, 100]


def test_generic_workbook_amounts_and_percents(org, tmp_path):
    header = ["id", "owner", "created", "status", "closed", "amount", "probability"]
    rows = [
        header,
        ["X1", "Eva Roth", "2017-01-10", "open", None, 999.999, 1.0],
        ["X2", "Eva Roth", "2017-01-10", "open", None, 1234.5, 0.4],
        ["X3", "Eva Roth", "2017-01-10", "open", None, 1.234, 0.995],
        ["X4", "Eva Roth", "2017-01-10", "open", None, "1.234", "0.4"],
    ]
    content = workbook_bytes(rows, {"G2": "0%", "G3": "0%", "G4": "0.0%"})
    folder = tmp_path / "generic"
    folder.mkdir()
    write(folder, "deals.xlsx", content)

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    assert result.errors == []
    with scope(organization=org):
        assert sorted(Deal.objects.values_list("external_id", "amount", "probability")) == [
            # A number cell is exact and rounded half up to cents, as amounts are.
            ("X1", Decimal("1000.00"), 100),
            ("X2", Decimal("1234.50"), 40),
            ("X3", Decimal("1.23"), 100),
            # Text keeps the text rules: `1.234` is a thousand and 0.4 is 40 %.
            ("X4", Decimal("1234.00"), 40),
        ]


def test_quota_workbook_three_decimals_rejected():
    content = workbook_bytes([["level", "name", "period", "metric", "target"], ["rep", "a@acme.example", "2025", "won_deals", 12.345]])
    rows = parsing.read_table(content, "quotas.xlsx", required=("target",))
    target = rows[0][1]["target"]

    with pytest.raises(RowRejected) as raised:
        parsing.parse_number(target, "target")

    assert raised.value.value == "12.345"
    assert str(raised.value.reason) == TOO_MANY_DECIMALS


@pytest.mark.parametrize(("cell", "expected"), [(12500, Decimal("12500.00")), (1234.5, Decimal("1234.50")), (12.34, Decimal("12.34"))])
def test_quota_workbook_numbers_exact(cell, expected):
    content = workbook_bytes([["level", "name", "period", "metric", "target"], ["rep", "a@acme.example", "2025", "won_deals", cell]])
    rows = parsing.read_table(content, "quotas.xlsx", required=("target",))

    assert parsing.parse_number(rows[0][1]["target"], "target") == expected


@pytest.mark.django_db
def test_api_single_separator_is_decimal(org):
    with scopes_disabled():
        org.currency = "USD"
        org.save(update_fields=["currency"])
    _token, plain = make_token(org, "write")
    amounts = ["1.234 $", "1.234", "1,234", "1234.5", "1.234,50", "1,234.50", "1.234.567", "12,5", 1200]
    records = [{**DEAL_RECORD, "external_id": f"D{index}", "amount": amount} for index, amount in enumerate(amounts)]

    response = client_for(plain).post(reverse("api_deals"), {"records": records}, format="json")

    assert response.status_code == 200
    assert [(row["index"], row["value"], row["reason"]) for row in response.json()["rejected"]] == [
        (0, "1.234 $", TOO_MANY_DECIMALS),
        (1, "1.234", TOO_MANY_DECIMALS),
        (2, "1,234", TOO_MANY_DECIMALS),
    ]
    with scopes_disabled():
        assert sorted(Deal.objects.filter(organization=org).values_list("external_id", "amount")) == [
            ("D3", Decimal("1234.50")),
            ("D4", Decimal("1234.50")),
            ("D5", Decimal("1234.50")),
            ("D6", Decimal("1234567.00")),
            ("D7", Decimal("12.50")),
            ("D8", Decimal("1200.00")),
        ]


def test_generic_close_on_creation_day(org, tmp_path):
    folder = export_folder(
        tmp_path / "generic",
        {
            "deals.csv": (
                "id;owner;created;status;closed\n"
                "S1;Eva Roth;2017-03-01 15:00;won;2017-03-01\n"
                "S2;Eva Roth;2017-03-01 15:00;won;2017-03-01 10:00\n"
                "S3;Eva Roth;2017-03-01 15:00;lost;2017-02-28\n"
                "S4;Eva Roth;2017-03-01 09:00;won;2017-03-01\n"
            )
        },
    )

    mapping = {"external_id": "id", "owner": "owner", "created_at": "created", "status": "status", "closed_at": "closed"}
    result = run_file_import(org, "generic", folder, options={"mapping": mapping})

    assert [(error.line, str(error.reason)) for error in result.errors] == [
        (3, "close date is before the creation date"),
        (4, "close date is before the creation date"),
    ]
    with scope(organization=org):
        deals = {deal.external_id: deal for deal in Deal.objects.all()}
    # 15:00 in Berlin is 14:00 UTC, later than the 12:00 UTC of a date alone, so the deal closes when it was created.
    assert deals["S1"].created_at == dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)
    assert deals["S1"].closed_at == dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)
    assert deals["S4"].closed_at == dt.datetime(2017, 3, 1, 12, tzinfo=dt.UTC)
    assert sorted(deals) == ["S1", "S4"]


def test_pipedrive_close_on_creation_day(org, tmp_path):
    folder = export_folder(
        tmp_path / "pipedrive",
        {
            "deals.csv": (
                "Deal - ID;Deal - Title;Deal - Stage;Deal - Owner;Deal - Status;Deal - Won time;Deal - Lost time;"
                "Deal - Creation date\n"
                "21;Same day;Angebot;Eva Roth;won;01.03.2017;;01.03.2017 15:00\n"
                "22;Earlier time;Angebot;Eva Roth;lost;;01.03.2017 10:00;01.03.2017 15:00\n"
            )
        },
    )

    result = run_file_import(org, "pipedrive", folder)

    assert [(error.line, str(error.reason)) for error in result.errors] == [(3, "created after the deal was closed")]
    with scope(organization=org):
        deal = Deal.objects.get(external_id="21")
    assert deal.created_at == dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)
    assert deal.closed_at == dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)


@pytest.mark.parametrize("date_order", ["", "dmy", "mdy"])
def test_date_invalid_in_both_orders(date_order):
    with pytest.raises(RowRejected) as raised:
        parse_day("13/25/2017", "closed", date_order=date_order)

    assert str(raised.value.reason) == (
        "invalid date; neither part can be the month, so it is no date as DD/MM/YYYY or as MM/DD/YYYY"
    )


def test_date_with_one_part_above_twelve_accepted():
    assert parse_day("25/12/2017", "closed") == dt.date(2017, 12, 25)
    assert parse_day("12/25/2017", "closed") == dt.date(2017, 12, 25)


def test_bool_message_names_accepted_words():
    with pytest.raises(RowRejected) as raised:
        parse_bool("maybe", "Won")

    assert str(raised.value.reason) == "invalid yes/no value; expected yes/no, true/false or 1/0"


CELL_LIMIT_MESSAGE = (
    "File {file}, line 3: a cell is longer than 131072 characters, the most an import reads. A quotation mark that "
    "is not closed makes the rest of the file one cell: close it, or shorten the cell, and import the file again."
)


@pytest.mark.parametrize(
    ("kind", "file_name", "header"),
    [
        ("deals", "h.csv", "Record ID,Deal Name,Deal Stage,Deal owner,Create Date\n"),
        ("quotas", "quotas.csv", "level,name,period,metric,target\n"),
    ],
)
def test_cell_over_csv_limit_rejected_at_upload(org, admin_member, client, settings, tmp_path, kind, file_name, header):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(admin_member.user)
    data = (header + "1,a,b,c,2025-01-01\n" + f'2,"{"x" * 200_000}",b,c,2025-01-01\n').encode()

    status, errors = upload_error(client, kind, file_name, data)

    assert status == 400
    assert errors == [CELL_LIMIT_MESSAGE.format(file=file_name)]
    with scopes_disabled():
        assert ImportRun.objects.filter(organization=org).count() == 0
        assert ExchangeRate.objects.filter(organization=org).count() == 0
