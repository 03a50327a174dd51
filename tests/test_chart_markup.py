"""Dashboard charts show imported names as text: Plotly would render tags such as <a href> in labels.

Plotly decodes &lt;, &gt; and &amp; back to characters, so the escaped name reads like the
original on the page while its tags stay inert.
"""

from decimal import Decimal
from types import SimpleNamespace

from dashboards.charts import funnel_chart, plotly_text, time_in_stage_chart, win_rate_by_rep_chart

LINK_NAME = '<a href="https://attacker.example">Anna</a>'
ESCAPED_LINK_NAME = '&lt;a href="https://attacker.example"&gt;Anna&lt;/a&gt;'


def test_win_rate_chart_escapes_rep_names():
    rows = [
        SimpleNamespace(subject=LINK_NAME, win_rate=Decimal("0.5"), won_count=1, lost_count=1),
        SimpleNamespace(subject="Bert & Co", win_rate=Decimal("0.25"), won_count=1, lost_count=3),
    ]

    chart = win_rate_by_rep_chart(rows)

    (bar,) = chart["data"]
    assert bar["y"] == ["Bert &amp; Co", ESCAPED_LINK_NAME]


def test_funnel_chart_escapes_stage_labels():
    rows = [
        SimpleNamespace(label="<b>Lead</b>", reached=3, conversion=Decimal("0.5")),
        SimpleNamespace(label="Won", reached=1, conversion=None),
    ]

    chart = funnel_chart(rows)

    (funnel,) = chart["data"]
    assert funnel["y"] == ["&lt;b&gt;Lead&lt;/b&gt;", "Won"]


def test_time_in_stage_chart_escapes_stage_names():
    rows = [SimpleNamespace(stage=SimpleNamespace(name=LINK_NAME), days_mean=Decimal("2"), days_median=Decimal("1"))]

    chart = time_in_stage_chart(rows)

    mean_bar, median_bar = chart["data"]
    assert mean_bar["x"] == [ESCAPED_LINK_NAME]
    assert median_bar["x"] == [ESCAPED_LINK_NAME]


def test_plotly_text_keeps_quotes():
    # Plotly does not decode &quot;, so an escaped quote would show as the entity.
    assert plotly_text('O\'Brien "Ace"') == 'O\'Brien "Ace"'
    assert plotly_text("1 < 2 & 3 > 2") == "1 &lt; 2 &amp; 3 &gt; 2"
