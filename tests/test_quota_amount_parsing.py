"""Amounts typed into the quota editor, the quota upload and the forecast form: messages and decimal places."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation
from django_scopes import scope, scopes_disabled

from goals.imports import quota_import
from goals.models import Quota
from goals.parsing import parse_number
from goals.views_forecast import SubmissionForm
from pipelines.importers.base import RowRejected

CELL = "/o/acme/quotas/cell/"


def rejection_reason(text: str, language: str) -> str:
    with pytest.raises(RowRejected) as raised:
        parse_number(text, "target")
    with translation.override(language):
        return str(raised.value.reason)


def cell_post(client, member, value, *, language):
    data = {"year": 2025, "granularity": "quarter", "level": "rep", "metric": "won_revenue",
            "subject": member.pk, "period": "2025-Q1", "value": value}  # fmt: skip
    return client.post(CELL, data, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE=language)


def quota_target(member, start=dt.date(2025, 1, 1)):
    with scopes_disabled():
        quota = Quota.objects.filter(membership=member, period_start=start, metric="won_revenue").first()
    return None if quota is None else quota.target


def test_invalid_number_example_in_english():
    assert rejection_reason("abc", "en") == "invalid number; expected for example 12,500.00"


def test_invalid_number_example_in_german():
    assert rejection_reason("abc", "de") == "ungültige Zahl; erwartet wird z. B. 12.500,00"


def test_cell_error_names_value_in_english(admin_client, member):
    response = cell_post(admin_client, member, "abc", language="en")

    assert "abc was not saved: invalid number; expected for example 12,500.00</div>" in response.content.decode()


def test_cell_error_names_value_in_german(admin_client, member):
    response = cell_post(admin_client, member, "abc", language="de")

    assert "abc wurde nicht gespeichert: ungültige Zahl; erwartet wird z. B. 12.500,00</div>" in response.content.decode()


def test_forecast_amount_error_in_both_languages(org):
    data = {"subject": 1, "period": "2017-Q3", "commit_amount": "abc", "best_case_amount": "1"}
    with translation.override("en"):
        english = SubmissionForm(data, currency="EUR").errors["commit_amount"]
    with translation.override("de"):
        german = SubmissionForm(data, currency="EUR").errors["commit_amount"]

    assert english == ["Commit: 'abc' is not valid (invalid number; expected for example 12,500.00)."]
    assert german == ["Commit: 'abc' ist ungültig (ungültige Zahl; erwartet wird z. B. 12.500,00)."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234", Decimal("1234.00")),
        ("1.234", Decimal("1234.00")),
        ("12,500", Decimal("12500.00")),
        ("12.500", Decimal("12500.00")),
        ("999.999", Decimal("999999.00")),
        ("1,23", Decimal("1.23")),
        ("1.5", Decimal("1.50")),
    ],
)
def test_single_separator_before_three_digits_is_thousands(text, expected):
    assert parse_number(text, "target") == expected


@pytest.mark.parametrize("text", ["0,005", "0.123", "1234,567", "1.234,567", "1,234.567", "12,5000"])
def test_more_than_two_decimals_rejected(text):
    assert rejection_reason(text, "en") == (
        "invalid number with more than two decimal places; round it to cents, for example 1,234.56"
    )
    assert rejection_reason(text, "de") == (
        "ungültige Zahl mit mehr als zwei Nachkommastellen; runden Sie auf Cent, z. B. 1.234,56"
    )


def test_cell_three_decimals_not_rounded(admin_client, member):
    response = cell_post(admin_client, member, "1234,567", language="en")

    assert "1234,567 was not saved: invalid number with more than two decimal places" in response.content.decode()
    assert quota_target(member) is None


@pytest.mark.parametrize("language", ["de", "en"])
def test_cell_one_separator_reads_thousands_in_both_languages(admin_client, member, language):
    cell_post(admin_client, member, "1,234", language=language)
    assert quota_target(member) == Decimal("1234.00")

    cell_post(admin_client, member, "1.234", language=language)
    assert quota_target(member) == Decimal("1234.00")


def test_german_organization_upload_reads_thousands(org, member):
    org.language = "de"
    org.save(update_fields=["language"])
    text = (
        "level;name;period;metric;target\n"
        f"rep;{member.user.email};2025-Q1;won_revenue;12,500\n"
        f"rep;{member.user.email};2025-Q2;won_revenue;0,125\n"
    )

    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=text.encode(), file_name="quotas.csv")

    assert (result.created, result.rejected) == (1, 1)
    assert quota_target(member) == Decimal("12500.00")
    assert result.errors[0].line == 3
    assert result.errors[0].value == "0,125"
