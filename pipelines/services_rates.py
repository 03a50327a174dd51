"""Exchange rates: reading rate files, storing them, and converting deals to the base currency set-based.

An ExchangeRate row is "units of the organization's base currency per 1 unit of
`currency`", valid from its date until the next row of that currency. Two file shapes
are accepted:

- The ECB reference rates shape: `Date,USD,JPY,…` with one row per day and units of each
  currency per 1 EUR. For base EUR the stored rate is 1 / value. For another base B the
  rate of X is value(B) / value(X), and the rate of EUR is value(B); a day without a
  value for B is rejected. Cells "N/A" or blank mean no rate that day.
- A plain `currency,date,rate` list whose rates are already base units per 1 unit.

In a rate, a separator that occurs once is the decimal separator (`1.0898`, `27.023`,
`27,023`), unlike in amounts, where `1.234` is a thousand.

Both shapes reject, row by row, a currency that is no ISO 4217 code, a date outside
spm.date_limits.planning_range (01.01.2000 to 5 years after today), a date that repeats
an earlier row's (for the list: the same currency and date), and a rate that is not
positive or, rounded to 8 places, lies outside 0.00000001 to 1,000,000,000 (MAX_RATE).
The list also rejects a row for the base currency, whose rate is always 1.
"""

import datetime as dt
import logging
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import (
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import Round, TruncDate
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from pipelines.importers.base import ImportSourceError, RowError, RowRejected
from pipelines.importers.formats import Table, parse_day, parse_decimal, table_read
from pipelines.importers.upload_checks import (
    WORKBOOK_SUFFIXES,
    no_data_rows_error,
    table_file_check,
)
from pipelines.models import Deal, DealStatus, ExchangeRate
from pipelines.services import kpi_recompute_schedule
from pipelines.upload_limits import workbook_size_check
from spm.currencies import is_currency_code
from spm.date_limits import DateRange, planning_range
from spm.models import AuditLog, Organization, User

logger = logging.getLogger(__name__)

RATE_PLACES = Decimal("0.00000001")
# ExchangeRate.rate is DecimalField(max_digits=18, decimal_places=8), which holds up to
# 9,999,999,999.99999999. SQLite stores decimals as floats, and a value that close to the
# maximum reads back as 10,000,000,000, which the field rejects, so rates stop at 1e9.
MAX_RATE = Decimal("1000000000")
ECB_BASE = "EUR"
MISSING_MARKS = ("", "N/A", "NA", "-")


def exchange_rates_parse(
    *, path: Path, base_currency: str, today: dt.date | None = None, date_order: str = ""
) -> tuple[dict[tuple[str, dt.date], Decimal], list[RowError]]:
    """Read a rate file into {(currency, valid_from): base units per 1 unit} and the rejected rows.

    Dates must lie in planning_range(`today`), where `today` is the organization's local
    date (default: today in the active time zone).
    `date_order` ("dmy", "mdy" or "") is how slashed dates are read, as in `parse_day`.
    """
    table_file_check(path)
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        workbook_size_check(path, path.name)
    table = table_read(path)
    lowered = {name.strip().lower(): name for name in table.header}
    allowed_days = planning_range(today or timezone.localdate())
    if {"currency", "date", "rate"} <= lowered.keys():
        return _rate_list_parse(
            table, lowered, base_currency=base_currency, allowed_days=allowed_days, date_order=date_order
        )
    return _ecb_parse(table, lowered, base_currency=base_currency, allowed_days=allowed_days, date_order=date_order)


def _day_checked(text: str, column: str, *, allowed_days: DateRange, date_order: str) -> dt.date:
    """Return the date in `text`, rejecting it unless it lies in `allowed_days`."""
    day = parse_day(text, column, date_order=date_order)
    if not allowed_days.contains(day):
        raise RowRejected(
            column,
            text,
            gettext_noop("%(value)s is outside the allowed range; enter a date from %(earliest)s to %(latest)s."),
            value=day,
            earliest=allowed_days.earliest,
            latest=allowed_days.latest,
        )
    return day


def _rate_list_parse(
    table: Table, lowered: dict[str, str], *, base_currency: str, allowed_days: DateRange, date_order: str
) -> tuple[dict[tuple[str, dt.date], Decimal], list[RowError]]:
    if not table.rows:
        raise no_data_rows_error(table.file_name)
    currency_column, date_column, rate_column = lowered["currency"], lowered["date"], lowered["rate"]
    rates: dict[tuple[str, dt.date], Decimal] = {}
    errors: list[RowError] = []
    first_lines: dict[tuple[str, dt.date], int] = {}
    for line, row in table.rows:
        try:
            currency = _currency_checked(row[currency_column], currency_column)
            if currency == base_currency:
                raise RowRejected(
                    currency_column,
                    row[currency_column],
                    gettext_noop("the base currency needs no rate, because its rate is always 1; remove the row"),
                )
            day = _day_checked(row[date_column], date_column, allowed_days=allowed_days, date_order=date_order)
            rate = _rate_checked(_rate_number(row[rate_column], rate_column), rate_column, row[rate_column])
            if (currency, day) in first_lines:
                raise RowRejected(
                    date_column,
                    row[date_column],
                    gettext_noop("repeats line %(line)d; keep one of them"),
                    line=first_lines[(currency, day)],
                )
        except RowRejected as rejection:
            errors.append(RowError.from_rejection(table.file_name, line, rejection))
            continue
        first_lines[(currency, day)] = line
        rates[(currency, day)] = rate
    return rates, errors


def _ecb_parse(
    table: Table, lowered: dict[str, str], *, base_currency: str, allowed_days: DateRange, date_order: str
) -> tuple[dict[tuple[str, dt.date], Decimal], list[RowError]]:
    date_column = lowered.get("date")
    currencies = [
        name for name in table.header if name != date_column and len(name.strip()) == 3 and name.strip().isalpha()
    ]
    if date_column is None or not currencies:
        raise ImportSourceError(
            gettext(
                "File %(file)s is neither the ECB shape (Date,USD,JPY,…) nor a list with the columns "
                "currency, date and rate."
            )
            % {"file": table.file_name}
        )
    unknown = [name.strip() for name in currencies if not is_currency_code(name.strip().upper())]
    if unknown:
        raise ImportSourceError(
            gettext("File %(file)s has columns that are no ISO 4217 currency codes: %(columns)s.")
            % {"file": table.file_name, "columns": ", ".join(unknown)}
        )
    if base_currency != ECB_BASE and base_currency not in currencies:
        raise ImportSourceError(
            gettext("File %(file)s has no column %(currency)s, so its rates per euro cannot be converted to %(currency)s.")
            % {"file": table.file_name, "currency": base_currency}
        )
    if not table.rows:
        raise no_data_rows_error(table.file_name)
    rates: dict[tuple[str, dt.date], Decimal] = {}
    errors: list[RowError] = []
    first_lines: dict[dt.date, int] = {}
    for line, row in table.rows:
        try:
            day = _day_checked(row[date_column], date_column, allowed_days=allowed_days, date_order=date_order)
            if day in first_lines:
                raise RowRejected(
                    date_column, row[date_column], gettext_noop("repeats line %(line)d; keep one of them"), line=first_lines[day]
                )
            day_rates = _ecb_row_rates(row, currencies, base_currency)
        except RowRejected as rejection:
            errors.append(RowError.from_rejection(table.file_name, line, rejection))
            continue
        first_lines[day] = line
        rates.update({(currency, day): rate for currency, rate in day_rates.items()})
    return rates, errors


def _ecb_row_rates(row: dict[str, str], currencies: list[str], base_currency: str) -> dict[str, Decimal]:
    """Return the base units per unit of each currency with a value in this ECB row; reject the row if one is unusable."""
    per_euro = {}
    cells = {}
    for column in currencies:
        text = row.get(column, "").strip()
        if text.upper() in MISSING_MARKS:
            continue
        currency = column.strip().upper()
        per_euro[currency] = _positive(_rate_number(text, column), column, text)
        cells[currency] = (column, text)
    if base_currency == ECB_BASE:
        base_per_euro = Decimal(1)
    elif base_currency in per_euro:
        base_per_euro = per_euro[base_currency]
    else:
        raise RowRejected(base_currency, row.get(base_currency, ""), gettext_noop("no rate for the base currency on this day"))

    day_rates = {}
    if base_currency != ECB_BASE:
        day_rates[ECB_BASE] = _rate_checked(base_per_euro, *cells[base_currency])
    for currency, value in per_euro.items():
        if currency != base_currency:
            day_rates[currency] = _rate_checked(base_per_euro / value, *cells[currency])
    return day_rates


def _rate_number(text: str, column: str) -> Decimal:
    """Parse a rate: a separator that occurs once is the decimal separator, so `27.023` and `27,023` are 27.023.

    Rates often have three or more decimals, so the amounts' rule that reads `1.234` as
    thousands would make them a thousand times too large.
    """
    return parse_decimal(text, column, single_separator_decimal=True)


def _currency_checked(text: str, column: str) -> str:
    currency = text.strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise RowRejected(column, text, gettext_noop("not a three-letter ISO currency code"))
    if not is_currency_code(currency):
        raise RowRejected(column, text, gettext_noop("not an ISO 4217 currency code; use a code such as EUR, CHF or USD"))
    return currency


def _positive(value: Decimal, column: str, text: str) -> Decimal:
    if value <= 0:
        raise RowRejected(column, text, gettext_noop("a rate must be greater than 0"))
    return value


def _rate_checked(value: Decimal, column: str, text: str) -> Decimal:
    """Return `value` rounded half-up to 8 places, rejecting it unless the result lies in [0.00000001, MAX_RATE].

    `text` is the file's cell that `value` comes from: the rate itself, or an ECB rate per euro.
    """
    _positive(value, column, text)
    # Compared before rounding, because quantize() fails on a value with more digits than the context holds.
    if value > MAX_RATE or value.quantize(RATE_PLACES, rounding=ROUND_HALF_UP) < RATE_PLACES:
        raise RowRejected(
            column, text, gettext_noop("rate out of range; allowed are 0.00000001 to 1,000,000,000")
        )
    return value.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def exchange_rates_import(
    *, organization: Organization, path: Path, actor: User | None = None, date_order: str = ""
) -> dict:
    """Store the rates of a rate file, recompute the affected deals' base amounts and schedule a KPI recompute.

    One transaction: rows with a bad value are rejected and reported, the others are
    written. Messages and rejected rows name the file by `path.name`. Returns
    {"created", "updated", "unchanged", "deals_recomputed", "errors"}.
    """
    rates, errors = exchange_rates_parse(
        path=path,
        base_currency=organization.currency,
        today=timezone.localdate(timezone=organization.tzinfo),
        date_order=date_order,
    )

    with transaction.atomic():
        existing = {
            (rate.currency, rate.valid_from): rate
            for rate in ExchangeRate.objects.filter(organization=organization, currency__in={key[0] for key in rates})
        }
        to_create, to_update = [], []
        for (currency, day), value in rates.items():
            current = existing.get((currency, day))
            if current is None:
                to_create.append(ExchangeRate(organization=organization, currency=currency, valid_from=day, rate=value))
            elif current.rate != value:
                current.rate = value
                to_update.append(current)
        ExchangeRate.objects.bulk_create(to_create, batch_size=1000)
        ExchangeRate.objects.bulk_update(to_update, ["rate"], batch_size=1000)
        changed_currencies = {rate.currency for rate in to_create + to_update}
        recomputed = deal_base_amount_refresh(organization=organization, currencies=changed_currencies) if changed_currencies else 0
        summary = {
            "created": len(to_create),
            "updated": len(to_update),
            "unchanged": len(rates) - len(to_create) - len(to_update),
            "deals_recomputed": recomputed,
            "rejected_rows": len(errors),
        }
        AuditLog.objects.create(
            organization=organization,
            actor=actor,
            action="exchange_rates.imported",
            object_type="exchange_rate",
            object_id=path.name[:64],
            after=summary,
        )
        # Nothing changed: the deals and snapshots already use these rates.
        if recomputed:
            kpi_recompute_schedule(organization_id=organization.pk)
    logger.info(
        "Exchange rates imported organization_id=%s created=%s updated=%s deals_recomputed=%s rejected=%s",
        organization.pk,
        summary["created"],
        summary["updated"],
        recomputed,
        len(errors),
    )
    return {**summary, "errors": errors}


def deal_base_amount_refresh(*, organization: Organization, currencies: set[str] | None = None, today: dt.date | None = None) -> int:
    """Recompute `base_amount` of deals in `currencies` (None: all foreign ones) with two UPDATE statements.

    A closed deal uses the rate valid on its close date in the organization's time zone,
    an open deal the latest rate valid on `today` (default: today there). Amounts are
    rounded to cents. A deal without an amount or without a rate valid then keeps its
    base amount. Returns the number of deals updated.
    """
    if today is None:
        today = timezone.localdate(timezone=organization.tzinfo)
    deals = Deal.all_objects.filter(organization=organization, amount__isnull=False).exclude(currency=organization.currency)
    if currencies is not None:
        deals = deals.filter(currency__in=currencies)
    rates = ExchangeRate.objects.filter(organization=organization, currency=OuterRef("currency"))
    closed_at = ExpressionWrapper(OuterRef("closed_at"), output_field=DateTimeField())
    close_day = TruncDate(closed_at, tzinfo=organization.tzinfo)
    close_rate = rates.filter(valid_from__lte=close_day).order_by("-valid_from").values("rate")[:1]
    today_rate = rates.filter(valid_from__lte=Value(today)).order_by("-valid_from").values("rate")[:1]
    money = DecimalField(max_digits=18, decimal_places=2)

    updated = 0
    closed = deals.exclude(status=DealStatus.OPEN).filter(closed_at__isnull=False)
    updated += closed.filter(Exists(close_rate)).update(
        base_amount=Round(F("amount") * Subquery(close_rate), 2, output_field=money)
    )
    open_deals = deals.filter(status=DealStatus.OPEN)
    updated += open_deals.filter(Exists(today_rate)).update(
        base_amount=Round(F("amount") * Subquery(today_rate), 2, output_field=money)
    )
    logger.info("Deal base amounts recomputed organization_id=%s deals=%s", organization.pk, updated)
    return updated
