"""Amount bounds: what forms and imports accept reads back unchanged on SQLite and PostgreSQL.

MAX_MONEY_AMOUNT is 9,999,999,999,999.99: 15 significant digits, all that Django's SQLite
backend returns exactly. Before the bound, 9999999999999999 was accepted, stored by
SQLite as the float 1e16 and read back as 17 digits before the point, which raised
decimal.InvalidOperation on every page that loaded the row.
"""

from decimal import Decimal, InvalidOperation
from unittest import mock

import pytest
from babel.numbers import format_decimal
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from goals.forecasts import rollup
from goals.imports import quota_import
from goals.models import ForecastSubmission, Quota
from goals.parsing import NUMBER_TOO_LARGE, parse_number
from pipelines.importers.base import RowRejected, convert_amount
from pipelines.importers.formats import AMOUNT_TOO_LARGE, parse_money
from pipelines.importers.record_values import money_value
from pipelines.models import MAX_MONEY_AMOUNT, Deal, ImportRunStatus
from spm.fiscal import period_containing
from tests.factories import DealFactory
from tests.forecast_helpers import submit_forecast
from tests.import_helpers import mapped_dry_run

MAX_ENGLISH = "9,999,999,999,999.99"
BASE_CURRENCY_TOO_LARGE = "amount too large once converted to the base currency; the maximum is 9,999,999,999,999.99"


def current_quarter(org):
    return period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "quarter", 1)


# --- the bound itself ---------------------------------------------------------------------------------


def test_maximum_has_fifteen_significant_digits():
    assert MAX_MONEY_AMOUNT == Decimal("9999999999999.99")
    assert len(MAX_MONEY_AMOUNT.as_tuple().digits) == 15


@pytest.mark.parametrize("amount", [MAX_MONEY_AMOUNT, Decimal("1234567890123.45"), Decimal("0.01"), Decimal("8000000000000.07")])
def test_accepted_amounts_read_back_unchanged(org, member, amount):
    with scopes_disabled():
        deal = DealFactory(owner=member, amount=amount, base_amount=amount)
        stored = Deal.objects.values_list("amount", "base_amount").get(pk=deal.pk)
        total = Deal.objects.filter(pk=deal.pk).values_list("amount", flat=True).get()

    assert stored == (amount, amount)
    assert total == amount


def test_forecast_at_maximum_reads_back_unchanged(org, member):
    quarter = current_quarter(org)
    with scope(organization=org):
        submit_forecast(org, member, MAX_MONEY_AMOUNT, MAX_MONEY_AMOUNT, period=quarter, today=quarter.start)
        in_force = rollup.submissions_in_force(period=quarter)[member.pk]

    assert in_force.commit_amount == MAX_MONEY_AMOUNT
    assert in_force.best_case_amount == MAX_MONEY_AMOUNT


def test_too_large_reasons_name_the_maximum():
    english = format_decimal(MAX_MONEY_AMOUNT, format="#,##0.00", locale="en")

    assert english == MAX_ENGLISH
    assert AMOUNT_TOO_LARGE.endswith(f"the maximum is {english}")
    assert NUMBER_TOO_LARGE.endswith(f"the maximum is {english}")
    assert BASE_CURRENCY_TOO_LARGE.endswith(f"the maximum is {english}")


# --- file and record parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999999999999", Decimal("9999999999999.00")),
        ("9999999999999.99", MAX_MONEY_AMOUNT),
        ("9.999.999.999.999,99", MAX_MONEY_AMOUNT),
        ("9,999,999,999,999.99 €", MAX_MONEY_AMOUNT),
    ],
)
def test_parse_money_accepts_up_to_maximum(text, expected):
    assert parse_money(text, "amount") == expected


@pytest.mark.parametrize(
    "text", ["10000000000000", "9999999999999999", "9999999999999.991", "10.000.000.000.000,00", "123456789012345678901234567890"]
)
def test_parse_money_rejects_above_maximum(text):
    with pytest.raises(RowRejected) as raised:
        parse_money(text, "amount")

    assert raised.value.column == "amount"
    assert raised.value.value == text
    assert raised.value.reason.msgid == AMOUNT_TOO_LARGE


def test_record_money_value_bound():
    assert money_value({"amount": "9999999999999.99"}, "amount") == MAX_MONEY_AMOUNT
    assert money_value({"amount": 9999999999999}, "amount") == Decimal("9999999999999.00")
    for value in ("9999999999999999", 10000000000000, "10.000.000.000.000,00"):
        with pytest.raises(RowRejected) as raised:
            money_value({"amount": value}, "amount")
        assert raised.value.reason.msgid == AMOUNT_TOO_LARGE


def test_parse_number_bound():
    assert parse_number("9.999.999.999.999,99", "target") == MAX_MONEY_AMOUNT
    for text in ("10.000.000.000.000", "9999999999999999"):
        with pytest.raises(RowRejected) as raised:
            parse_number(text, "target")
        assert raised.value.reason.msgid == NUMBER_TOO_LARGE


def test_convert_amount_rejects_result_above_maximum():
    assert convert_amount(Decimal("9000000000000.00"), Decimal("1.1"), column="Amount", value="9000000000000") == Decimal(
        "9900000000000.00"
    )
    with pytest.raises(RowRejected) as raised:
        convert_amount(Decimal("9000000000000.00"), Decimal("1.2"), column="Amount", value="9000000000000")

    assert (raised.value.column, raised.value.value) == ("Amount", "9000000000000")
    assert raised.value.reason.msgid == BASE_CURRENCY_TOO_LARGE


# --- forecast submissions ---------------------------------------------------------------------------


def forecast_post(client, org, member, amount):
    return client.post(
        "/o/acme/forecast/submit/",
        {
            "subject": member.pk,
            "period": current_quarter(org).label,
            "commit_amount": amount,
            "best_case_amount": amount,
        },
    )


def test_forecast_sixteen_digits_rejected(client, org, member, other_rep):
    client.force_login(member.user)

    response = forecast_post(client, org, member, "9999999999999999")

    body = response.content.decode()
    assert response.status_code == 400
    assert "Commit: &#x27;9999999999999999&#x27; is not valid (number too large; the maximum is 9,999,999,999,999.99)." in body
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0
    client.force_login(other_rep.user)
    assert client.get("/o/acme/forecast/").status_code == 200


def test_forecast_at_maximum_is_shown(client, org, member):
    client.force_login(member.user)

    response = forecast_post(client, org, member, "9,999,999,999,999.99")
    page = client.get(response["Location"])

    assert page.status_code == 200
    assert "data-commit>€9,999,999,999,999.99<" in page.content.decode()


def test_forecast_service_rejects_above_maximum(org, member):
    quarter = current_quarter(org)
    with pytest.raises(ValidationError) as raised:
        submit_forecast(org, member, "1.00", MAX_MONEY_AMOUNT + Decimal("0.01"), period=quarter, today=quarter.start)

    assert raised.value.messages == ["Forecast commit and best case can be at most €9,999,999,999,999.99."]


# --- quotas -----------------------------------------------------------------------------------------


def test_quota_cell_above_maximum_is_rejected(client, admin_member, member):
    client.force_login(admin_member.user)
    data = {"year": 2025, "granularity": "quarter", "level": "rep", "metric": "won_revenue",
            "subject": member.pk, "period": "2025-Q1", "value": "10.000.000.000.000,00", "reason": ""}  # fmt: skip

    response = client.post("/o/acme/quotas/cell/", data, HTTP_HX_REQUEST="true")

    assert 'aria-invalid="true"' in response.content.decode()
    assert "the maximum is 9,999,999,999,999.99" in response.content.decode()
    with scopes_disabled():
        assert Quota.objects.count() == 0


def test_quota_upload_rejects_row_above_maximum(org, member):
    text = (
        "level,name,period,metric,target\n"
        "rep,rep@acme.example,2025-Q1,won_revenue,99999999999999\n"
        "rep,rep@acme.example,2025-Q2,won_revenue,9999999999999.99\n"
    )
    with scope(organization=org):
        result = quota_import(organization=org, actor=None, data=text.encode(), file_name="quotas.csv")

    assert result.created == 1
    assert [(error.line, error.column, error.value) for error in result.errors] == [(2, "target", "99999999999999")]
    assert result.errors[0].reason.msgid == NUMBER_TOO_LARGE
    with scopes_disabled():
        assert Quota.objects.get().target == MAX_MONEY_AMOUNT


# --- web imports ------------------------------------------------------------------------------------

GENERIC_MAPPING = {"external_id": "ID", "owner": "Owner", "created_at": "Created", "stage": "Stage", "amount": "Amount"}
GENERIC_CSV = (
    "ID,Owner,Created,Stage,Amount\n"
    "G-1,Eva Roth,01.05.2017,Demo,9999999999999999\n"
    "G-2,Eva Roth,02.05.2017,Demo,9999999999999.99\n"
)


@pytest.mark.usefixtures("import_storage")
def test_generic_dry_run_rejects_large_row(org, admin_client, django_capture_on_commit_callbacks):
    run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, GENERIC_CSV, GENERIC_MAPPING)

    assert run.status == ImportRunStatus.PREVIEWED
    assert run.message == ""
    assert run.summary["counts"]["deals"]["created"] == 1
    assert run.summary["counts"]["deals"]["rejected"] == 1
    assert run.rejected_rows == [["deals.csv", 2, "Amount", "9999999999999999", {"msgid": AMOUNT_TOO_LARGE, "params": {}}]]
    assert [(row["external_id"], row["amount"]) for row in run.preview] == [("G-2", "9999999999999.99")]


@pytest.mark.usefixtures("import_storage")
def test_import_decimal_error_message_readable(org, admin_client, django_capture_on_commit_callbacks):
    # The error SQLite's decimal converter raises for a stored amount of 17 digits before the point.
    error = InvalidOperation([InvalidOperation])
    with mock.patch("pipelines.services_imports._preview_rows", side_effect=error):
        run = mapped_dry_run(org, admin_client, django_capture_on_commit_callbacks, GENERIC_CSV, GENERIC_MAPPING)

    assert run.status == ImportRunStatus.FAILED
    assert "<class" not in run.message
    assert run.message == (
        "The import failed and changed nothing: a number in the files could not be calculated or stored exactly. "
        "Amounts can be at most 9,999,999,999,999.99, also after conversion to the base currency."
    )
    with scopes_disabled():
        assert Deal.objects.count() == 0

