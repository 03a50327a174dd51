"""Plotly's own texts and number axes on chart pages: the German locale, thousands separators, axis titles.

The pipeline page uses the `data` fixture of tests/test_pipeline_page.py (Acme, Q2 2017).
"""

import json
import re

from django.utils import translation

from dashboards.charts import velocity_trend_chart, waterfall_chart
from dashboards.plotly_locale import PLOTLY_TEXTS, plotly_locale
from tests.test_pipeline_page import data, south_rep, stages  # noqa: F401 (fixtures)


def locale_script(content: str) -> dict:
    match = re.search(r'<script id="plotly-locale" type="application/json">(.*?)</script>', content, re.S)
    assert match is not None, "the page has no #plotly-locale script"
    return json.loads(match.group(1))


def test_german_pipeline_page_carries_plotly_locale(client, data, admin_member):
    client.force_login(admin_member.user)

    response = client.get("/o/acme/pipeline/?period=2017-Q2", HTTP_ACCEPT_LANGUAGE="de")

    locale = locale_script(response.content.decode())
    assert locale["name"] == "de"
    assert locale["format"]["months"][0] == "Januar"
    assert locale["format"]["shortDays"][0] == "So."
    assert locale["format"]["decimal"] == ","
    assert locale["format"]["thousands"] == "."


def test_german_plotly_modebar_texts():
    with translation.override("de"):
        dictionary = plotly_locale()["dictionary"]

    assert dictionary["Download plot as a PNG"] == "Diagramm als PNG herunterladen"
    assert dictionary["Reset axes"] == "Achsen zurücksetzen"
    assert sorted(dictionary) == sorted(PLOTLY_TEXTS)


def test_english_plotly_locale_keeps_plotly_texts():
    with translation.override("en"):
        locale = plotly_locale()

    assert locale["name"] == "en"
    assert locale["dictionary"] == {}
    assert locale["format"]["months"][11] == "December"
    assert locale["format"]["thousands"] == ","


def test_plotly_locale_is_data_not_inline_code(client, data, admin_member):
    client.force_login(admin_member.user)

    content = client.get("/o/acme/pipeline/?period=2017-Q2").content.decode()

    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", content)
    assert scripts, "the page has no script elements without src"
    for attributes in scripts:
        assert 'type="application/json"' in attributes


def test_waterfall_axis_groups_thousands():
    with translation.override("de"):
        figure = waterfall_chart([("Open at start", 2409, "absolute"), ("Created", 1665, "relative")])

    assert figure["layout"]["yaxis"]["separatethousands"] is True
    assert figure["layout"]["separators"] == ",."


def test_velocity_axis_title_names_only_the_unit():
    with translation.override("en"):
        figure = velocity_trend_chart([], currency="USD")

    assert figure["layout"]["yaxis"]["title"]["text"] == "USD per day"
