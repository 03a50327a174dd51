"""The deal list in a real browser: htmx swaps a rejected filter's 400 response into the results.

Data: the `named_deals` fixture of tests/test_browser_language_switch.py (two open deals of
the admin in one pipeline). The page is German (de-DE browser context).
"""

import re

import pytest

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)
from tests.test_browser_language_switch import named_deals  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

MISSING_STAGE_ID = "999999"


def test_rejected_filter_message_replaces_results(named_deals, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/o/acme/deals/")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/o/acme/deals/")
    expect(page.locator("#deal-results [data-totals]")).to_contain_text("2 Deals")
    # A full page load would drop this marker; an htmx swap keeps it.
    page.evaluate("window.loadedBeforeFilter = true")

    # A stage deleted after the page was loaded: the list still offers its id.
    page.locator("#deal-stage").evaluate(f"select => select.add(new Option('Gelöscht', '{MISSING_STAGE_ID}'))")
    page.locator("#deal-stage").select_option(MISSING_STAGE_ID)
    with page.expect_response(re.compile(rf"/o/acme/deals/\?.*stage={MISSING_STAGE_ID}")) as response_info:
        page.locator("#deal-results").get_by_role("button", name="Filtern").click()

    response = response_info.value
    assert response.status == 400
    assert response.request.headers.get("hx-request") == "true"
    alert = page.locator("#deal-results .alert-danger")
    expect(alert).to_contain_text("Die Deal-Liste konnte nicht gefiltert werden:")
    expect(alert).to_contain_text(
        f"In dieser Organisation gibt es keine Phase mit der ID {MISSING_STAGE_ID}; wählen Sie eine aus der Liste."
    )
    expect(page.locator("#deal-results [data-totals]")).to_have_count(0)
    assert page.evaluate("window.loadedBeforeFilter") is True
    assert f"stage={MISSING_STAGE_ID}" in page.url
