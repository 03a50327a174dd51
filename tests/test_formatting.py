"""Locale-aware formatting of money, percentages, days, counts and dates; the undefined dash.

Babel separates number and unit with a no-break space (U+00A0) where the
locale has a space, so the German strings below contain "\xa0".
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from dashboards.kpis import KpiRow
from dashboards.templatetags.spm_format import format_days, format_money, format_number, format_percent, period_name
from spm.fiscal import parse_period

NBSP = "\xa0"


def render(source: str, **context) -> str:
    return Template("{% load spm_format %}" + source).render(Context(context))


def kpi_row(**values) -> KpiRow:
    defaults = dict(
        grain="rep",
        subject_id=1,
        subject="Ann",
        won_count=0,
        lost_count=0,
        won_amount=Decimal("0"),
        lost_amount=Decimal("0"),
        cycle_days_sum=Decimal("0"),
        cycle_days_median=None,
        open_count=0,
        open_amount=Decimal("0"),
    )
    return KpiRow(**{**defaults, **values})


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", f"1.234,56{NBSP}€"), ("en", "€1,234.56")],
)
def test_money_filter_per_language(language, expected):
    with translation.override(language):
        assert render("{{ value|money:'EUR' }}", value=Decimal("1234.56")) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", f"37,5{NBSP}%"), ("en", "37.5%")],
)
def test_percent_filter_per_language(language, expected):
    with translation.override(language):
        assert render("{{ value|percent }}", value=Decimal("0.375")) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", f"40{NBSP}%"), ("en", "40%")],
)
def test_whole_percent_filter_per_language(language, expected):
    with translation.override(language):
        assert render("{{ value|whole_percent }}", value=40) == expected


def test_percent_rounds_to_one_decimal():
    with translation.override("en"):
        assert format_percent(Decimal("2") / Decimal("3")) == "66.7%"


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", f"12,5{NBSP}Tage"), ("en", f"12.5{NBSP}days")],
)
def test_days_filter_per_language(language, expected):
    with translation.override(language):
        assert render("{{ value|days }}", value=Decimal("12.5")) == expected


@pytest.mark.parametrize(("language", "expected"), [("de", "1.234"), ("en", "1,234")])
def test_number_filter_groups_thousands(language, expected):
    with translation.override(language):
        assert render("{{ value|number }}", value=1234) == expected


def test_plain_helpers_use_the_active_language():
    with translation.override("de"):
        assert format_money(Decimal("0.5"), "USD") == f"0,50{NBSP}$"
        assert format_days(Decimal("2")) == f"2,0{NBSP}Tage"
        assert format_number(1234567) == "1.234.567"


@pytest.mark.parametrize(("language", "expected"), [("de", "31.12.2017"), ("en", "12/31/2017")])
def test_short_date_format_per_language(language, expected):
    with translation.override(language):
        assert render('{{ day|date:"SHORT_DATE_FORMAT" }}', day=dt.date(2017, 12, 31)) == expected


def test_none_renders_undefined_dash():
    with translation.override("en"):
        html = render("{{ value|percent }}", value=None)

    assert html == '<span class="undefined-value" title="Not defined for this selection." tabindex="0">–</span>'


def test_kpi_value_gives_the_kpis_undefined_reason():
    row = kpi_row(won_count=0, lost_count=0)

    with translation.override("en"):
        html = render("{% kpi_value row 'win_rate' %}", row=row)

    assert html == '<span class="undefined-value" title="No deals closed in this period." tabindex="0">–</span>'


def test_kpi_value_never_shows_zero_for_undefined_rate():
    row = kpi_row(open_count=3)

    with translation.override("de"):
        html = render("{% kpi_value row 'pipeline_velocity' %}", row=row)

    assert ">–</span>" in html
    assert "0,0" not in html


def test_kpi_value_formats_defined_rate_and_money():
    row = kpi_row(won_count=3, lost_count=5, won_amount=Decimal("3703.68"))

    with translation.override("de"):
        win_rate = render("{% kpi_value row 'win_rate' %}", row=row)
        deal_size = render("{% kpi_value row 'average_deal_size' %}", row=row)

    assert win_rate == f"37,5{NBSP}%"
    assert deal_size == f"1.234,56{NBSP}€"


def test_kpi_value_without_row_reads_zero_counts():
    with translation.override("en"):
        count = render("{% kpi_value row 'won_count' %}", row=None)
        rate = render("{% kpi_value row 'win_rate' %}", row=None)

    assert count == "0"
    assert 'class="undefined-value"' in rate


def test_kpi_value_uses_organization_currency(org):
    org.currency = "CHF"
    row = kpi_row(won_count=1, won_amount=Decimal("1234.56"))

    with translation.override("en"):
        html = render("{% kpi_value row 'won_amount' %}", row=row, organization=org)

    assert html == "CHF1,234.56"


def test_velocity_reads_money_per_day():
    row = kpi_row(won_count=1, lost_count=1, won_amount=Decimal("1000"), cycle_days_sum=Decimal("10"), open_count=4)

    with translation.override("en"):
        html = render("{% kpi_value row 'pipeline_velocity' %}", row=row)

    # 4 open × 0.5 win rate × 1,000 average ÷ 10 days = 200 per day.
    assert html == "€200.00 per day"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("2017", "FY 2017"), ("2017-Q2", "Q2 FY 2017"), ("2017-03", "March 2017")],
)
def test_period_name_in_english(label, expected):
    with translation.override("en"):
        assert period_name(parse_period(label, 1)) == expected


def test_month_name_in_german():
    with translation.override("de"):
        assert period_name(parse_period("2017-03", 1)) == "März 2017"


def test_period_label_name_uses_fiscal_calendar_and_keeps_bad_labels():
    from types import SimpleNamespace

    from django.template import Context, Template

    template = Template("{% load spm_format %}{% period_label_name label %}")
    organization = SimpleNamespace(fiscal_year_start_month=1)

    assert template.render(Context({"label": "2017-Q4", "organization": organization})) == "Q4 FY 2017"
    assert template.render(Context({"label": "someday", "organization": organization})) == "someday"


def test_amount_input_in_locale_notation():
    from decimal import Decimal

    from django.utils import translation

    from dashboards.templatetags.spm_format import amount_input

    with translation.override("de"):
        assert amount_input(Decimal("12345.6")) == "12.345,60"
    with translation.override("en"):
        assert amount_input(Decimal("12345.6")) == "12,345.60"
    assert amount_input(None) == ""


@pytest.mark.parametrize(
    ("moment", "language", "expected"),
    [
        (dt.datetime(2016, 10, 20, 12, tzinfo=dt.timezone.utc), "de", "20.10.2016"),
        (dt.datetime(2016, 10, 20, 12, tzinfo=dt.timezone.utc), "en", "10/20/2016"),
        (dt.datetime(2016, 10, 20, 12, 0, 1, tzinfo=dt.timezone.utc), "de", "20.10.2016 14:00"),
        (dt.datetime(2016, 10, 20, 12, 0, 0, 1, tzinfo=dt.timezone.utc), "en", "10/20/2016 2 p.m."),
        (dt.datetime(2016, 10, 20, 9, 30, tzinfo=dt.timezone.utc), "de", "20.10.2016 11:30"),
        (None, "de", ""),
    ],
)
def test_date_or_datetime_drops_noon_utc_time(moment, language, expected):
    with translation.override(language), timezone.override("Europe/Berlin"):
        assert render("{{ moment|date_or_datetime }}", moment=moment) == expected


def test_date_or_datetime_keeps_source_date_far_east():
    moment = dt.datetime(2016, 10, 20, 12, tzinfo=dt.timezone.utc)

    with translation.override("de"), timezone.override("Pacific/Kiritimati"):
        assert render("{{ moment|date_or_datetime }}", moment=moment) == "20.10.2016"
        assert render("{{ moment|date_of }}", moment=moment) == "20.10.2016"
