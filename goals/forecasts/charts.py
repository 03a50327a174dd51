"""The forecast-versus-actual figure, built like dashboards.charts: a JSON-ready dict drawn by static/spm/charts.js."""

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from dashboards.charts import base_layout, currency_affixes, figure_to_dict
from dashboards.templatetags.spm_format import current_locale, format_money, period_name
from goals.forecasts.accuracy import AccuracyLine
from spm.fiscal import Period

FORECAST_COLOR = "#6c757d"
ACTUAL_COLOR = "#0d6efd"


def forecast_vs_actual_chart(series: list[tuple[Period, AccuracyLine]], *, currency: str) -> dict:
    """Grouped bars per past period: the forecast recorded at the period's start and the won amount.

    A period without a recorded forecast has no forecast bar, and its hover text reads "no forecast recorded".
    """
    locale = current_locale()
    prefix, suffix = currency_affixes(currency, locale)
    names = [str(period_name(period)) for period, _line in series]
    forecasts = [line.at_start.amount for _period, line in series]
    actuals = [line.actual for _period, line in series]
    forecast_labels = [
        format_money(amount, currency, locale) if amount is not None else _("no forecast recorded") for amount in forecasts
    ]

    figure = go.Figure(
        [
            go.Bar(
                name=_("Forecast at period start"),
                x=names,
                y=[float(amount) if amount is not None else None for amount in forecasts],
                customdata=forecast_labels,
                marker_color=FORECAST_COLOR,
                hovertemplate="%{x}: %{customdata}<extra>" + _("Forecast") + "</extra>",
            ),
            go.Bar(
                name=_("Actual (won)"),
                x=names,
                y=[float(amount) for amount in actuals],
                customdata=[format_money(amount, currency, locale) for amount in actuals],
                marker_color=ACTUAL_COLOR,
                hovertemplate="%{x}: %{customdata}<extra>" + _("Actual") + "</extra>",
            ),
        ]
    )
    figure.update_layout(
        base_layout(
            locale,
            barmode="group",
            # Above the plot: below it, the legend collides with the axis title on narrow screens.
            legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            margin={"l": 64, "r": 16, "t": 48, "b": 56},
            xaxis={"title": {"text": _("Period")}, "type": "category", "automargin": True},
            yaxis={
                "title": {"text": _("Amount (%(currency)s)") % {"currency": currency}},
                "tickprefix": prefix,
                "ticksuffix": suffix,
                "separatethousands": True,
                # Full numbers, because Plotly's SI suffixes (100k, 1,2M) are not German.
                "exponentformat": "none",
                "rangemode": "tozero",
                "automargin": True,
            },
        )
    )
    return figure_to_dict(figure)
