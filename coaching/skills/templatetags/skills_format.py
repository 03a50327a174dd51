"""Template tags of the skills pages: a goal's values in the unit of its indicator."""

from django import template
from django.utils.translation import gettext as _

from coaching.skills.indicators import IndicatorValue, format_indicator_value
from dashboards.templatetags.spm_format import (
    format_percent,
    undefined_html,
)

register = template.Library()


@register.simple_tag(takes_context=True)
def goal_value(context, indicator: str, value):
    """Render an IndicatorValue or a plain Decimal in the indicator's unit; "–" with the reason when undefined."""
    reason = ""
    if isinstance(value, IndicatorValue):
        value, reason = value.value, value.reason
    if value is None:
        return undefined_html(reason or _("Not defined for this selection."))
    organization = context.get("organization")
    return format_indicator_value(indicator, value, organization.currency if organization is not None else "EUR")


@register.simple_tag
def progress_value(progress: IndicatorValue):
    """Render a goal's progress share as a percentage, or "–" with the reason."""
    if progress.value is None:
        return undefined_html(progress.reason)
    return format_percent(progress.value)


@register.simple_tag
def gap_value(gap: int | None):
    """Render a rating gap (self minus manager) with its sign, +1, 0 or −2; "–" unless both ratings exist."""
    if gap is None:
        return undefined_html(_("Needs both a manager rating and a self-assessment of this competency."))
    if gap > 0:
        return f"+{gap}"
    return str(gap).replace("-", "\u2212")
