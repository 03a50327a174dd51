"""Plotly figures for goal pages, built like dashboards.charts: JSON-ready dicts drawn by static/spm/charts.js."""

import json

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from dashboards.charts import percent_tick_suffix
from dashboards.templatetags.spm_format import current_locale, format_percent, period_name
from goals.attainment import Attainment
from spm.fiscal import Period

BAR_COLOR = "#0d6efd"
TARGET_COLOR = "#6c757d"


def attainment_trend_chart(series: list[tuple[Period, Attainment | None]]) -> dict:
    """Bar chart of won-revenue attainment in percent per period, with a 100 % line.

    A period without a quota has no attainment: its bar is missing and its
    hover text reads "no quota" instead of 0 %.
    """
    locale = current_locale()
    names = [str(period_name(period)) for period, _row in series]
    percents = [float(row.attainment * 100) if row and row.attainment is not None else None for _period, row in series]
    labels = [
        format_percent(row.attainment, locale) if row and row.attainment is not None else _("no quota")
        for _period, row in series
    ]

    figure = go.Figure(
        go.Bar(
            x=names,
            y=percents,
            text=labels,
            textposition="auto",
            marker_color=BAR_COLOR,
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    figure.add_hline(y=100, line_dash="dash", line_color=TARGET_COLOR)
    figure.update_layout(
        template="none",
        separators=locale.number_symbols["latn"]["decimal"] + locale.number_symbols["latn"]["group"],
        autosize=True,
        height=280,
        margin={"l": 64, "r": 16, "t": 16, "b": 56},
        font={"family": "system-ui, sans-serif", "size": 13},
        xaxis={"title": {"text": _("Period")}, "type": "category", "automargin": True},
        yaxis={"title": {"text": _("Attainment (%)")}, "ticksuffix": percent_tick_suffix(locale), "rangemode": "tozero", "automargin": True},
    )
    # to_json turns numpy values into plain JSON, which json_script can embed again.
    return json.loads(figure.to_json())
