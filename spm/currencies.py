"""The one check of currency codes that settings, forms and imports share."""

import functools

from babel.numbers import list_currencies

# ISO 4217 reserves XXX for "no currency" and XTS for testing, so no amount or rate can be in either.
NOT_CURRENCIES = frozenset({"XXX", "XTS"})


@functools.cache
def _currency_codes() -> frozenset[str]:
    return frozenset(list_currencies()) - NOT_CURRENCIES


def is_currency_code(code: str) -> bool:
    """Return whether `code`, as written (upper case), is an ISO 4217 currency code, current or historic, per Babel's CLDR data."""
    return code in _currency_codes()
