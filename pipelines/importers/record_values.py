"""Values of CRM records sent as JSON, parsed with the file importers' parsers and RowRejected reasons."""

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_noop

from pipelines.importers.base import (
    CENT,
    RowRejected,
    check_length,
    parse_int,
)
from pipelines.importers.formats import (
    AMOUNT_TOO_LARGE,
    INVALID_NUMBER,
    TOO_MANY_DECIMALS,
    currency_marks_check,
    parse_bool,
    parse_day,
    parse_decimal,
    parse_moment,
)
from pipelines.models import MAX_MONEY_AMOUNT
from spm.date_limits import DateRange

# Value parsing shared by all record kinds. Records come from JSON, so a value may be a
# string, a number, a boolean or null; objects and lists are only valid for custom_fields.


def text_value(record: Mapping, name: str, max_length: int = 0) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float, Decimal)):
        text = str(value).strip()
    else:
        raise RowRejected(name, shown_value(value), gettext_noop("invalid value; expected text or a number"))
    if max_length:
        check_length(text, name, max_length)
    return text


def required_text(record: Mapping, name: str, max_length: int) -> str:
    text = text_value(record, name, max_length)
    if not text:
        raise RowRejected(name, "", gettext_noop("missing value"))
    return text


def money_value(record: Mapping, name: str, *, currency: str = "") -> Decimal | None:
    """Return an amount in cents, or None when missing; reject one above MAX_MONEY_AMOUNT or with more than two decimals.

    A separator that occurs once is the decimal separator, as in JSON numbers, so "1.234"
    and "1.234 $" are both one point two three four, and both are rejected rather than
    rounded. A separator before the other one or used more than once groups thousands
    (`1.234,56 €`, `1,234.56`, `1.234.567`). Given `currency`, a sign or code of another
    currency rejects the amount.

    A JSON number is taken as its value, so 1e300 is too large rather than an invalid text
    "1e+300", and a float that overflowed to infinity (1e400) is too large or negative.

    NOTE: the CRM sync sends its amounts through here too, so a HubSpot or Pipedrive amount
    with more than two decimals rejects its deal, and the sync run lists it.
    """
    raw = record.get(name)
    if isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        text = str(raw)
        amount = number_amount(raw, name)
    else:
        text = text_value(record, name)
        if not text:
            return None
        amount = parse_decimal(text, name, single_separator_decimal=True)
        if currency:
            currency_marks_check(text, name, currency)
    if amount < 0:
        raise RowRejected(name, text, gettext_noop("negative amount; amounts must be 0 or more"))
    if amount > MAX_MONEY_AMOUNT:
        raise RowRejected(name, text, AMOUNT_TOO_LARGE)
    if amount != amount.quantize(CENT):
        raise RowRejected(name, text, TOO_MANY_DECIMALS)
    return amount.quantize(CENT)


def number_amount(value: float | Decimal, name: str) -> Decimal:
    """Return a JSON number as a Decimal; reject NaN, which no comparison orders."""
    # repr gives the shortest text that reads back as the same float, so 0.1 stays 0.1 and not 0.1000000000000000055….
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if amount.is_nan():
        raise RowRejected(name, str(value), INVALID_NUMBER)
    return amount


def whole_number_value(record: Mapping, name: str, *, maximum: int = 2_147_483_647) -> int | None:
    text = text_value(record, name)
    if not text:
        return None
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return parse_int(text, name, maximum=maximum)


def moment_value(record: Mapping, name: str, time_zone, allowed: DateRange | None) -> dt.datetime | None:
    """Return the record's date or date and time as an aware datetime, or None when missing; see `parse_moment`."""
    text = text_value(record, name)
    return parse_moment(text, name, time_zone=time_zone, allowed=allowed) if text else None


def day_value(record: Mapping, name: str, allowed: DateRange | None = None) -> dt.date | None:
    text = text_value(record, name)
    return parse_day(text, name, allowed=allowed) if text else None


def bool_value(record: Mapping, name: str, default: bool) -> bool:
    value = record.get(name)
    if value is None or value == "":
        return default
    return parse_bool(text_value(record, name), name)


def shown_value(value: Any) -> str:
    return repr(value)[:200]


def duplicate_rejection(name: str, value: str, first_index: int) -> RowRejected:
    return RowRejected(
        name, value, gettext_noop("duplicate external id; the record at index %(index)d has it too"), index=first_index
    )
