"""Every displayed number is rounded half up, as the API, kpi_report and the exports round it.

Babel rounds half to even, so these values sit exactly on a tie: 31,817 ÷ 8 =
3,977.125, 297 ÷ 4 = 74.25 days, 9 ÷ 16 = 56.25 %, 5 ÷ 16 = 31.25 %.
"""

from decimal import Decimal

import pytest
from django.utils import translation

from coaching.skills.indicators import format_indicator_value as skills_value_format
from coaching.skills.models import Indicator
from dashboards.charts import time_in_stage_chart, velocity_trend_chart
from dashboards.templatetags.spm_format import (
    format_fixed,
    format_money,
    format_number,
    format_percent,
)
from spm.exports import MONEY, PERCENT, rounded_number
from spm.fiscal import parse_period
from spm.rounding import round_half_up
from tests.test_formatting import NBSP, kpi_row, render

@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "€3,977.13"), ("de", f"3.977,13{NBSP}€")],
)
def test_average_deal_size_tie_rounds_up(language, expected):
    row = kpi_row(won_count=8, won_amount=Decimal("31817"))

    with translation.override(language):
        html = render("{% kpi_value row 'average_deal_size' %}", row=row)

    assert row.average_deal_size == Decimal("3977.125")
    assert html == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "$3,977.13"), ("de", f"3.977,13{NBSP}$")],
)
def test_money_tie_rounds_up_in_dollars(language, expected):
    with translation.override(language):
        assert format_money(Decimal("3977.125"), "USD") == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", f"74.3{NBSP}days"), ("de", f"74,3{NBSP}Tage")],
)
def test_sales_cycle_tie_rounds_up(language, expected):
    row = kpi_row(won_count=4, won_amount=Decimal("100"), cycle_days_sum=Decimal("297"))

    with translation.override(language):
        html = render("{% kpi_value row 'sales_cycle_days_mean' %}", row=row)

    assert html == expected


@pytest.mark.parametrize(
    ("language", "won", "lost", "expected"),
    [
        ("en", 9, 7, "56.3%"),
        ("de", 9, 7, f"56,3{NBSP}%"),
        ("en", 5, 11, "31.3%"),
        ("de", 5, 11, f"31,3{NBSP}%"),
    ],
)
def test_win_rate_tie_rounds_up(language, won, lost, expected):
    row = kpi_row(won_count=won, lost_count=lost)

    with translation.override(language):
        html = render("{% kpi_value row 'win_rate' %}", row=row)

    assert html == expected


@pytest.mark.parametrize(("language", "expected"), [("en", "56.3%"), ("de", f"56,3{NBSP}%")])
def test_percent_of_float_rounds_its_decimal_spelling(language, expected):
    with translation.override(language):
        assert format_percent(0.5625) == expected


@pytest.mark.parametrize(("language", "expected"), [("en", "0.15"), ("de", "0,15")])
def test_fixed_places_of_float_round_up(language, expected):
    # The float 0.145 is 0.14499… in binary; its decimal spelling is a tie.
    with translation.override(language):
        assert format_fixed(0.145, 2) == expected


def test_number_rounds_to_three_places():
    with translation.override("en"):
        assert format_number(Decimal("2.0625")) == "2.063"


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal("3977.125"), 2, Decimal("3977.13")),
        (Decimal("-3977.125"), 2, Decimal("-3977.13")),
        (0.145, 2, Decimal("0.15")),
        (Decimal("-0.001"), 2, Decimal("0.00")),
        (7, 1, Decimal("7.0")),
    ],
)
def test_round_half_up_values(value, places, expected):
    result = round_half_up(value, places)

    assert result == expected
    assert str(result) == str(expected)


def test_exports_and_pages_round_alike():
    with translation.override("en"):
        page = format_money(Decimal("3977.125"), "EUR")

    assert rounded_number(Decimal("3977.125"), MONEY) == Decimal("3977.13")
    assert page == "€3,977.13"
    assert rounded_number(0.56255, PERCENT) == Decimal("0.5626")


@pytest.mark.parametrize(("language", "expected"), [("en", "7.3"), ("de", "7,3")])
def test_skills_plain_value_rounds_up(language, expected):
    with translation.override(language):
        assert skills_value_format(Indicator.ACTIVITIES_PER_WON_DEAL, Decimal("7.25"), "EUR") == expected


class _StageRow:
    def __init__(self, name, days_mean, days_median):
        self.stage = type("Stage", (), {"name": name})()
        self.days_mean = days_mean
        self.days_median = days_median


@pytest.mark.parametrize(
    ("language", "mean", "median"),
    [("en", f"74.3{NBSP}days", f"1.2{NBSP}days"), ("de", f"74,3{NBSP}Tage", f"1,2{NBSP}Tage")],
)
def test_time_in_stage_hover_rounds_up(language, mean, median):
    with translation.override(language):
        chart = time_in_stage_chart([_StageRow("Demo", Decimal("74.25"), Decimal("1.15"))])

    mean_bar, median_bar = chart["data"]
    assert mean_bar["customdata"] == [mean]
    assert median_bar["customdata"] == [median]
    assert mean_bar["hovertemplate"] == "%{x}: %{customdata}<extra></extra>"


def test_velocity_trend_hover_rounds_up():
    # 1 open × 100 % win rate × (31,817 ÷ 8) average ÷ 1 day = 3,977.125 per day.
    row = kpi_row(won_count=8, won_amount=Decimal("31817"), cycle_days_sum=Decimal("8"), open_count=1)

    with translation.override("en"):
        chart = velocity_trend_chart([(parse_period("2017-06", 1), row), (parse_period("2017-07", 1), None)], currency="EUR")

    assert chart["data"][0]["customdata"] == ["€3,977.13 per day", ""]
