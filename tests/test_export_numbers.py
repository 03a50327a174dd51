"""Numbers in the pipeline page downloads: money with 2 decimals, rates with 4, days with 2, on both databases.

Data (Acme, Q2 2017, times 12:00 UTC), pipeline Sales: three deals Lead 04-03 → Won after
7, 10 and 17 days (1,000.10 + 200.20 + 34.26 = 1,234.56), four deals Lead 04-05 → Lost
04-06 (100.00 each). Win rate 3/7 = 0.428571…; Lead stays 7, 10, 17, 1, 1, 1, 1 days: mean
38/7 = 5.428571…, median 1.
"""

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from dashboards.services import kpi_snapshot_recompute
from spm.exports import DAYS, DECIMAL, INTEGER, MONEY, PERCENT, TEXT, Column, Table, csv_response, rounded_number
from tests.analytics_data import deal_with_history, sales_stages, utc


@pytest.fixture
def closed_deals(org, member):
    stages = sales_stages(org)
    for amount, won_day in (("1000.10", 10), ("200.20", 13), ("34.26", 20)):
        deal_with_history(member, stages, [("Lead", utc(4, 3)), ("Won", utc(4, won_day))], amount=amount)
    for _index in range(4):
        deal_with_history(member, stages, [("Lead", utc(4, 5)), ("Lost", utc(4, 6))], amount="100.00")
    kpi_snapshot_recompute(organization=org)


def csv_lines(response) -> list[str]:
    return b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff").splitlines()


def test_winloss_csv_rounds_rate_and_money(client, admin_member, closed_deals):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/", {"table": "winloss", "period": "2017-Q2", "format": "csv"})

    assert csv_lines(response) == [
        "Product,Won deals,Lost deals,Win rate,Won amount,Lost amount",
        "none,3,4,0.4286,1234.56,400.00",
    ]


def test_winloss_xlsx_has_the_csv_numbers(client, admin_member, closed_deals):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/", {"table": "winloss", "period": "2017-Q2", "format": "xlsx"})

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in sheet[2]] == ["none", 3, 4, 0.4286, 1234.56, 400]


def test_time_in_stage_csv_rounds_days(client, admin_member, closed_deals):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/export/", {"table": "time_in_stage", "period": "2017-Q2", "format": "csv"})

    assert csv_lines(response)[1] == "Lead,7,7,5.43,1.00"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (Decimal("0.8285714285714285714285714286"), PERCENT, Decimal("0.8286")),
        (Decimal("1234.56000000000"), MONEY, Decimal("1234.56")),
        (Decimal("0.005"), MONEY, Decimal("0.01")),
        (Decimal("-0.00001"), MONEY, Decimal("0.00")),
        (0.125, DAYS, Decimal("0.13")),
        (Decimal("2.5"), DECIMAL, Decimal("2.50")),
        (7, MONEY, 7),
        (Decimal("3"), INTEGER, Decimal("3")),
        (Decimal("1.23456"), TEXT, Decimal("1.23456")),
    ],
)
def test_rounded_number_per_kind(value, kind, expected):
    result = rounded_number(value, kind)

    assert result == expected
    assert str(result) == str(expected)


def test_csv_value_beyond_last_column_is_kept():
    table = Table(name="t", columns=[Column("Amount", MONEY)], rows=[[Decimal("1.005"), Decimal("1.23456")]])

    assert csv_lines(csv_response(table)) == ["Amount", "1.01,1.23456"]
