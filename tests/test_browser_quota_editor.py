"""The quota editor in a real German browser: type a German number, see it saved and the total change.

Scenario: organization Acme, two reps; the other rep already has a Q1 2025
won-revenue quota of 1.000,00, so the total row reads 1.000,00. The admin
types 12.500,00 into the first rep's Q1 cell and leaves it with Tab: the
cell shows 12.500,00 and the total 13.500,00, without a page reload.
"""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from goals.models import Quota
from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def quota_setup(org, admin_member, member, other_rep):
    with scopes_disabled():
        Quota.objects.create(organization=org, level="rep", membership=other_rep, period_kind="quarter",
                             period_start=dt.date(2025, 1, 1), metric="won_revenue", target=Decimal(1000))  # fmt: skip
    return org


def test_quota_cell_german_number_saves(quota_setup, member, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    editor_path = "/o/acme/quotas/?year=2025&granularity=quarter&level=rep&metric=won_revenue"
    page.goto(f"{live_server.url}/accounts/login/?next={editor_path.replace('&', '%26').replace('?', '%3F')}")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/o/acme/quotas/.*"))

    total = page.locator("#quota-total-0")
    expect(total).to_have_text("1.000,00")
    page.evaluate("window.spmNoReloadMarker = true")

    cell = page.locator(f"#quota-input-{member.pk}-0")
    cell.fill("12.500,00")
    cell.press("Tab")

    expect(total).to_have_text("13.500,00")
    expect(page.locator(f"#quota-input-{member.pk}-0")).to_have_value("12.500,00")
    assert page.evaluate("window.spmNoReloadMarker === true")
    with scopes_disabled():
        saved = Quota.objects.get(membership=member, period_start=dt.date(2025, 1, 1), metric="won_revenue")
    assert saved.target == Decimal("12500.00")


def test_quota_editor_arrow_keys_move(quota_setup, member, other_rep, live_server, browser_page):  # noqa: F811
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/o/acme/quotas/?year=2025&granularity=quarter")

    first = page.locator(".quota-input[data-row='0'][data-column='0']")
    first.focus()
    first.press("ArrowRight")
    focused_column = page.evaluate("document.activeElement.dataset.column")
    first_row_next = page.evaluate("document.activeElement.dataset.row")
    page.keyboard.press("ArrowDown")
    below_row = page.evaluate("document.activeElement.dataset.row")

    assert focused_column == "1"
    assert first_row_next == "0"
    assert below_row == "1"


def test_template_form_follows_grid_year(quota_setup, live_server, browser_page):  # noqa: F811
    """After the year is changed without a reload, a rejected template shows that year's grid with the input kept.

    The year field's change event stands for the htmx filter request, which swaps the grid but not the template forms.
    """
    from playwright.sync_api import expect

    page = browser_page
    editor_path = "/o/acme/quotas/?year=2025&granularity=quarter&level=rep&metric=won_revenue"
    page.goto(f"{live_server.url}/accounts/login/?next={editor_path.replace('&', '%26').replace('?', '%3F')}")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/o/acme/quotas/.*"))

    page.locator("#id_year").fill("2017")
    page.locator("#id_year").dispatch_event("change")
    expect(page.locator('#quota-context input[name="year"]')).to_have_value("2017")
    template_form = page.locator("form[data-template-create]")
    template_form.get_by_label("Name").fill("Q1 reps")
    template_form.locator('select[name="metric"]').select_option("won_revenue")
    template_form.locator('select[name="period_kind"]').select_option("quarter")
    # The browser accepts this text; the server rejects the exponent.
    template_form.locator('input[name="target"]').fill("1e15")
    template_form.get_by_role("button", name="Vorlage speichern").click()

    page.wait_for_url(re.compile(r".*/o/acme/quotas/templates/\?year=2017&granularity=quarter&level=rep&metric=won_revenue$"))
    expect(page.locator('#quota-context input[name="year"]')).to_have_value("2017")
    expect(template_form.get_by_label("Name")).to_have_value("Q1 reps")
    expect(template_form.locator(".alert-danger")).to_be_visible()
    expect(template_form.locator('input[name="target"]')).to_have_value("1e15")
    expect(template_form.locator(".invalid-feedback")).to_have_count(1)
