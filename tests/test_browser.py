"""The manager dashboard in a real browser: German login, German numbers, htmx period switch.

Drives Debian's /usr/bin/chromium through Playwright's sync API against
pytest-django's live server; Playwright's own browser download is never used.
Skips when /usr/bin/chromium is missing, or fails instead with SPM_REQUIRE_BROWSER=1.

Scenario (organization Acme, base currency EUR, fiscal year = calendar year),
one rep of the manager's team:
- Q1 2017: one deal won for 1,234.56, closed 2017-02-14.
- Q2 2017: two deals won for 2,000.00 and 500.00, closed in May 2017.
The dashboard opens on the newest quarter, Q2 2017 (won amount 2.500,00 €);
switching to Q1 2017 shows 1.234,56 €.
"""

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django_scopes import scopes_disabled

from dashboards.services import kpi_snapshot_recompute
from pipelines.models import DealStatus, StageKind
from tests.factories import DealFactory, PipelineFactory, StageFactory

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Upper bound for any single wait on the page, in milliseconds.
PAGE_TIMEOUT_MS = 15_000
MANAGER_PASSWORD = "correct-horse-battery"  # set by tests.factories.UserFactory


def utc(year, month, day, hour=12):
    return dt.datetime(year, month, day, hour, tzinfo=dt.timezone.utc)


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """Yield a Playwright page in a German (de-DE) browser context; close the browser afterwards.

    Request data fixtures before this one. While Playwright's event loop runs
    in this thread, Django stores database connections per context (asgiref's
    Local), so rows written then go through a connection that the database
    teardown cannot see, and dropping the test database fails.
    """
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's chromium package"
        if os.environ.get("SPM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (SPM_REQUIRE_BROWSER=1 turns this skip into a failure)", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django
    # refuses ORM calls from a thread with a running loop unless this is set.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin")
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


@pytest.fixture
def computed_dashboard(org, manager_member, member):
    """Won deals in Q1 and Q2 2017 for the manager's rep, with snapshots computed."""
    with scopes_disabled():
        org.currency = "EUR"
        org.save(update_fields=["currency"])
        pipeline = PipelineFactory(organization=org)
        won = StageFactory(pipeline=pipeline, name="Won", order=1, kind=StageKind.WON, probability=100)
        for amount, created_at, closed_at in (
            (Decimal("1234.56"), utc(2017, 1, 10), utc(2017, 2, 14)),
            (Decimal("2000.00"), utc(2017, 4, 3), utc(2017, 5, 8)),
            (Decimal("500.00"), utc(2017, 4, 20), utc(2017, 5, 22)),
        ):
            DealFactory(
                owner=member, stage=won, status=DealStatus.WON, amount=amount, created_at=created_at, closed_at=closed_at
            )
    kpi_snapshot_recompute(organization=org)
    return org


def test_dashboard_german_period_switch(computed_dashboard, live_server, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    dashboard_path = f"/o/{computed_dashboard.slug}/dashboard/"

    page.goto(f"{live_server.url}/accounts/login/?next={dashboard_path}")
    # The field labels come from django-allauth's German catalog, the button from the project's.
    page.get_by_label("E-Mail-Adresse").fill("manager@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()

    page.wait_for_url(f"{live_server.url}{dashboard_path}")
    assert page.locator("html").get_attribute("lang") == "de"
    won_amount = page.locator('.kpi-tile [data-kpi="won_amount"]')
    expect(won_amount).to_contain_text(re.compile(r"2\.500,00\s€"))
    period_select = page.locator("select[name=period]")
    expect(period_select).to_have_value("2017-Q2")

    # A full page load would drop this marker; the htmx swap keeps it.
    page.evaluate("window.spmNoReloadMarker = true")
    period_select.select_option("2017-Q1")

    expect(won_amount).to_contain_text(re.compile(r"1\.234,56\s€"))
    assert page.evaluate("window.spmNoReloadMarker === true")
    assert "period=2017-Q1" in page.url
