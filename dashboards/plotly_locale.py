"""Plotly locale of the active language: modebar texts from our catalog, month and day names from Babel.

The plotly Python package ships plotly.min.js without plotly.js's locale files, so Plotly's
toolbar would read English on German pages. static/spm/charts.js registers this dictionary
with `Plotly.register` and passes its name as the `locale` of each chart's config.
"""

from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_noop

from dashboards.templatetags.spm_format import current_locale

# The English texts plotly.js 4.1 shows for our charts: the modebar buttons of a 2D chart (box and
# lasso select are removed in charts.js), the hints after a zoom or legend click, and the image download.
# Plotly looks up each text by this exact English string.
PLOTLY_TEXTS = (
    gettext_noop("Autoscale"),
    gettext_noop("Download plot"),
    gettext_noop("Download plot as a PNG"),
    gettext_noop("Double-click on legend to isolate one trace"),
    gettext_noop("Double-click to zoom back out"),
    gettext_noop("Image download succeeded"),
    gettext_noop("Pan"),
    gettext_noop("Preparing image - this may take a few seconds"),
    gettext_noop("Reset axes"),
    gettext_noop("Sorry, there was a problem downloading your image!"),
    gettext_noop("Zoom"),
    gettext_noop("Zoom in"),
    gettext_noop("Zoom out"),
)


def plotly_locale() -> dict:
    """Return the Plotly locale module (name, dictionary, format) of the active language.

    The dictionary holds only texts the catalog translates, so English falls back to Plotly's own.
    Days start on Sunday, as d3's time format expects.
    """
    locale = current_locale()
    dictionary = {}
    for text in PLOTLY_TEXTS:
        translated = gettext(text)
        if translated != text:
            dictionary[text] = translated

    day_names = locale.days["format"]
    # Babel numbers weekdays from Monday (0) to Sunday (6).
    sunday_first = [6, 0, 1, 2, 3, 4, 5]
    month_names = locale.months["format"]
    symbols = locale.number_symbols["latn"]
    return {
        "name": get_language() or "en",
        "dictionary": dictionary,
        "format": {
            "days": [day_names["wide"][day] for day in sunday_first],
            "shortDays": [day_names["abbreviated"][day] for day in sunday_first],
            "months": [month_names["wide"][month] for month in range(1, 13)],
            "shortMonths": [month_names["abbreviated"][month] for month in range(1, 13)],
            "decimal": symbols["decimal"],
            "thousands": symbols["group"],
        },
    }
