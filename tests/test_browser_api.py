"""The API docs and the token page in a real browser, under the app's strict Content-Security-Policy.

Reuses the Chromium fixture of tests/test_browser.py (Debian's /usr/bin/chromium, never a download).
"""

import pytest

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401

pytestmark = pytest.mark.browser


def test_swagger_ui_lists_operations_without_csp_errors(live_server, browser_page):  # noqa: F811
    page = browser_page
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".opblock-summary-path")

    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/deals/" in paths
    assert "/api/v1/kpi-report/" in paths
    assert [line for line in console if "Content Security Policy" in line] == []


def test_admin_creates_and_revokes_token(admin_member, live_server, browser_page):  # noqa: F811
    page = browser_page
    tokens_path = f"/o/{admin_member.organization.slug}/settings/api-tokens/"

    page.goto(f"{live_server.url}/accounts/login/?next={tokens_path}")
    page.get_by_label("E-Mail-Adresse").fill(admin_member.user.email)
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{live_server.url}{tokens_path}")
    page.locator("#id_name").fill("BI-Export")
    page.locator("#id_scope").select_option("write")
    page.locator("form[action$='/settings/api-tokens/'] button[type=submit]").click()

    token = page.locator("#new-token").input_value()
    assert token.startswith(f"spm_{admin_member.organization.pk}_")
    page.reload()
    assert page.locator("#new-token").count() == 0
    page.locator("form[action$='/revoke/'] button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("form[action$='/revoke/']").count() == 0
