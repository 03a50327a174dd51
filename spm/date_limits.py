"""Allowed ranges for the dates that users enter in the goals and coaching forms.

Periods become local midnights converted to UTC (spm.fiscal.local_midnight), which
raises OverflowError for days near `datetime.date.min` and `datetime.date.max`.
A far-off date, such as a 1:1 in 9999 or an assessment dated 2099, is also a typing
error that would stay in reports for good. So every entered date lies between
EARLIEST_DATE and a latest date that depends on the field:
- `past_range`: things that have happened, such as a skill assessment, end today.
- `planning_range`: things being planned, such as a 1:1, a contest or a due date,
  end PLANNING_YEARS after today.
Dates and periods in query strings (filters, `as_of`, `period`) lie in COMPUTABLE_RANGE.
"""

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from spm.fiscal import Period
from spm.widgets import IsoDateInput

EARLIEST_DATE = dt.date(2000, 1, 1)
# Years after today up to which a 1:1, a contest or a due date may be planned: room for
# long-range planning, while typing errors such as 2062 for 2026 or 9999 are rejected.
PLANNING_YEARS = 5
# Latest stored date that reads compute with; rows saved before these checks may lie beyond it.
LATEST_COMPUTABLE_DATE = dt.date(2100, 12, 31)


def short_date(day: dt.date) -> str:
    """Format `day` in the active language: 31.12.2026 in German, 12/31/2026 in English."""
    return date_format(day, "SHORT_DATE_FORMAT")


def years_after(day: dt.date, years: int) -> dt.date:
    """Return the same day `years` later; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class DateRange:
    """The inclusive range `[earliest, latest]` of an entered date; `ends_today` words the error for the future."""

    earliest: dt.date
    latest: dt.date
    ends_today: bool = False

    def contains(self, day: dt.date) -> bool:
        return self.earliest <= day <= self.latest

    def limit_widget(self, field) -> None:
        """Set the `min` and `max` attributes of a date field's widget, so the browser's date picker offers only the range."""
        field.widget.attrs.update(min=self.earliest.isoformat(), max=self.latest.isoformat())

    def check(self, day: dt.date) -> dt.date:
        """Return `day`, or raise ValidationError naming it and the allowed range."""
        if self.contains(day):
            return day
        params = {"value": short_date(day), "earliest": short_date(self.earliest), "latest": short_date(self.latest)}
        if self.ends_today and day > self.latest:
            message = _("%(value)s is in the future; enter a date from %(earliest)s to today, %(latest)s.")
        else:
            message = _("%(value)s is outside the allowed range; enter a date from %(earliest)s to %(latest)s.")
        raise ValidationError(message % params, code="date_out_of_range")

    def contains_period(self, period: Period) -> bool:
        """Return whether every day of `period`, from its first to its last, is in the range."""
        return self.earliest <= period.start and period.last_day <= self.latest

    def check_period(self, period: Period, text: str) -> Period:
        """Return `period` if its first day is in the range, else raise ValidationError naming `text` and the range."""
        if self.contains(period.start):
            return period
        params = {
            "value": text,
            "start": short_date(period.start),
            "earliest": short_date(self.earliest),
            "latest": short_date(self.latest),
        }
        raise ValidationError(
            _(
                "The period %(value)s starts on %(start)s, outside the allowed range; "
                "enter a period that starts from %(earliest)s to %(latest)s."
            )
            % params,
            code="period_out_of_range",
        )


def past_range(today: dt.date) -> DateRange:
    """Return the range of a date on which something has already happened: EARLIEST_DATE to `today`."""
    return DateRange(earliest=EARLIEST_DATE, latest=today, ends_today=True)


def planning_range(today: dt.date) -> DateRange:
    """Return the range of a planned date: EARLIEST_DATE to PLANNING_YEARS after `today`."""
    return DateRange(earliest=EARLIEST_DATE, latest=years_after(today, PLANNING_YEARS))


# The dates that KPI reads and filters compute with. A date or period taken from a query string
# must lie in this range, because the local midnights of days near `datetime.date.min` and
# `datetime.date.max` cannot be converted to UTC.
COMPUTABLE_RANGE = DateRange(earliest=EARLIEST_DATE, latest=LATEST_COMPUTABLE_DATE)


def check_computable_period(period: Period, text: str) -> Period:
    """Return `period` if all its days are in COMPUTABLE_RANGE, else raise ValidationError naming `text` and the range."""
    COMPUTABLE_RANGE.check_period(period, text)
    if period.last_day <= COMPUTABLE_RANGE.latest:
        return period
    params = {
        "value": text,
        "end": short_date(period.last_day),
        "latest": short_date(COMPUTABLE_RANGE.latest),
    }
    raise ValidationError(
        _("The period %(value)s ends on %(end)s, outside the allowed range; enter a period that ends by %(latest)s.")
        % params,
        code="period_out_of_range",
    )


class FilterDateField(forms.DateField):
    """A date filter of a query string, limited to COMPUTABLE_RANGE.

    The error names the value and the range, and the browser's date picker offers only the range.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", IsoDateInput())
        super().__init__(**kwargs)
        COMPUTABLE_RANGE.limit_widget(self)

    def validate(self, value):
        super().validate(value)
        if value not in self.empty_values:
            COMPUTABLE_RANGE.check(value)
