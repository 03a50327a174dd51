"""Fiscal calendar: fiscal years named by the year they end in, quarters from the start month."""

import datetime as dt
import zoneinfo

import pytest

from spm.fiscal import (
    MONTH,
    QUARTER,
    YEAR,
    Period,
    fiscal_year_of,
    parse_period,
    period_containing,
    periods_covering,
)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("day", "start_month", "expected"),
    [
        (dt.date(2017, 1, 1), 1, 2017),
        (dt.date(2017, 12, 31), 1, 2017),
        # Start month February: FY2027 = 2026-02-01 .. 2027-01-31.
        (dt.date(2026, 1, 31), 2, 2026),
        (dt.date(2026, 2, 1), 2, 2027),
        (dt.date(2027, 1, 31), 2, 2027),
        # Start month October: FY2017 = 2016-10-01 .. 2017-09-30.
        (dt.date(2016, 9, 30), 10, 2016),
        (dt.date(2016, 10, 1), 10, 2017),
        (dt.date(2017, 9, 30), 10, 2017),
    ],
)
def test_fiscal_year_of(day, start_month, expected):
    assert fiscal_year_of(day, start_month) == expected


def test_parse_fiscal_year_calendar_start():
    assert parse_period("2017", 1) == Period(dt.date(2017, 1, 1), dt.date(2018, 1, 1), YEAR, "2017")


def test_parse_fiscal_year_february_start():
    assert parse_period("2027", 2) == Period(dt.date(2026, 2, 1), dt.date(2027, 2, 1), YEAR, "2027")


def test_parse_fiscal_year_october_start():
    assert parse_period("2017", 10) == Period(dt.date(2016, 10, 1), dt.date(2017, 10, 1), YEAR, "2017")


def test_parse_quarter_counts_from_start_month():
    # Start month February: Q1 = Feb..Apr 2026, Q4 = Nov 2026..Jan 2027.
    assert parse_period("2027-Q1", 2) == Period(dt.date(2026, 2, 1), dt.date(2026, 5, 1), QUARTER, "2027-Q1")
    assert parse_period("2027-Q4", 2) == Period(dt.date(2026, 11, 1), dt.date(2027, 2, 1), QUARTER, "2027-Q4")


def test_parse_quarter_october_start():
    # FY2017 from October 2016: Q2 = Jan..Mar 2017.
    assert parse_period("2017-Q2", 10) == Period(dt.date(2017, 1, 1), dt.date(2017, 4, 1), QUARTER, "2017-Q2")


def test_parse_quarter_lower_case_gives_canonical_label():
    assert parse_period("2017-q2", 1).label == "2017-Q2"


def test_parse_month_is_calendar_month_whatever_the_start():
    expected = Period(dt.date(2017, 3, 1), dt.date(2017, 4, 1), MONTH, "2017-03")
    assert parse_period("2017-03", 1) == expected
    assert parse_period("2017-03", 10) == expected


def test_parse_december_ends_next_january():
    assert parse_period("2017-12", 1).end == dt.date(2018, 1, 1)


def test_parse_strips_whitespace():
    assert parse_period(" 2017 ", 1).label == "2017"


@pytest.mark.parametrize("label", ["2017-13", "2017-Q5", "2017-00", "17", "2017-3", "Q2-2017", "", "0000", "9999-12"])
def test_parse_rejects_invalid_label(label):
    with pytest.raises(ValueError, match="Invalid period"):
        parse_period(label, 1)


def test_parse_rejects_first_year_with_late_start():
    # FY0001 with a February start would begin in year 0, which does not exist.
    with pytest.raises(ValueError, match="Invalid period"):
        parse_period("0001", 2)


def test_last_day_is_inclusive_end():
    assert parse_period("2017-Q2", 1).last_day == dt.date(2017, 6, 30)


def test_contains_is_half_open():
    march = parse_period("2017-03", 1)
    assert march.contains(dt.date(2017, 3, 31))
    assert not march.contains(dt.date(2017, 4, 1))


def test_utc_bounds_are_local_midnights():
    # CET (UTC+1) on March 1st, CEST (UTC+2) on April 1st.
    start, end = parse_period("2017-03", 1).utc_bounds(BERLIN)
    assert start == dt.datetime(2017, 2, 28, 23, tzinfo=dt.timezone.utc)
    assert end == dt.datetime(2017, 3, 31, 22, tzinfo=dt.timezone.utc)


def test_period_containing_quarter_october_start():
    # 2016-11-15 with an October start: FY2017 Q1 = Oct..Dec 2016.
    assert period_containing(dt.date(2016, 11, 15), QUARTER, 10).label == "2017-Q1"
    assert period_containing(dt.date(2017, 9, 30), QUARTER, 10).label == "2017-Q4"


def test_periods_covering_quarters_across_fiscal_years():
    quarters = periods_covering(dt.date(2026, 1, 15), dt.date(2026, 6, 1), QUARTER, 2)
    assert [quarter.label for quarter in quarters] == ["2026-Q4", "2027-Q1", "2027-Q2"]
    assert quarters[0].start == dt.date(2025, 11, 1)
    assert quarters[-1].end == dt.date(2026, 8, 1)


def test_periods_covering_months_include_both_ends():
    months = periods_covering(dt.date(2016, 12, 31), dt.date(2017, 2, 1), MONTH, 1)
    assert [month.label for month in months] == ["2016-12", "2017-01", "2017-02"]


def test_periods_covering_years_october_start():
    years = periods_covering(dt.date(2016, 9, 30), dt.date(2016, 10, 1), YEAR, 10)
    assert [year.label for year in years] == ["2016", "2017"]


def test_periods_covering_single_day():
    assert [year.label for year in periods_covering(dt.date(2017, 5, 5), dt.date(2017, 5, 5), YEAR, 1)] == ["2017"]


def test_periods_covering_empty_when_last_before_first():
    assert periods_covering(dt.date(2017, 5, 5), dt.date(2017, 1, 1), MONTH, 1) == []
