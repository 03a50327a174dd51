"""Two-factor authentication in a real browser: an admin activates an authenticator app from the account menu.

Uses the Chromium fixture of tests/test_browser.py (Debian's /usr/bin/chromium, skipped when missing).
Steps: log in, open the e-mail page, activate TOTP from the account menu with a code computed
from the secret the setup page shows, then require 2FA for the organization and reach its pages.
"""

import pytest

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401  browser_page is a fixture
from tests.test_mfa_activation import current_totp_code

pytestmark = pytest.mark.browser


def test_admin_activates_totp_and_requires_it(admin_member, org, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{live_server.url}/o/acme/dashboard/")

    page.goto(f"{live_server.url}/accounts/email/")
    expect(page.locator("main")).to_contain_text("admin@acme.example")
    page.locator("nav button.dropdown-toggle").click()  # the account menu, labelled with the user's name
    page.get_by_role("link", name="Zwei-Faktor-Authentifizierung").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/")
    page.get_by_role("link", name="Aktivieren").click()

    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Bestätigen").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authentifizierungscode").fill(current_totp_code(secret))
    page.get_by_role("button", name="Aktivieren").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/recovery-codes/")

    page.goto(f"{live_server.url}/o/acme/data-protection/")
    page.get_by_label("Zwei-Faktor-Authentifizierung verlangen").check()
    page.get_by_role("button", name="Speichern").click()
    page.wait_for_url(f"{live_server.url}/o/acme/data-protection/")
    expect(page.get_by_label("Zwei-Faktor-Authentifizierung verlangen")).to_be_checked()
    page.goto(f"{live_server.url}/o/acme/dashboard/")
    page.wait_for_url(f"{live_server.url}/o/acme/dashboard/")
