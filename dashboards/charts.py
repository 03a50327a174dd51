"""Plotly figures for the dashboard, built from KPI rows and returned as JSON-ready dicts.

Templates embed the dict with `json_script`, and static/spm/charts.js draws it
with `Plotly.newPlot`, so no page needs an inline script. Axis titles come
from gettext, and `layout.separators` plus Babel-formatted bar labels make
numbers read `1.234,56` on German pages.
"""

import html
import json
import re
from decimal import Decimal

import plotly.graph_objects as go
from babel.dates import format_date
from babel.numbers import format_currency
from django.utils.translation import gettext as _

from dashboards.kpis import KpiRow
from dashboards.templatetags.spm_format import (
    current_locale,
    format_days,
    format_money,
    format_percent,
)
from spm.fiscal import Period

BAR_COLOR = "#0d6efd"


def plotly_text(text) -> str:
    """Escape an imported name for Plotly, which renders tags such as <a href> and <b> in labels and hovers.

    Plotly (plotly.js 4.1, svg_text_utils) decodes &amp;, &lt;, &gt; and numeric entities
    back to characters, but not &quot;, so quotes are left as they are.
    """
    return html.escape(str(text), quote=False)


def _separators(locale) -> str:
    """Return Plotly's `separators` (decimal mark, then thousands mark) for a Babel locale."""
    return locale.number_symbols["latn"]["decimal"] + locale.number_symbols["latn"]["group"]


def currency_affixes(currency: str, locale) -> tuple[str, str]:
    """Split the locale's currency format around the number: ("€", "") in English, ("", " €") in German."""
    sample = format_currency(Decimal("1"), currency, locale=locale)
    match = re.search(r"\d(?:.*\d)?", sample)
    return sample[: match.start()], sample[match.end() :]


def percent_tick_suffix(locale) -> str:
    """Return what follows the number in the locale's percent format: "%" in English, "\u00a0%" in German."""
    sample = format_percent(Decimal("1"), locale)
    match = re.search(r"\d(?:.*\d)?", sample)
    return sample[match.end() :]


def base_layout(locale, **layout) -> dict:
    """Return the layout shared by all SPM charts (fonts, margins, locale number separators), updated with `layout`."""
    return {
        "template": "none",
        "separators": _separators(locale),
        "autosize": True,
        "height": 320,
        "margin": {"l": 64, "r": 16, "t": 16, "b": 56},
        "font": {"family": "system-ui, sans-serif", "size": 13},
        **layout,
    }


def figure_to_dict(figure: go.Figure) -> dict:
    """Convert a figure to a dict of plain JSON values (no numpy or Decimal), which `json_script` can embed."""
    return json.loads(figure.to_json())


def won_amount_by_month_chart(series: list[tuple[Period, KpiRow | None]], *, currency: str) -> dict:
    """Bar chart of won amount per month; a month without a snapshot row shows as 0 (nothing won)."""
    locale = current_locale()
    prefix, suffix = currency_affixes(currency, locale)
    months = [format_date(period.start, "LLL yy", locale=locale) for period, _row in series]
    amounts = [float(row.won_amount) if row is not None else 0.0 for _period, row in series]
    labels = [format_money(row.won_amount if row is not None else 0, currency, locale) for _period, row in series]

    figure = go.Figure(
        go.Bar(
            x=months,
            y=amounts,
            customdata=labels,
            marker_color=BAR_COLOR,
            hovertemplate="%{x}: %{customdata}<extra></extra>",
        )
    )
    figure.update_layout(
        base_layout(
            locale,
            xaxis={"title": {"text": _("Month")}, "type": "category", "automargin": True},
            yaxis={
                "title": {"text": _("Won amount (%(currency)s)") % {"currency": currency}},
                "tickprefix": prefix,
                "ticksuffix": suffix,
                "separatethousands": True,
                # Full numbers, because Plotly's default SI suffixes (100k, 1,2M) are not German.
                "exponentformat": "none",
                "rangemode": "tozero",
                "automargin": True,
            },
        )
    )
    return figure_to_dict(figure)


def win_rate_by_rep_chart(rows: list[KpiRow]) -> dict:
    """Horizontal bar chart of each rep's win rate in percent, value printed on the bar.

    Reps without closed deals have no win rate; they are left out rather than
    drawn as 0 %.
    """
    locale = current_locale()
    defined = sorted((row for row in rows if row.win_rate is not None), key=lambda row: row.win_rate)
    names = [plotly_text(row.subject) for row in defined]
    percents = [float(row.win_rate * 100) for row in defined]
    labels = [format_percent(row.win_rate, locale) for row in defined]

    figure = go.Figure(
        go.Bar(
            x=percents,
            y=names,
            orientation="h",
            text=labels,
            textposition="auto",
            customdata=[[row.won_count, row.lost_count] for row in defined],
            marker_color=BAR_COLOR,
            hovertemplate=_("%{y}: %{text}, %{customdata[0]} won, %{customdata[1]} lost") + "<extra></extra>",
        )
    )
    figure.update_layout(
        base_layout(
            locale,
            height=max(160, 48 + 32 * len(defined)),
            margin={"l": 140, "r": 16, "t": 16, "b": 48},
            xaxis={"title": {"text": _("Win rate (%)")}, "range": [0, 100], "ticksuffix": percent_tick_suffix(locale), "automargin": True},
            yaxis={"title": {"text": _("Rep")}, "automargin": True},
        )
    )
    return figure_to_dict(figure)


def funnel_chart(rows) -> dict:
    """Funnel of the deals that reached each step (dashboards.analytics.funnel rows), conversion in the hover."""
    locale = current_locale()
    labels = [plotly_text(row.label) for row in rows]
    counts = [row.reached for row in rows]
    conversions = [
        format_percent(row.conversion, locale) if row.conversion is not None else "–" for row in rows
    ]
    figure = go.Figure(
        go.Funnel(
            y=labels,
            x=counts,
            customdata=conversions,
            # ",": group thousands with the layout's separators (2.388 in German); textinfo would print 2388.
            texttemplate="%{x:,}",
            marker={"color": BAR_COLOR},
            hovertemplate=_("%{y}: %{x} deals, %{customdata} to the next step") + "<extra></extra>",
        )
    )
    figure.update_layout(
        base_layout(
            locale,
            height=max(200, 60 + 48 * len(rows)),
            margin={"l": 140, "r": 16, "t": 16, "b": 32},
            yaxis={"title": {"text": _("Stage")}, "automargin": True},
        )
    )
    return figure_to_dict(figure)


def time_in_stage_chart(rows) -> dict:
    """Grouped bars of mean and median days per stage; stages without completed stays have no bars."""
    locale = current_locale()
    names = [plotly_text(row.stage.name) for row in rows]
    means = [float(row.days_mean) if row.days_mean is not None else None for row in rows]
    medians = [float(row.days_median) if row.days_median is not None else None for row in rows]
    # Hover texts come formatted from Python: Plotly's %{y:.1f} rounds the binary float, so 1.15 would read 1.1.
    mean_texts = [format_days(row.days_mean, locale) if row.days_mean is not None else "" for row in rows]
    median_texts = [format_days(row.days_median, locale) if row.days_median is not None else "" for row in rows]
    figure = go.Figure(
        [
            go.Bar(
                name=_("Mean"),
                x=names,
                y=means,
                customdata=mean_texts,
                marker_color=BAR_COLOR,
                hovertemplate="%{x}: %{customdata}<extra></extra>",
            ),
            go.Bar(
                name=_("Median"),
                x=names,
                y=medians,
                customdata=median_texts,
                marker_color="#6c757d",
                hovertemplate="%{x}: %{customdata}<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        base_layout(
            locale,
            barmode="group",
            xaxis={"title": {"text": _("Stage")}, "type": "category", "automargin": True},
            yaxis={"title": {"text": _("Days in stage")}, "rangemode": "tozero", "automargin": True},
            legend={"orientation": "h", "y": 1.1},
        )
    )
    return figure_to_dict(figure)


def waterfall_chart(steps: list[tuple[str, int, str]]) -> dict:
    """Waterfall of deal counts: (label, count, measure) with measure "absolute", "relative" or "total".

    Exits come in as negative relative steps, so the last bar lands on the end count.
    """
    locale = current_locale()
    figure = go.Figure(
        go.Waterfall(
            x=[label for label, _count, _measure in steps],
            y=[count for _label, count, _measure in steps],
            measure=[measure for _label, _count, measure in steps],
            connector={"line": {"color": "#adb5bd"}},
            increasing={"marker": {"color": "#198754"}},
            decreasing={"marker": {"color": "#dc3545"}},
            totals={"marker": {"color": BAR_COLOR}},
            hovertemplate="%{x}: %{y}<extra></extra>",
        )
    )
    figure.update_layout(
        base_layout(
            locale,
            xaxis={"type": "category", "automargin": True},
            yaxis={
                "title": {"text": _("Open deals")},
                # Without separatethousands, Plotly groups only numbers of five digits or more. With it, 4.000 matches 12.000.
                "separatethousands": True,
                "exponentformat": "none",
                "automargin": True,
            },
        )
    )
    return figure_to_dict(figure)


def velocity_trend_chart(series: list[tuple[Period, KpiRow | None]], *, currency: str) -> dict:
    """Line of pipeline velocity (money per day) per month; a month without a defined velocity is a gap."""
    locale = current_locale()
    prefix, suffix = currency_affixes(currency, locale)
    months = [format_date(period.start, "LLL yy", locale=locale) for period, _row in series]
    values = [
        float(row.pipeline_velocity) if row is not None and row.pipeline_velocity is not None else None
        for _period, row in series
    ]
    labels = [
        _("%(amount)s per day") % {"amount": format_money(row.pipeline_velocity, currency, locale)}
        if row is not None and row.pipeline_velocity is not None
        else ""
        for _period, row in series
    ]
    figure = go.Figure(
        go.Scatter(
            x=months,
            y=values,
            customdata=labels,
            mode="lines+markers",
            line={"color": BAR_COLOR},
            connectgaps=False,
            hovertemplate="%{x}: %{customdata}<extra></extra>",
        )
    )
    figure.update_layout(
        base_layout(
            locale,
            xaxis={"title": {"text": _("Month")}, "type": "category", "automargin": True},
            yaxis={
                # The card's title names the KPI; the longer "Pipeline velocity (USD per day)" was cut off in German.
                "title": {"text": _("%(currency)s per day") % {"currency": currency}},
                "tickprefix": prefix,
                "ticksuffix": suffix,
                "separatethousands": True,
                "exponentformat": "none",
                "rangemode": "tozero",
                "automargin": True,
            },
        )
    )
    return figure_to_dict(figure)
