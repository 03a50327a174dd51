"""Plotly figures of a member's skill history: one line chart per competency, manager against self."""

import datetime as dt

import plotly.graph_objects as go
from babel.dates import format_date
from django.utils.translation import gettext as _

from coaching.skills.models import LEVELS, Assessment, AssessmentKind, Competency
from dashboards.charts import base_layout, figure_to_dict
from dashboards.templatetags.spm_format import current_locale

# Days of margin on each side of the date axis, so a single assessment or one on the edge stays readable.
AXIS_MARGIN = dt.timedelta(days=15)

SERIES = (
    (AssessmentKind.MANAGER, "#0d6efd", "solid", "circle"),
    (AssessmentKind.SELF, "#d63384", "dash", "diamond"),
)


def skill_history_charts(*, competencies: list[Competency], assessments: list[Assessment]) -> list[tuple[Competency, str, dict]]:
    """Return (competency, element id, figure) for each competency rated at least once; `assessments` oldest first.

    The two series differ in colour, dash and marker shape, so they stay
    apart without colour. Dates go to Plotly's date axis as ISO text and are
    shown in the page language's format.
    """
    locale = current_locale()
    # Plotly's own locale is English; spelling out the date format keeps German pages German.
    tick_format = "%d.%m.%Y" if locale.language == "de" else "%b %d, %Y"
    points: dict[tuple[int, str], list[tuple]] = {}
    for assessment in assessments:
        for rating in assessment.ratings.all():
            points.setdefault((rating.competency_id, assessment.kind), []).append((assessment.assessed_on, rating.level))

    charts = []
    for competency in competencies:
        traces = []
        for kind, color, dash, symbol in SERIES:
            series = points.get((competency.pk, kind), [])
            if not series:
                continue
            traces.append(
                go.Scatter(
                    x=[day.isoformat() for day, _level in series],
                    y=[level for _day, level in series],
                    customdata=[format_date(day, "medium", locale=locale) for day, _level in series],
                    name=str(AssessmentKind(kind).label),
                    mode="lines+markers",
                    line={"color": color, "dash": dash},
                    marker={"symbol": symbol, "size": 9},
                    hovertemplate="%{customdata}: %{y}<extra>%{fullData.name}</extra>",
                )
            )
        if not traces:
            continue
        days = [day for kind, *_style in SERIES for day, _level in points.get((competency.pk, kind), [])]
        axis_range = [(min(days) - AXIS_MARGIN).isoformat(), (max(days) + AXIS_MARGIN).isoformat()]
        figure = go.Figure(traces)
        figure.update_layout(
            base_layout(
                locale,
                height=260,
                xaxis={
                    "title": {"text": _("Date")},
                    "type": "date",
                    "range": axis_range,
                    "tickformat": tick_format,
                    "automargin": True,
                },
                yaxis={"title": {"text": _("Level")}, "range": [0.5, 5.5], "tickvals": list(LEVELS), "automargin": True},
                legend={"orientation": "h", "y": 1.15},
                showlegend=True,
            )
        )
        charts.append((competency, f"skill-chart-{competency.pk}", figure_to_dict(figure)))
    return charts
