"""The pipeline page in a real browser: the as-of day follows a period change, Plotly's toolbar is German.

Data: the `data` fixture of tests/test_pipeline_page.py (Acme, Q2 2017), seen by the admin.
"""

import re
from urllib.parse import quote

import pytest

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)
from tests.test_pipeline_page import data, south_rep, stages  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def open_pipeline(page, live_server, query: str):
    path = "/o/acme/pipeline/"
    page.goto(f"{live_server.url}/accounts/login/?next={quote(path + query)}")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(re.escape(f"{live_server.url}{path}")))


def test_period_change_moves_as_of_day(data, admin_member, live_server, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    open_pipeline(page, live_server, "?period=2017-Q2&as_of=2017-04-15")
    as_of_input = page.locator("#as-of-input")
    expect(as_of_input).to_have_value("2017-04-15")
    expect(page.locator("#as-of-title")).to_contain_text("15.04.2017")

    page.locator("select[name=period]").select_option("2017-05")

    expect(page.locator("#as-of-title")).to_contain_text("01.05.2017")
    expect(as_of_input).to_have_value("2017-05-01")
    assert "as_of=2017-05-01" in page.url
    assert "period=2017-05" in page.url


def test_chart_toolbar_in_german(data, admin_member, live_server, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    open_pipeline(page, live_server, "?period=2017-Q2")
    funnel = page.locator('[data-plotly-figure="funnel-chart"]')
    expect(funnel.locator(".modebar-btn").first).to_be_attached()

    titles = funnel.locator(".modebar-btn").evaluate_all("buttons => buttons.map(b => b.getAttribute('data-title'))")

    assert "Diagramm als PNG herunterladen" in titles
    assert "Download plot as a PNG" not in titles
    # The Chart Studio upload button ("Share chart...") has no server to upload to.
    assert "Share chart..." not in titles
