"""Half-up rounding of displayed numbers, shared by pages, charts, e-mails, the API and exports.

Every shown number is rounded half up (3,977.125 → 3,977.13, 0.5625 → 56.3 %). Babel and
Python's `round` round half to even, and a float such as 0.145 is slightly below its decimal
spelling in binary. So every display path rounds here first and hands the formatter a value
that needs no further rounding.
"""

from decimal import ROUND_HALF_UP, Decimal


def decimal_of(value) -> Decimal:
    """Convert an int, float or Decimal to Decimal; a float by its shortest repr, so 0.145 stays 0.145."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def round_half_up(value, places: int) -> Decimal:
    """Round `value` half up (away from zero on a tie) to `places` decimals; NaN and infinities are returned unchanged.

    -0.001 rounded to 2 places is 0.00 without a sign, so no "-0.00" is shown.
    """
    number = decimal_of(value)
    if not number.is_finite():
        return number
    result = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return result.copy_abs() if result.is_zero() else result
