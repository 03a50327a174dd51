"""Locale-aware number formatting for templates, backed by Babel (CLDR data).

The active Django language picks the Babel locale, so German pages read
`1.234,56 €`, `37,5 %` and `12,5 Tage`, English pages `€1,234.56`, `37.5%` and
`12.5 days`. Every function rounds half up with `spm.rounding.round_half_up` before
Babel formats, because Babel rounds half to even (3,977.125 would read 3,977.12). Babel puts a no-break space (U+00A0) between number and unit
where the locale has one, so a unit never wraps onto its own line.

A value of None is an undefined KPI: it renders as a focusable "–" whose
tooltip gives the reason, never as 0.
"""

import datetime as dt
import functools
from decimal import Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_precision,
    parse_pattern,
)
from babel.numbers import format_percent as format_percent_babel
from babel.units import format_unit
from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import get_language, gettext, to_locale

from dashboards import display
from dashboards.analytics.periods import (
    RANGE,
    date_range,
    parse_period_or_range,
    range_input_text,
)
from spm.fiscal import MONTH, QUARTER, YEAR, Period
from spm.rounding import round_half_up

register = template.Library()


def current_locale() -> Locale:
    """Return the Babel locale of the active Django language, English when Babel lacks it."""
    return _locale_of(get_language() or "en")


# Parsing a locale took about 15 µs, and a dashboard formats thousands of values per page.
@functools.lru_cache(maxsize=32)
def _locale_of(language: str) -> Locale:
    try:
        return Locale.parse(to_locale(language))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _one_decimal(pattern_text: str, value, locale: Locale) -> str:
    pattern = parse_pattern(pattern_text)
    pattern.frac_prec = (1, 1)
    return pattern.apply(value, locale)


def format_money(value, currency: str, locale: Locale | None = None) -> str:
    """Format an amount with the currency's symbol and its usual decimals (two for EUR, none for JPY), rounded half up."""
    rounded = round_half_up(value, get_currency_precision(currency))
    return format_currency(rounded, currency, locale=locale or current_locale())


def format_percent(ratio, locale: Locale | None = None) -> str:
    """Format a ratio (0.375) as a percentage with one decimal (37,5 % / 37.5%)."""
    locale = locale or current_locale()
    # One decimal of the percentage is three of the ratio: 0.5625 → 0.563 → 56.3 %.
    return _one_decimal(locale.percent_formats[None].pattern, round_half_up(ratio, 3), locale)


def format_whole_percent(value, locale: Locale | None = None) -> str:
    """Format a whole percentage (40, not 0.4) without decimals (40 % / 40%)."""
    return format_percent_babel(Decimal(value) / 100, locale=locale or current_locale())


def format_days(days, locale: Locale | None = None) -> str:
    """Format a number of days with one decimal and the locale's unit word (12,5 Tage)."""
    locale = locale or current_locale()
    text = format_unit(round_half_up(days, 1), "duration-day", locale=locale, format="#,##0.0")
    # CLDR's unit patterns use a plain space; a no-break space keeps "Tage" beside its number.
    return text.replace(" ", "\xa0")


def format_number(value, locale: Locale | None = None) -> str:
    """Format a count or plain number with the locale's grouping (1.234 / 1,234), at most 3 decimals rounded half up."""
    # The locale's decimal pattern (#,##0.###) shows at most 3 decimals.
    return format_decimal(round_half_up(value, 3), locale=locale or current_locale())


def format_fixed(value, places: int, locale: Locale | None = None) -> str:
    """Format a number rounded to exactly `places` decimals, with the locale's grouping (1.234,5 / 1,234.5)."""
    pattern = "#,##0." + "0" * places if places > 0 else "#,##0"
    return format_decimal(round_half_up(value, places), format=pattern, locale=locale or current_locale())


def format_value(value, value_format: str, currency: str) -> str:
    """Format a defined value in one of the formats named in dashboards.display."""
    if value_format == display.MONEY:
        return format_money(value, currency)
    if value_format == display.MONEY_PER_DAY:
        return gettext("%(amount)s per day") % {"amount": format_money(value, currency)}
    if value_format == display.PERCENT:
        return format_percent(value)
    if value_format == display.DAYS:
        return format_days(value)
    return format_number(value)


def undefined_html(reason: str):
    # str() turns a lazy translation into the active language's text before it becomes a cache key.
    return _undefined_html(str(reason))


# A dashboard with 300 reps renders a few thousand of these from a few dozen reasons.
@functools.lru_cache(maxsize=512)
def _undefined_html(reason: str):
    return format_html('<span class="undefined-value" title="{}" tabindex="0">–</span>', reason)


def _generic_reason() -> str:
    return gettext("Not defined for this selection.")


def is_date_only(value: dt.datetime) -> bool:
    """Tell whether `value` is the stored form of a date-only source value: exactly 12:00:00.000000 UTC.

    Importers store a source value without a time (a CSV date column) as 12:00 UTC of its
    date (pipelines.importers.base.date_at_noon_utc), so that the date is the same local date
    from UTC−11 to UTC+11. A real time at exactly that microsecond is taken as date-only too.
    """
    if timezone.is_naive(value):
        return False
    utc = value.astimezone(dt.timezone.utc)
    return (utc.hour, utc.minute, utc.second, utc.microsecond) == (12, 0, 0, 0)


@register.filter
def date_or_datetime(value: dt.datetime | None) -> str:
    """Format a deal or stage-change time with SHORT_DATETIME_FORMAT, or its date only when it is date-only.

    A date-only value (see `is_date_only`) shows its UTC date with SHORT_DATE_FORMAT, because
    the 12:00 UTC time is not in the source: 20.10.2016 rather than 20.10.2016 14:00. A real time
    shows in the active time zone, as the `date` filter shows it. None renders as "".
    """
    if value is None:
        return ""
    if is_date_only(value):
        return date_format(value.astimezone(dt.timezone.utc).date(), "SHORT_DATE_FORMAT")
    return date_format(timezone.template_localtime(value), "SHORT_DATETIME_FORMAT")


@register.filter
def date_of(value: dt.datetime | None) -> str:
    """Format the date of a deal time with SHORT_DATE_FORMAT: the UTC date of a date-only value, else the local date."""
    if value is None:
        return ""
    if is_date_only(value):
        return date_format(value.astimezone(dt.timezone.utc).date(), "SHORT_DATE_FORMAT")
    return date_format(timezone.template_localtime(value).date(), "SHORT_DATE_FORMAT")


@register.filter
def money(value, currency):
    """`{{ amount|money:organization.currency }}`."""
    if value is None or value == "":
        return undefined_html(_generic_reason())
    return format_money(value, currency)


@register.filter
def percent(value):
    """`{{ ratio|percent }}` for a ratio between 0 and 1."""
    if value is None or value == "":
        return undefined_html(_generic_reason())
    return format_percent(value)


@register.filter
def whole_percent(value):
    """`{{ 40|whole_percent }}` for a percentage between 0 and 100, such as a win probability or a progress."""
    if value is None or value == "":
        return undefined_html(_generic_reason())
    return format_whole_percent(value)


@register.filter
def days(value):
    if value is None or value == "":
        return undefined_html(_generic_reason())
    return format_days(value)


@register.filter
def number(value):
    if value is None or value == "":
        return undefined_html(_generic_reason())
    return format_number(value)


@register.filter
def amount_input(value) -> str:
    """Format an amount as an input field's value in the locale's notation (12.345,67 / 12,345.67); empty for None.

    The amount fields read both notations back, so a German user can submit the value unchanged.
    """
    if value is None or value == "":
        return ""
    return format_decimal(round_half_up(value, 2), format="#,##0.00", locale=current_locale())


@register.simple_tag(takes_context=True)
def kpi_value(context, row, key, reason=""):
    """Render one KPI of a KpiRow with its format, or "–" with the KPI's undefined reason.

    `row` may be None, for a subject without a snapshot row in the period:
    its counts and amounts are then 0 because nothing happened, and its
    ratios are undefined. `reason` replaces the KPI's own undefined reason.
    """
    kpi = display.KPIS[key]
    if row is None:
        value = None if kpi.undefined_reason else 0
    else:
        value = getattr(row, key)
    return kpi_format(context, value, key, reason)


@register.simple_tag(takes_context=True)
def kpi_format(context, value, key, reason=""):
    """Render a value in the format of KPI `key`, in the organization's currency."""
    kpi = display.KPIS[key]
    if value is None:
        return undefined_html(reason or kpi.undefined_reason or _generic_reason())
    organization = context.get("organization")
    currency = organization.currency if organization is not None else "EUR"
    return format_value(value, kpi.value_format, currency)


@register.simple_tag(takes_context=True)
def period_label_name(context, label: str) -> str:
    """Human name of a stored period label such as `2017-Q4` or `2017-01-01..2017-03-31`.

    The organization's fiscal calendar reads the label. A label that does not parse is shown as stored.
    """
    organization = context.get("organization")
    try:
        period = parse_period_or_range(label, organization.fiscal_year_start_month if organization is not None else 1)
    except ValueError:
        return label
    return period_name(period)


@register.filter
def period_name(period: Period) -> str:
    """Human name of a period: `FY 2017`, `Q2 FY 2017`, `March 2017`, `01.01.2017 – 31.03.2017` (localized)."""
    if period.kind == RANGE:
        return f"{date_format(period.start, 'SHORT_DATE_FORMAT')} – {date_format(period.last_day, 'SHORT_DATE_FORMAT')}"
    if period.kind == YEAR:
        return gettext("FY %(year)s") % {"year": period.label}
    if period.kind == QUARTER:
        year, quarter = period.label.split("-")
        return gettext("%(quarter)s FY %(year)s") % {"quarter": quarter.upper(), "year": year}
    if period.kind == MONTH:
        return format_date(period.start, "LLLL y", locale=current_locale())
    return period.label


@register.filter
def range_input(period: Period | None) -> str:
    """`{{ period|range_input }}`: a date range in the notation of the range field, empty for other periods."""
    if getattr(period, "kind", None) != RANGE:
        return ""
    return range_input_text(period, get_language() or "en")


@register.simple_tag
def range_input_example() -> str:
    """Return an example range in the notation of the range field (01.01.2017..31.03.2017 in German)."""
    return range_input_text(date_range(dt.date(2017, 1, 1), dt.date(2017, 3, 31)), get_language() or "en")
