"""The leaderboard in a real German browser: ranks, German percentages, an htmx ranking switch.

Scenario: the `people` fixture of tests/test_leaderboard.py (Acme, Q2 2017, won revenue).
By % of quota the manager sees Anna and Bert sharing rank 1 at 50,0 % and Cora third at
40,0 %, with Dirk (no quota) listed apart. Switching the ranking to absolute amounts
reloads only the table: Dirk ranks first with 9.999,00 €.
"""

import re

import pytest

from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401 (fixture)
from tests.test_leaderboard import people  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def manager_opens_leaderboard(page, live_server):
    """Log in as the manager in German and land on the Q2 2017 leaderboard."""
    page.goto(f"{live_server.url}/accounts/login/?next=/o/acme/leaderboard/%3Fperiod%3D2017-Q2")
    page.get_by_label("E-Mail-Adresse").fill("manager@acme.example")
    page.get_by_label("Passwort").fill(MANAGER_PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(re.compile(r".*/o/acme/leaderboard/.*"))


def test_leaderboard_german_ranks_and_ranking_switch(org, people, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    manager_opens_leaderboard(page, live_server)

    rows = page.locator("[data-leaderboard] tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("1")
    expect(rows.nth(0)).to_contain_text("50,0 %")
    expect(rows.nth(1)).to_contain_text("50,0 %")
    expect(rows.nth(2)).to_contain_text("40,0 %")
    assert [rows.nth(index).get_attribute("data-rank") for index in range(3)] == ["1", "1", "3"]
    expect(page.locator("[data-unranked]")).to_contain_text("Dirk")
    # A full page load would drop this marker; the htmx swap keeps it.
    page.evaluate("window.leaderboardMarker = 1")

    page.get_by_label("Sortieren nach").select_option("absolute")

    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Dirk")
    expect(rows.nth(0)).to_contain_text("9.999,00 €")
    assert page.evaluate("window.leaderboardMarker") == 1
    expect(page).to_have_url(re.compile(r".*ranking=absolute.*"))


def test_back_button_restores_ranking_select(org, people, live_server, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    manager_opens_leaderboard(page, live_server)
    ranking = page.get_by_label("Sortieren nach")
    rows = page.locator("[data-leaderboard] tbody tr")

    ranking.select_option("absolute")
    expect(page).to_have_url(re.compile(r".*ranking=absolute.*"))
    expect(rows).to_have_count(4)
    ranking.select_option("percent")
    expect(page).to_have_url(re.compile(r".*ranking=percent.*"))
    expect(rows).to_have_count(3)
    page.go_back()

    # The table and the select both show the absolute ranking of the restored address.
    expect(page).to_have_url(re.compile(r".*ranking=absolute.*"))
    expect(rows).to_have_count(4)
    expect(ranking).to_have_value("absolute")
