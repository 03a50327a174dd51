"""Factors of a win probability in words, in the active language.

A stored factor is `{"factor", "value", "effect"}` (see pipelines.scoring.model.Factor).
The text names the feature and the deal's value and states whether it raises or lowers
the probability, e.g. "Time in current stage 45 days (lowers the probability)".
"""

import functools
import json
from collections.abc import Iterable
from decimal import Decimal

from django.utils.translation import get_language, gettext, gettext_lazy, ngettext

from dashboards.templatetags.spm_format import format_money, format_number, format_percent


def factor_text(factor: dict, *, currency: str) -> str:
    """Return one factor as a sentence fragment with its direction."""
    description = factor_description(factor["factor"], factor["value"], currency=currency)
    if factor["effect"] > 0:
        return gettext("%(factor)s (raises the probability)") % {"factor": description}
    return gettext("%(factor)s (lowers the probability)") % {"factor": description}


def factors_text(factors: list[dict], *, currency: str) -> list[str]:
    return [factor_text(factor, currency=currency) for factor in factors]


def factors_text_many(
    factor_lists: Iterable[list[dict]], *, currency: str, limit: int | None = None
) -> list[list[str]]:
    """Word the factors of many scores at once; one list of texts per score.

    `limit` keeps the first `limit` factors of each score, which are its largest.
    The texts come from a cache per language, currency and factor value. The deals of a
    page share factor values (an owner's win rate, a sector, an amount band), and each
    text costs two catalog lookups and a Babel number format.
    """
    language = get_language()
    return [
        [
            _factor_text_cached(
                language, currency, factor["factor"], json.dumps(factor["value"], sort_keys=True), factor["effect"] > 0
            )
            for factor in factors[:limit]
        ]
        for factors in factor_lists
    ]


@functools.lru_cache(maxsize=4096)
def _factor_text_cached(language: str | None, currency: str, name: str, value_json: str, raises: bool) -> str:
    # `language` only keys the cache, because factor_text reads the active language, which is `language`.
    factor = {"factor": name, "value": json.loads(value_json), "effect": 1 if raises else -1}
    return factor_text(factor, currency=currency)


def factor_description(name: str, value, *, currency: str) -> str:
    """Describe the deal's value of one feature, without the direction."""
    if name == "age_days":
        return ngettext("Deal age %(days)s day", "Deal age %(days)s days", value) % {"days": format_number(value)}
    if name == "stage_days":
        return ngettext("Time in current stage %(days)s day", "Time in current stage %(days)s days", value) % {
            "days": format_number(value)
        }
    if name == "activity_count":
        return ngettext("%(count)s activity so far", "%(count)s activities so far", value) % {
            "count": format_number(value)
        }
    if name == "owner_win_rate":
        return _owner_text(value)
    if name == "stage":
        return gettext("Stage %(name)s") % {"name": value}
    if name == "product":
        return gettext("Product %(name)s") % {"name": value} if value else gettext("No product")
    if name == "sector":
        return gettext("Account sector %(name)s") % {"name": value} if value else gettext("No account sector")
    return _amount_text(value, currency=currency)


def _owner_text(value: dict) -> str:
    if not value["closed"]:
        return gettext("Owner without closed deals so far")
    rate = format_percent(Decimal(value["won"]) / Decimal(value["closed"]))
    return ngettext(
        "Owner's win rate so far %(rate)s (%(count)s closed deal)",
        "Owner's win rate so far %(rate)s (%(count)s closed deals)",
        value["closed"],
    ) % {"rate": rate, "count": format_number(value["closed"])}


def _amount_text(value: dict | None, *, currency: str) -> str:
    if value is None:
        return gettext("No amount")
    lower, upper = value["lower"], value["upper"]
    if lower is None:
        return gettext("Amount below %(upper)s") % {"upper": format_money(upper, currency)}
    if upper is None:
        return gettext("Amount %(lower)s or more") % {"lower": format_money(lower, currency)}
    return gettext("Amount from %(lower)s to below %(upper)s") % {
        "lower": format_money(lower, currency),
        "upper": format_money(upper, currency),
    }


NUMERIC_NAMES = {
    "age_days": gettext_lazy("Deal age"),
    "stage_days": gettext_lazy("Time in current stage"),
    "activity_count": gettext_lazy("Activities so far"),
    "owner_win_rate": gettext_lazy("Owner's win rate so far"),
}
OTHER_NAMES = {
    "stage": gettext_lazy("Any other stage"),
    "product": gettext_lazy("Any other product"),
    "sector": gettext_lazy("Any other account sector"),
    "amount_band": gettext_lazy("Any other amount"),
}


def column_description(column: dict, *, names: dict[str, dict[str, str]], edges: list[str], currency: str) -> str:
    """Describe one model column for the admin page: a numeric feature, or one level of a categorical one.

    `names` maps stage and product ids (as text) to their names; `edges` are the amount band edges.
    """
    factor, level = column["factor"], column["level"]
    if level is None:
        return str(NUMERIC_NAMES[factor])
    if level == "other":
        return str(OTHER_NAMES[factor])
    if level == "none":
        value = None
    elif factor in ("stage", "product"):
        value = names[factor].get(level, f"#{level}")
    elif factor == "amount_band":
        position = int(level)
        value = {
            "lower": edges[position - 1] if position > 0 else None,
            "upper": edges[position] if position < len(edges) else None,
        }
    else:
        value = level
    if factor == "stage" and value is None:
        return gettext("No stage")
    return factor_description(factor, value, currency=currency)
