"""A rejected forecast submission in a real browser: the typed values and the error stay on the page."""


import pytest
from django_scopes import scopes_disabled

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def named_manager(org, manager_member, member):
    with scopes_disabled():
        manager_member.user.name = "Mara Manager"
        manager_member.user.save(update_fields=["name"])
    return manager_member


def manager_opens_forecast(page, live_server):
    """Log in as the manager in German and land on the forecast page."""
    page.goto(f"{live_server.url}/accounts/login/?next=/o/acme/forecast/")
    page.get_by_label("E-Mail-Adresse").fill("manager@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/o/acme/forecast/")


def test_best_case_below_commit_keeps_typed_values(named_manager, member, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    manager_opens_forecast(page, live_server)

    page.locator("#own-commit").fill("5.000")
    page.locator("#own-best-case").fill("1.000")
    page.locator("#own-comment").fill("Mein Kommentar")
    page.locator("[data-submit-form] button[type=submit]").click()
    page.wait_for_url("**/o/acme/forecast/submit/")

    expect(page.locator("#own-commit")).to_have_value("5.000")
    expect(page.locator("#own-best-case")).to_have_value("1.000")
    expect(page.locator("#own-comment")).to_have_value("Mein Kommentar")
    expect(page.locator("#own-best-case-error")).to_be_visible()
    expect(page.locator("#own-best-case-error")).to_have_text(
        "Best Case (1.000,00\xa0€) liegt unter Commit (5.000,00\xa0€); Best Case enthält den Commit, "
        "geben Sie also mindestens den Commit ein."
    )
    expect(page.locator("[data-submission-errors] p").first).to_have_text(
        "Ihr Forecast für Mara Manager wurde nicht gespeichert."
    )


def test_back_to_rejected_submission_restores_page(named_manager, member, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    manager_opens_forecast(page, live_server)
    page.locator("#own-commit").fill("5.000")
    page.locator("#own-best-case").fill("1.000")
    page.locator("[data-submit-form] button[type=submit]").click()
    page.wait_for_url("**/o/acme/forecast/submit/")
    period = page.locator("#forecast-period")
    shown = period.input_value()
    other = page.locator("#forecast-period option").nth(1).get_attribute("value")

    period.select_option(other)
    page.wait_for_url(f"**/o/acme/forecast/?period={other}*")
    page.go_back()

    # The address of the rejected POST accepts only POST, so Back must restore the page without loading it.
    expect(page).to_have_url(f"{live_server.url}/o/acme/forecast/submit/")
    expect(page.locator("#own-best-case-error")).to_be_visible()
    expect(period).to_have_value(shown)
