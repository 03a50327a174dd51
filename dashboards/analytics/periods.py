"""Periods of the pipeline pages: a fiscal period label or an inclusive date range."""

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from spm.date_limits import check_computable_period
from spm.fiscal import Period, parse_period

RANGE = "range"
# A day as ISO 8601 (2017-03-31) or in German notation (31.03.2017), which German pages show.
_DAY = r"\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{4}"
# English pages show a day month first (03/31/2017), so that form is read month first, in English only.
_ENGLISH_DAY = rf"{_DAY}|\d{{1,2}}/\d{{1,2}}/\d{{4}}"
# Two days joined by ".." or by the en dash with which period names show a range.
_RANGE_PATTERN = re.compile(rf"^({_DAY})\s*(?:\.\.|–)\s*({_DAY})$")
_ENGLISH_RANGE_PATTERN = re.compile(rf"^({_ENGLISH_DAY})\s*(?:\.\.|–)\s*({_ENGLISH_DAY})$")


def date_range(first_day: dt.date, last_day: dt.date) -> Period:
    """Return the period `[first_day, last_day + 1 day)`, labelled `first..last` with the inclusive end."""
    return Period(
        start=first_day,
        end=last_day + dt.timedelta(days=1),
        kind=RANGE,
        label=f"{first_day.isoformat()}..{last_day.isoformat()}",
    )


def parse_period_or_range(text: str, fiscal_year_start_month: int) -> Period:
    """Parse a fiscal period (2017, 2017-Q2, 2017-03) or a date range.

    A range is `YYYY-MM-DD..YYYY-MM-DD` or `DD.MM.YYYY..DD.MM.YYYY`, and while
    English is active also `MM/DD/YYYY..MM/DD/YYYY`, the form English pages show.
    The notations may be mixed, the two days may be joined by an en dash instead
    of `..`, and the label is always the ISO form. The range's end date is
    inclusive; internally the period is half-open and ends the day after. Raises
    ValueError with a message naming the value for an unparsable text, an
    impossible date or an end before the start.
    """
    value = (text or "").strip()
    is_english = (get_language() or "").startswith("en")
    match = (_ENGLISH_RANGE_PATTERN if is_english else _RANGE_PATTERN).match(value)
    if match is None:
        if ".." in value or "–" in value:
            if is_english:
                message = _(
                    "Invalid date range %(value)r; use YYYY-MM-DD..YYYY-MM-DD, MM/DD/YYYY..MM/DD/YYYY or "
                    "DD.MM.YYYY..DD.MM.YYYY, e.g. 2017-01-01..2017-03-31."
                )
            else:
                message = _(
                    "Invalid date range %(value)r; use YYYY-MM-DD..YYYY-MM-DD or DD.MM.YYYY..DD.MM.YYYY, "
                    "e.g. 2017-01-01..2017-03-31."
                )
            raise ValueError(message % {"value": text})
        return parse_period(value, fiscal_year_start_month)

    try:
        first_day = _parse_day(match[1])
        last_day = _parse_day(match[2])
    except ValueError:
        raise ValueError(
            _("Invalid date range %(value)r: %(date)s is not a calendar date.")
            % {"value": text, "date": match[1] if not _is_date(match[1]) else match[2]}
        ) from None
    if last_day < first_day:
        raise ValueError(
            _("Invalid date range %(value)r: the end date is before the start date; write the earlier date first.")
            % {"value": text}
        )
    if last_day == dt.date.max:
        raise ValueError(_("Invalid date range %(value)r: the end date is too late.") % {"value": text})
    return date_range(first_day, last_day)


def parse_computable_period(text: str, fiscal_year_start_month: int, *, allow_range: bool = True) -> Period:
    """Parse a period from a request: `parse_period_or_range`, or `parse_period` without `allow_range`.

    Raises ValueError with a message naming `text` for an invalid period and for
    one with a day outside spm.date_limits.COMPUTABLE_RANGE, so that no query
    string reaches the date maths with a day it cannot convert to UTC.
    """
    if allow_range:
        period = parse_period_or_range(text, fiscal_year_start_month)
    else:
        period = parse_period(text, fiscal_year_start_month)
    try:
        return check_computable_period(period, (text or "").strip())
    except ValidationError as error:
        raise ValueError(error.messages[0]) from None


def range_input_text(period: Period, language: str) -> str:
    """Return a range as the pipeline pages' range field shows it: German notation for German, else ISO.

    Both notations parse back with `parse_period_or_range`.
    """
    if language.startswith("de"):
        return f"{period.start:%d.%m.%Y}..{period.last_day:%d.%m.%Y}"
    return period.label


def _parse_day(text: str) -> dt.date:
    """Parse `YYYY-MM-DD`, `MM/DD/YYYY` or `DD.MM.YYYY`; raise ValueError for a day that does not exist."""
    if "-" in text:
        return dt.date.fromisoformat(text)
    if "/" in text:
        month, day, year = (int(part) for part in text.split("/"))
        return dt.date(year, month, day)
    day, month, year = (int(part) for part in text.split("."))
    return dt.date(year, month, day)


def _is_date(text: str) -> bool:
    try:
        _parse_day(text)
    except ValueError:
        return False
    return True
