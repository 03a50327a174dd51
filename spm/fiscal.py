"""Fiscal calendar: fiscal years, quarters and months of an organization.

A fiscal year is named by the calendar year in which it ends: with a start
month of February, FY2027 runs from 2026-02-01 to 2027-01-31. Quarters count
from the start month. Periods are half-open date ranges `[start, end)`, and a
timestamp belongs to the period containing its local date in the
organization's time zone.
"""

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

from django.utils.translation import gettext as _

YEAR, QUARTER, MONTH = "year", "quarter", "month"

_LABEL_PATTERNS = (
    (re.compile(r"^(?P<year>\d{4})$"), YEAR),
    (re.compile(r"^(?P<year>\d{4})-Q(?P<quarter>[1-4])$", re.IGNORECASE), QUARTER),
    (re.compile(r"^(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])$"), MONTH),
)


def add_months(day: dt.date, months: int) -> dt.date:
    """Return the first of the month `months` after `day`'s month."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date
    kind: str
    label: str

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def utc_bounds(self, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """Return `[start, end)` as aware datetimes: local midnights of the organization's zone."""
        return local_midnight(self.start, tz), local_midnight(self.end, tz)


def local_midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)


def fiscal_year_of(day: dt.date, start_month: int) -> int:
    if start_month == 1 or day.month < start_month:
        return day.year
    return day.year + 1


def fiscal_year(year: int, start_month: int) -> Period:
    start = dt.date(year if start_month == 1 else year - 1, start_month, 1)
    return Period(start=start, end=add_months(start, 12), kind=YEAR, label=str(year))


def fiscal_quarter(year: int, quarter: int, start_month: int) -> Period:
    start = add_months(fiscal_year(year, start_month).start, 3 * (quarter - 1))
    return Period(start=start, end=add_months(start, 3), kind=QUARTER, label=f"{year}-Q{quarter}")


def calendar_month(year: int, month: int) -> Period:
    start = dt.date(year, month, 1)
    return Period(start=start, end=add_months(start, 1), kind=MONTH, label=f"{year}-{month:02d}")


def period_containing(day: dt.date, kind: str, start_month: int) -> Period:
    if kind == MONTH:
        return calendar_month(day.year, day.month)
    year = fiscal_year_of(day, start_month)
    if kind == YEAR:
        return fiscal_year(year, start_month)
    months_into_year = (day.year * 12 + day.month) - (fiscal_year(year, start_month).start.year * 12 + start_month)
    return fiscal_quarter(year, months_into_year // 3 + 1, start_month)


def parse_period(label: str, start_month: int) -> Period:
    """Parse `2017` (fiscal year), `2017-Q2` (fiscal quarter) or `2017-03` (month)."""
    text = (label or "").strip()
    for pattern, kind in _LABEL_PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        year = int(match["year"])
        try:
            if kind == YEAR:
                return fiscal_year(year, start_month)
            if kind == QUARTER:
                return fiscal_quarter(year, int(match["quarter"]), start_month)
            return calendar_month(year, int(match["month"]))
        except ValueError:
            # Year 0 or a period ending after 9999-12-31: outside what `datetime.date` holds.
            break
    raise ValueError(
        _("Invalid period %(value)r; use a fiscal year (2017), a quarter (2017-Q2) or a month (2017-03).")
        % {"value": label}
    )


def periods_covering(first: dt.date, last: dt.date, kind: str, start_month: int) -> list[Period]:
    """Return every period of `kind` from the one containing `first` to the one containing `last`."""
    periods = []
    period = period_containing(first, kind, start_month)
    while period.start <= last:
        periods.append(period)
        period = period_containing(period.end, kind, start_month)
    return periods
