"""The `{% plotly_scripts %}` tag: plotly.js, the Plotly locale of the active language and charts.js."""

from django import template

from dashboards.plotly_locale import plotly_locale

register = template.Library()


@register.inclusion_tag("dashboards/_plotly_scripts.html")
def plotly_scripts() -> dict:
    return {"plotly_locale": plotly_locale()}
