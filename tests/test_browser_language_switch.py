"""Switching the language keeps the filters that htmx pushed into the address after the page loaded."""

import pytest
from django_scopes import scopes_disabled

from tests.attainment_data import stages_create
from tests.factories import DealFactory
from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def named_deals(org, admin_member):
    with scopes_disabled():
        stages = stages_create(org)
        for name in ("Alpha", "Beta"):
            DealFactory(organization=org, owner=admin_member, stage=stages["open"], name=name)


def test_language_switch_keeps_pushed_filters(named_deals, live_server, browser_page):  # noqa: F811
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/o/acme/deals/")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/o/acme/deals/")

    search = page.locator("input[name=q]")
    search.fill("Alpha")
    search.press("Enter")
    page.wait_for_url("**q=Alpha**")

    page.select_option("#language-select", "en")
    page.wait_for_function("document.documentElement.lang === 'en'")

    assert "q=Alpha" in page.url
    assert page.locator("[data-totals]").inner_text().startswith("1 deal,")
