"""The person page in a German browser keeps the stored working days when only the reason changes.

Scenario: rep of Acme with first working day 2016-10-01 and last working
day 2017-03-31. The admin opens the person page in German, types only a
reason and presses "Speichern". The date inputs must show the stored days
(browsers accept only ISO values there), so the post keeps both days.
"""

import datetime as dt
import re

import pytest
from django_scopes import scopes_disabled

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def dated_member(member):
    member.active_from = dt.date(2016, 10, 1)
    member.active_to = dt.date(2017, 3, 31)
    with scopes_disabled():
        member.save(update_fields=["active_from", "active_to"])
    return member


def test_person_save_keeps_dates_german(dated_member, admin_member, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    person_path = f"/o/acme/people/{dated_member.pk}/"
    page.goto(f"{live_server.url}/accounts/login/?next={person_path}")
    page.get_by_label("E-Mail-Adresse").fill("admin@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/o/acme/people/\d+/$"))

    expect(page.get_by_label("Erster Arbeitstag")).to_have_value("2016-10-01")
    expect(page.get_by_label("Letzter Arbeitstag")).to_have_value("2017-03-31")
    expect(page.get_by_label("Gültig ab")).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    member_form = page.locator("form", has=page.locator("input[name=kind][value=member]"))
    member_form.get_by_label("Grund (für das Audit-Log)").fill("Vertrag verlängert")
    with page.expect_navigation():
        member_form.get_by_role("button", name="Speichern").click()

    dated_member.refresh_from_db()
    assert dated_member.active_from == dt.date(2016, 10, 1)
    assert dated_member.active_to == dt.date(2017, 3, 31)
