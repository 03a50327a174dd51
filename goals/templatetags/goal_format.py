"""Template filters for goal values: a metric's value in its unit, and a rank label."""

from django import template
from django.utils.translation import gettext

from dashboards.templatetags.spm_format import format_money, format_number, format_percent, undefined_html
from goals.attainment import COUNT_METRICS

register = template.Library()


@register.simple_tag(takes_context=True)
def metric_value(context, value, metric, reason=""):
    """Render a value of quota metric `metric`: a count, or money in the organization's currency."""
    if value is None:
        return undefined_html(reason or gettext("Not defined for this selection."))
    if metric in COUNT_METRICS:
        return format_number(value)
    organization = context.get("organization")
    return format_money(value, organization.currency if organization is not None else "EUR")


@register.simple_tag
def ratio_value(value, reason=""):
    """Render a ratio as a percentage, or "–" with `reason` in its tooltip when undefined."""
    if value is None:
        return undefined_html(reason or gettext("Not defined for this selection."))
    return format_percent(value)
