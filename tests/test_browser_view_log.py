"""The scorecard view log in a real German browser: reversed dates sent by htmx show the error in place of the table.

Scenario: the manager opened the rep's scorecard once. The admin sets the start date after the
end date; htmx swaps #view-log with the 400 response, which names the error and lists no views.
"""

import re

import pytest
from django_scopes import scope

from goals.privacy import scorecard_view_record
from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def one_view(org, admin_member, manager_member, member):
    with scope(organization=org):
        scorecard_view_record(organization=org, viewer=manager_member, subject=member)


def test_view_log_reversed_dates_error_shown(org, one_view, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/o/acme/privacy/views/")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/o/acme/privacy/views/.*"))
    expect(page.locator("[data-view-log] tbody tr")).to_have_count(1)
    # A full page load would drop this marker; the htmx swap keeps it.
    page.evaluate("window.viewLogMarker = 1")

    page.get_by_label("Von").fill("2026-12-31")
    page.get_by_label("Bis (einschließlich)").fill("2026-12-01")

    error = page.locator("#view-log .alert-danger")
    expect(error).to_contain_text("Das Startdatum darf nicht nach dem Enddatum liegen.")
    expect(page.locator("[data-view-log]")).to_have_count(0)
    assert page.evaluate("window.viewLogMarker") == 1
    expect(page).to_have_url(re.compile(r".*since=2026-12-31.*until=2026-12-01.*"))
