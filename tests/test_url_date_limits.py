"""Out-of-range dates and periods in query strings: the page names the value and never returns a 500.

Year 1 and year 9999 parse as dates, but 01/01/0001 00:00 in Europe/Berlin lies before the
earliest UTC `datetime`, and the end of 12/31/9999 (midnight of the next day) cannot be
represented at all. Every date
or period taken from a query string must lie in spm.date_limits.COMPUTABLE_RANGE,
01/01/2000 to 12/31/2100. Otherwise the page shows its default period or applies no filter.
"""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django_scopes import scopes_disabled

from dashboards.analytics.periods import parse_computable_period
from dashboards.models import Grain, KpiSnapshot, PeriodKind
from dashboards.selectors import kpi_periods_available
from goals.forecasts.accuracy import periods_with_forecasts
from goals.models import ForecastPeriodKind, ForecastSubmission
from spm.date_limits import COMPUTABLE_RANGE
from spm.fiscal import QUARTER
from tests.access_registry import ADMIN, MANAGER, REP
from tests.test_api import client_for, make_token

ALL = (ADMIN, MANAGER, REP)
MANAGERS_AND_ADMINS = (ADMIN, MANAGER)

DATE_EN = "{value} is outside the allowed range; enter a date from 01/01/2000 to 12/31/2100."
DATE_DE = "{value} liegt außerhalb des zulässigen Bereichs; geben Sie ein Datum vom 01.01.2000 bis 31.12.2100 ein."
START_EN = (
    "The period {value} starts on {start}, outside the allowed range; "
    "enter a period that starts from 01/01/2000 to 12/31/2100."
)
START_DE = (
    "Der Zeitraum {value} beginnt am {start} und liegt damit außerhalb des zulässigen Bereichs; "
    "geben Sie einen Zeitraum ein, der vom 01.01.2000 bis 31.12.2100 beginnt."
)
END_EN = "The period {value} ends on {end}, outside the allowed range; enter a period that ends by 12/31/2100."
END_DE = (
    "Der Zeitraum {value} endet am {end} und liegt damit außerhalb des zulässigen Bereichs; "
    "geben Sie einen Zeitraum ein, der spätestens am 31.12.2100 endet."
)


def _date(value_en: str, value_de: str) -> dict:
    return {"en": DATE_EN.format(value=value_en), "de": DATE_DE.format(value=value_de)}


def _start(value: str, start_en: str, start_de: str) -> dict:
    return {"en": START_EN.format(value=value, start=start_en), "de": START_DE.format(value=value, start=start_de)}


def _end(value: str, end_en: str, end_de: str) -> dict:
    return {"en": END_EN.format(value=value, end=end_en), "de": END_DE.format(value=value, end=end_de)}


YEAR_1 = _start("0001", "01/01/0001", "01.01.0001")
QUARTER_1 = _start("0001-Q1", "01/01/0001", "01.01.0001")

# Each case is a path below /o/acme/, the roles that may open it, and the message by language.
# {rep} in a path is the rep's membership id.
CASES = [
    ("audit/?created_from=0001-01-01", (ADMIN,), _date("01/01/0001", "01.01.0001")),
    ("audit/?created_to=9999-12-31", (ADMIN,), _date("12/31/9999", "31.12.9999")),
    ("privacy/views/?since=0001-01-01", (ADMIN,), _date("01/01/0001", "01.01.0001")),
    ("privacy/views/?until=9999-12-31", (ADMIN,), _date("12/31/9999", "31.12.9999")),
    ("pipeline/?as_of=0001-01-01", ALL, _date("01/01/0001", "01.01.0001")),
    ("pipeline/?as_of=9999-12-31", ALL, _date("12/31/9999", "31.12.9999")),
    ("pipeline/?period=0001", ALL, YEAR_1),
    ("pipeline/?period=2100-12-01..9999-12-30", ALL, _end("2100-12-01..9999-12-30", "12/30/9999", "30.12.9999")),
    (
        "pipeline/activities/?period=01.01.0001..31.12.2017",
        ALL,
        _start("01.01.0001..31.12.2017", "01/01/0001", "01.01.0001"),
    ),
    ("me/attainment/?period=0001", ALL, YEAR_1),
    ("leaderboard/?period=0001", ALL, YEAR_1),
    ("leaderboard/?period=9998-12", ALL, _start("9998-12", "12/01/9998", "01.12.9998")),
    ("forecast/?period=0001-Q1", ALL, QUARTER_1),
    ("forecast/people/{rep}/?period=0001-Q1", ALL, QUARTER_1),
    ("reps/{rep}/?period=0001-Q1", MANAGERS_AND_ADMINS, QUARTER_1),
    ("dashboard/?period=0001", MANAGERS_AND_ADMINS, YEAR_1),
    ("me/?period=0001", ALL, YEAR_1),
    ("deals/?period=0001-Q1&metric=won", ALL, QUARTER_1),
    ("deals/?analysis=as_of&key=0001-01-01:1&period=2017-Q2", ALL, _date("01/01/0001", "01.01.0001")),
    ("deals/?analysis=as_of&key=9999-12-31:none", ALL, _date("12/31/9999", "31.12.9999")),
]


@pytest.fixture
def people(admin_member, manager_member, member):
    return {ADMIN: admin_member, MANAGER: manager_member, REP: member}


def _get(membership, path: str, language: str):
    with scopes_disabled():
        membership.user.language = language
        membership.user.save(update_fields=["language"])
    client = Client()
    client.force_login(membership.user)
    return client.get(f"/o/acme/{path}")


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("role", ALL)
@pytest.mark.parametrize(("path", "roles", "messages"), CASES, ids=[case[0] for case in CASES])
def test_out_of_range_value_is_reported(people, member, path, roles, messages, role, language):
    if role not in roles:
        pytest.skip(f"{role} may not open {path}")

    response = _get(people[role], path.format(rep=member.pk), language)

    assert response.status_code in (200, 400)
    assert messages[language] in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "dashboard/?period=0001",
        "pipeline/?period=0001",
        "pipeline/activities/?period=01.01.0001..31.12.2017",
        "me/attainment/?period=0001",
        "leaderboard/?period=0001",
        "forecast/?period=0001-Q1",
    ],
)
def test_picker_offers_no_rejected_period(admin_member, path):
    response = _get(admin_member, path, "de")
    content = response.content.decode()

    options = re.findall(r"<option value=\"([^\"]*)\"[^>]*>([^<]*)<", content)
    assert response.status_code == 200
    assert options
    assert [value for value, _label in options if "0001" in value] == []
    assert [label for _value, label in options if label.strip() == "GJ 1"] == []


def test_pipeline_export_survives_out_of_range_period(member):
    response = _get(member, "pipeline/export/?table=funnel&format=csv&period=0001&as_of=9999-12-31", "en")

    content = response.content.decode()
    assert response.status_code == 400
    assert "The period 0001 starts on 01/01/0001, outside the allowed range;" in content
    assert "12/31/9999 is outside the allowed range;" in content


def test_pipeline_as_of_input_limits_date_picker(member):
    content = _get(member, "pipeline/", "en").content.decode()

    assert 'name="as_of"' in content
    assert 'min="2000-01-01" max="2100-12-31"' in content


def test_audit_date_inputs_limit_date_picker(admin_member):
    content = _get(admin_member, "audit/", "en").content.decode()

    assert 'name="created_from" min="2000-01-01" max="2100-12-31"' in content.replace('type="date" ', "")


@pytest.mark.parametrize(
    ("text", "start", "last_day"),
    [
        ("2000", dt.date(2000, 1, 1), dt.date(2000, 12, 31)),
        ("2100-Q4", dt.date(2100, 10, 1), dt.date(2100, 12, 31)),
        ("01.01.2000..31.12.2100", dt.date(2000, 1, 1), dt.date(2100, 12, 31)),
    ],
)
def test_computable_period_accepts_range_edges(text, start, last_day):
    period = parse_computable_period(text, 1)

    assert period.start == start
    assert period.last_day == last_day


@pytest.mark.parametrize(
    ("text", "start_month", "message"),
    [
        ("1999-12", 1, START_EN.format(value="1999-12", start="12/01/1999")),
        ("2101-01", 1, START_EN.format(value="2101-01", start="01/01/2101")),
        # With February as the start month, FY2101 runs from 02/01/2100 to 01/31/2101.
        ("2101", 2, END_EN.format(value="2101", end="01/31/2101")),
        ("1999-12-31..2000-01-31", 1, START_EN.format(value="1999-12-31..2000-01-31", start="12/31/1999")),
    ],
)
def test_computable_period_rejects_days_outside(text, start_month, message):
    with pytest.raises(ValueError) as caught:
        parse_computable_period(text, start_month)

    assert str(caught.value) == message


def test_computable_period_without_range_rejects_range():
    with pytest.raises(ValueError) as caught:
        parse_computable_period("2017-01-01..2017-03-31", 1, allow_range=False)

    assert str(caught.value) == (
        "Invalid period '2017-01-01..2017-03-31'; use a fiscal year (2017), a quarter (2017-Q2) or a month (2017-03)."
    )


def test_kpi_periods_leave_out_stored_rows_outside_range(org):
    with scopes_disabled():
        for start, end in ((dt.date(1, 1, 1), dt.date(2, 1, 1)), (dt.date(2017, 1, 1), dt.date(2018, 1, 1))):
            KpiSnapshot.objects.create(
                organization=org,
                period_kind=PeriodKind.YEAR,
                period_start=start,
                period_end=end,
                grain=Grain.ORGANIZATION,
                subject_id=org.pk,
                subject_name="Acme",
            )

        periods = kpi_periods_available(organization=org)

    assert [period.label for period in periods] == ["2017"]


def test_forecast_periods_leave_out_stored_rows_outside_range(org, member):
    with scopes_disabled():
        for start in (dt.date(1, 1, 1), dt.date(2017, 1, 1)):
            ForecastSubmission.objects.create(
                organization=org,
                subject=member,
                submitted_by=member,
                period_kind=ForecastPeriodKind.QUARTER,
                period_start=start,
                commit_amount=Decimal("100"),
                best_case_amount=Decimal("200"),
                submitted_at=dt.datetime(2017, 1, 2, tzinfo=dt.UTC),
            )

        periods = periods_with_forecasts(organization=org, kind=QUARTER, today=dt.date(2026, 12, 5))

    assert [period.label for period in periods] == ["2017-Q1"]


def test_computable_range_is_2000_to_2100():
    assert (COMPUTABLE_RANGE.earliest, COMPUTABLE_RANGE.latest) == (dt.date(2000, 1, 1), dt.date(2100, 12, 31))


@pytest.mark.parametrize(
    ("params", "field", "value", "reason"),
    [
        ({"period": "0001", "by": "organization"}, "period", "0001", START_EN.format(value="0001", start="01/01/0001")),
        (
            {"period": "0001-01-01..2017-01-31", "metric": "funnel"},
            "period",
            "0001-01-01..2017-01-31",
            START_EN.format(value="0001-01-01..2017-01-31", start="01/01/0001"),
        ),
        (
            {"period": "2017", "metric": "attainment", "by": "rep", "as_of": "9999-12-31"},
            "as_of",
            "9999-12-31",
            DATE_EN.format(value="12/31/9999"),
        ),
    ],
)
def test_api_kpi_report_rejects_out_of_range(org, params, field, value, reason):
    _token, plain = make_token(org)

    response = client_for(plain).get(reverse("api_kpi_report"), params)

    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "value": value, "reason": reason}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": "0001", "by": "organization"}, START_EN.format(value="0001", start="01/01/0001")),
        (
            {"period": "2017", "metric": "attainment", "by": "rep", "as_of": "0001-01-01"},
            DATE_EN.format(value="01/01/0001"),
        ),
    ],
)
def test_kpi_report_command_rejects_out_of_range(org, options, message):
    with pytest.raises(CommandError) as caught:
        call_command("kpi_report", org="acme", stdout=io.StringIO(), **options)

    assert str(caught.value) == message
