"""Forecast submission messages: their own wording, amounts in the reader's money format, period names."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django_scopes import scopes_disabled

from dashboards.templatetags.spm_format import period_name
from goals.models import ForecastSettings, ForecastSubmission
from spm.fiscal import period_containing
from tests.forecast_helpers import APRIL_15, submit_forecast


def rejection(org, member, commit, best_case, *, language, today=APRIL_15) -> str:
    with translation.override(language), pytest.raises(ValidationError) as raised:
        submit_forecast(org, member, commit, best_case, today=today)
    return raised.value.messages[0]


def test_best_case_below_commit_shows_english_money(org, member):
    message = rejection(org, member, "5000.00", "2.00", language="en")

    assert message.startswith("Best case (€2.00) is below commit (€5,000.00);")


def test_best_case_below_commit_shows_german_money(org, member):
    message = rejection(org, member, "5000.00", "2.00", language="de")

    # Babel puts a no-break space between amount and sign in German.
    assert "2,00\xa0€" in message
    assert "5.000,00\xa0€" in message
    assert "5000.00" not in message


def test_negative_amount_has_forecast_wording(org, member):
    message = rejection(org, member, "-5.00", "10.00", language="en")

    assert message == "Forecast commit and best case must be 0 or more."


def test_closed_period_names_periods_as_the_page_does(org, member):
    english = rejection(org, member, "1.00", "2.00", language="en", today=dt.date(2017, 7, 2))
    german = rejection(org, member, "1.00", "2.00", language="de", today=dt.date(2017, 7, 2))

    assert english == "Forecasts can be submitted for Q3 FY 2017 and Q4 FY 2017 only, not for Q2 FY 2017."
    assert "2017-Q" not in german
    assert "Q3 GJ 2017" in german
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0


def test_negative_commit_in_form_has_forecast_wording(client, org, member):
    client.force_login(member.user)
    quarter = period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "quarter", 1)

    response = client.post(
        "/o/acme/forecast/submit/",
        {"subject": member.pk, "period": quarter.label, "commit_amount": "-5", "best_case_amount": "10"},
    )
    body = response.content.decode()

    assert response.status_code == 400
    assert "Commit must be 0 or more, not -5." in body
    assert "targets" not in body
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0


def test_wrong_period_kind_named_readably(client, org, member):
    client.force_login(member.user)

    body = client.get("/o/acme/forecast/", {"period": "2017"}).content.decode()

    assert "The forecast runs by quarter. FY 2017 is not a quarter, so Q" in body


@pytest.mark.parametrize(
    ("language", "expected", "not_saved"),
    [
        (
            "en",
            "The forecast runs by quarter. December 2026 is not a quarter, so {default} is shown.",
            "Your forecast for {name} was not saved.",
        ),
        (
            "de",
            "Der Forecast läuft nach Quartalen. Dezember 2026 ist kein Quartal, daher wird {default} angezeigt.",
            "Ihr Forecast für {name} wurde nicht gespeichert.",
        ),
    ],
)
def test_submit_month_in_quarter_forecast_rejected(client, org, member, language, expected, not_saved):
    with scopes_disabled():
        org.fiscal_year_start_month = 1
        org.save(update_fields=["fiscal_year_start_month"])
        member.user.language = language
        member.user.save(update_fields=["language"])
    client.force_login(member.user)
    current_quarter = period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "quarter", 1)
    with translation.override(language):
        default = period_name(current_quarter)

    response = client.post(
        "/o/acme/forecast/submit/",
        {"subject": member.pk, "period": "2026-12", "commit_amount": "1", "best_case_amount": "2"},
    )
    body = client.get(response["Location"]).content.decode()

    assert expected.format(default=default) in body
    assert not_saved.format(name=member.display_name) in body
    assert "per Quarter" not in body
    with scopes_disabled():
        assert ForecastSubmission.objects.count() == 0


def test_quarter_in_monthly_forecast_rejected(client, org, member):
    with scopes_disabled():
        ForecastSettings.objects.create(organization=org, period_kind="month")
    client.force_login(member.user)
    current_month = period_containing(timezone.localtime(timezone.now(), org.tzinfo).date(), "month", org.fiscal_year_start_month)
    with translation.override("en"):
        default = period_name(current_month)

    body = client.get("/o/acme/forecast/", {"period": "2017-Q2"}).content.decode()

    assert f"The forecast runs by month. Q2 FY 2017 is not a month, so {default} is shown." in body
