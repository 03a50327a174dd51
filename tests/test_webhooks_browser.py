"""The webhook admin page in a real browser on a phone-sized screen: create a webhook, see the secret once.

Drives Debian's /usr/bin/chromium through Playwright against pytest-django's live server,
logged in through a session cookie. Skips when /usr/bin/chromium is missing, or fails
instead with SPM_REQUIRE_BROWSER=1.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from integrations.webhooks.models import WebhookSubscription
from tests.test_browser_import import in_plain_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
PAGE_TIMEOUT_MS = 15_000
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def admin_page(live_server, admin_member, monkeypatch, settings):
    """Yield a Playwright page of an English phone-sized browser, logged in as the organization's admin."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's chromium package"
        if os.environ.get("SPM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (SPM_REQUIRE_BROWSER=1 turns this skip into a failure)", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    client = Client()
    client.force_login(admin_member.user)
    session_cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(locale="en-US", viewport=PHONE)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.add_cookies(
            [{"name": django_settings.SESSION_COOKIE_NAME, "value": session_cookie, "url": live_server.url}]
        )
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_webhook_created_secret_shown_once(org, live_server, admin_page):
    from playwright.sync_api import expect

    page = admin_page
    page.goto(f"{live_server.url}/o/{org.slug}/webhooks/")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Import finished").check()
    page.get_by_role("button", name="Create webhook").click()

    secret = page.locator("[data-webhook-secret]")
    expect(secret).to_contain_text("whsec_")
    # Queried from a plain thread: a connection opened here under Playwright's loop would outlive the test database.
    stored = in_plain_thread(WebhookSubscription.objects.get)
    assert secret.inner_text() == stored.secret
    assert stored.events == ["import.finished"]
    # The form and the delivery log fit the phone's width; only tables may scroll inside their wrapper.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.reload()
    expect(page.locator("[data-webhook-secret]")).to_have_count(0)
