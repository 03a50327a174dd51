"""Records API: a date-only close on the creation day, and amounts sent as JSON numbers outside the range."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from pipelines.importers.base import RowRejected
from pipelines.importers.record_values import money_value
from pipelines.models import Deal
from tests.test_api import DEAL_RECORD, client_for, make_token

TOO_LARGE = "amount too large; the maximum is 9,999,999,999,999.99"
NEGATIVE = "negative amount; amounts must be 0 or more"
INVALID_NUMBER = "invalid number; expected e.g. 1,234.56 or 1234.56"


def post_body(org, body: str):
    _token, plain = make_token(org, "write")
    return client_for(plain).post(reverse("api_deals"), body, content_type="application/json")


def test_api_close_on_creation_day(org):
    _token, plain = make_token(org, "write")
    records = [
        {**DEAL_RECORD, "external_id": "SAME", "status": "won", "created_at": "2017-03-01T14:00:00Z", "closed_at": "2017-03-01"},
        {**DEAL_RECORD, "external_id": "DAY_BEFORE", "status": "won", "created_at": "2017-03-01T14:00:00Z", "closed_at": "2017-02-28"},
    ]

    response = client_for(plain).post(reverse("api_deals"), {"records": records}, format="json")

    assert response.status_code == 200
    assert [(row["index"], row["field"], row["value"], row["reason"]) for row in response.json()["rejected"]] == [
        (1, "closed_at", "2017-02-28", "close date is before the creation date")
    ]
    with scopes_disabled():
        deal = Deal.objects.get(organization=org, external_id="SAME")
    assert deal.closed_at == dt.datetime(2017, 3, 1, 14, tzinfo=dt.UTC)
    assert deal.closed_at - deal.created_at == dt.timedelta(0)


def test_api_json_number_amounts_out_of_range(org):
    # 1e400 and -1e400 overflow to infinity when the body is parsed.
    amounts = ["1e300", "1e20", "1e400", "-1e400", "-1e300", "1e-5", "1.5e3"]
    records = ", ".join(
        f'{{"external_id": "D{index}", "owner": "Rita Rep", "stage": "Negotiation", "created_at": "2017-01-10", '
        f'"amount": {amount}}}'
        for index, amount in enumerate(amounts)
    )

    response = post_body(org, f'{{"records": [{records}]}}')

    assert response.status_code == 200
    assert [(row["index"], row["value"], row["reason"]) for row in response.json()["rejected"]] == [
        (0, "1e+300", TOO_LARGE),
        (1, "1e+20", TOO_LARGE),
        (2, "inf", TOO_LARGE),
        (3, "-inf", NEGATIVE),
        (4, "-1e+300", NEGATIVE),
        (5, "1e-05", "invalid number with more than two decimal places; round it to cents, for example 1,234.56"),
    ]
    with scopes_disabled():
        assert list(Deal.objects.filter(organization=org).values_list("external_id", "amount")) == [
            ("D6", Decimal("1500.00"))
        ]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_api_non_json_constants_rejected(org, constant):
    body = f'{{"records": [{{"external_id": "D1", "owner": "Rita Rep", "created_at": "2017-01-10", "amount": {constant}}}]}}'

    response = post_body(org, body)

    assert response.status_code == 400
    assert response.json()["detail"] == "The request body is not valid JSON; send a JSON object such as {\"records\": [...]}."


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        (float("nan"), "nan", INVALID_NUMBER),
        (Decimal("NaN"), "NaN", INVALID_NUMBER),
        (float("inf"), "inf", TOO_LARGE),
        (10**20, "100000000000000000000", TOO_LARGE),
    ],
)
def test_money_value_number_out_of_range(value, shown, reason):
    with pytest.raises(RowRejected) as raised:
        money_value({"amount": value}, "amount", currency="EUR")

    assert raised.value.value == shown
    assert str(raised.value.reason) == reason


def test_money_value_number_within_range():
    assert money_value({"amount": 9999999999999.99}, "amount") == Decimal("9999999999999.99")
    assert money_value({"amount": 0.1}, "amount") == Decimal("0.10")
    assert money_value({"amount": 1200}, "amount") == Decimal("1200.00")
