"""Formatting of coaching signal values, which carry their number format with them."""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.translation import gettext

from dashboards.templatetags.spm_format import format_value, undefined_html

register = template.Library()


@register.simple_tag(takes_context=True)
def signal_value(context, value, value_format):
    """Render a signal's value (a Decimal or its text, as stored in an agenda item) in its format.

    `value_format` is one of the formats of dashboards.display; money is in
    the organization's currency. None or unparsable text renders as "–".
    """
    try:
        number = Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        return undefined_html(gettext("No value for this period."))
    organization = context.get("organization")
    currency = organization.currency if organization is not None else "EUR"
    return format_value(number, value_format, currency)
