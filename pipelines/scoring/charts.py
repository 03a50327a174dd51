"""The calibration chart of the win-probability model, as a JSON-ready Plotly figure (drawn by static/spm/charts.js)."""

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from dashboards.charts import base_layout, figure_to_dict, percent_tick_suffix
from dashboards.templatetags.spm_format import current_locale, format_number, format_percent

BAR_COLOR = "rgba(13, 110, 253, 0.25)"
LINE_COLOR = "#0d6efd"
DIAGONAL_COLOR = "#6c757d"


def calibration_chart(bands: list[dict]) -> dict:
    """Observed win share against the mean predicted probability per band, with the snapshot count per band.

    Empty bands are left out of the line (their share is undefined) but keep their zero bar.
    """
    locale = current_locale()
    band_labels = [
        f"{format_percent(band['lower'], locale)}–{format_percent(band['upper'], locale)}" for band in bands
    ]
    filled = [band for band in bands if band["count"]]
    hover = [
        _("Predicted %(predicted)s, observed %(observed)s, %(count)s snapshots")
        % {
            "predicted": format_percent(band["predicted_mean"], locale),
            "observed": format_percent(band["observed_share"], locale),
            "count": format_number(band["count"], locale),
        }
        for band in filled
    ]

    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=[(band["lower"] + band["upper"]) * 50 for band in bands],
            y=[band["count"] for band in bands],
            width=[(band["upper"] - band["lower"]) * 100 * 0.9 for band in bands],
            customdata=band_labels,
            name=_("Snapshots in the band"),
            marker_color=BAR_COLOR,
            yaxis="y2",
            hovertemplate=_("Band %{customdata}: %{y} snapshots") + "<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[0, 100],
            y=[0, 100],
            mode="lines",
            name=_("Perfect calibration"),
            line={"color": DIAGONAL_COLOR, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[band["predicted_mean"] * 100 for band in filled],
            y=[band["observed_share"] * 100 for band in filled],
            mode="lines+markers",
            name=_("Observed win share"),
            line={"color": LINE_COLOR},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
        )
    )
    suffix = percent_tick_suffix(locale)
    figure.update_layout(
        base_layout(
            locale,
            height=360,
            margin={"l": 64, "r": 64, "t": 16, "b": 56},
            legend={"orientation": "h", "y": -0.25},
            xaxis={"title": {"text": _("Predicted win probability (%)")}, "range": [0, 100], "ticksuffix": suffix},
            yaxis={"title": {"text": _("Observed win share (%)")}, "range": [0, 100], "ticksuffix": suffix},
            yaxis2={
                "title": {"text": _("Snapshots")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "separatethousands": True,
            },
        )
    )
    return figure_to_dict(figure)
