"""A currency sign or code in an amount must match the row's currency; one that contradicts it rejects the row."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from pipelines.importers.base import RowRejected
from pipelines.importers.formats import parse_money
from pipelines.models import Deal
from tests.import_helpers import export_folder, run_file_import
from tests.test_api import DEAL_RECORD, client_for, make_token

GENERIC_MAPPING = {"external_id": "id", "owner": "owner", "created_at": "created", "amount": "amount", "currency": "currency"}


def contradiction(mark: str, currency: str) -> str:
    return (
        f"the amount is marked {mark}, but the currency is {currency}; remove {mark} from the amount, "
        "or set the currency to the amount's currency"
    )


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("1.234,56 €", "EUR", Decimal("1234.56")),
        ("500 EUR", "EUR", Decimal("500.00")),
        ("500eur", "EUR", Decimal("500.00")),
        ("$ 1,234.56", "USD", Decimal("1234.56")),
        ("1.000 SEK", "SEK", Decimal("1000.00")),
        ("£12.50", "GBP", Decimal("12.50")),
    ],
)
def test_matching_mark_accepted(value, currency, expected):
    assert parse_money(value, "amount", currency=currency) == expected


@pytest.mark.parametrize(
    ("value", "currency", "mark"),
    [
        ("1.234,56 €", "USD", "€"),
        ("500 EUR", "USD", "EUR"),
        ("$ 1,234.56", "EUR", "$"),
        ("1.000 SEK", "EUR", "SEK"),
        ("€ 5 USD", "USD", "€"),
    ],
)
def test_contradicting_mark_rejected(value, currency, mark):
    with pytest.raises(RowRejected) as raised:
        parse_money(value, "amount", currency=currency)

    assert raised.value.column == "amount"
    assert raised.value.value == value
    assert str(raised.value.reason) == contradiction(mark, currency)


def test_unknown_letters_are_invalid_number():
    with pytest.raises(RowRejected) as raised:
        parse_money("500 XYZ", "amount", currency="EUR")

    assert str(raised.value.reason) == "invalid number; expected e.g. 1,234.56 or 1234.56"


def test_generic_rows_checked_against_currency(org, tmp_path):
    with scopes_disabled():
        org.currency = "USD"
        org.save(update_fields=["currency"])
    folder = export_folder(
        tmp_path / "generic",
        {
            "deals.csv": (
                "id;owner;created;amount;currency\n"
                "C1;Eva Roth;2025-01-01;1.234,56 €;\n"
                "C2;Eva Roth;2025-01-01;500 EUR;\n"
                "C3;Eva Roth;2025-01-01;$ 1,234.56;\n"
                "C4;Eva Roth;2025-01-01;$ 99;USD\n"
            )
        },
    )

    result = run_file_import(org, "generic", folder, options={"mapping": GENERIC_MAPPING})

    assert [str(error) for error in result.errors] == [
        f"deals.csv line 2, column amount, value '1.234,56 €': {contradiction('€', 'USD')}",
        f"deals.csv line 3, column amount, value '500 EUR': {contradiction('EUR', 'USD')}",
    ]
    with scope(organization=org):
        assert sorted(Deal.objects.values_list("external_id", "amount", "currency")) == [
            ("C3", Decimal("1234.56"), "USD"),
            ("C4", Decimal("99.00"), "USD"),
        ]


def test_import_currency_option_checked(org, tmp_path):
    folder = export_folder(
        tmp_path / "hs",
        {"deals.csv": "Record ID,Deal Stage,Deal owner,Create Date,Amount\n501,Appointment,Eva Roth,2025-01-10,\"$ 1,234.56\"\n"},
    )

    result = run_file_import(org, "hubspot", folder, currency="EUR")

    assert [str(error) for error in result.errors] == [
        f"deals.csv line 2, column Amount, value '$ 1,234.56': {contradiction('$', 'EUR')}"
    ]
    assert result.counts["deals"].created == 0


@pytest.mark.django_db
def test_api_amount_with_other_currency_rejected(org):
    _token, plain = make_token(org, "write")
    records = [
        {**DEAL_RECORD, "amount": "1.234,56 €", "currency": "USD"},
        {**DEAL_RECORD, "external_id": "D2", "amount": "1.234,56 €", "currency": "EUR"},
    ]

    response = client_for(plain).post(reverse("api_deals"), {"records": records}, format="json")

    assert response.status_code == 200
    assert response.json()["rejected"] == [
        {
            "entity": "deals",
            "index": 0,
            "external_id": "D1",
            "field": "amount",
            "value": "1.234,56 €",
            "reason": contradiction("€", "USD"),
        }
    ]
    with scopes_disabled():
        assert list(Deal.objects.filter(organization=org).values_list("external_id", "amount")) == [("D2", Decimal("1234.56"))]
