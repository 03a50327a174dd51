"""A 1:1 in a real browser, in English and in German: schedule it, work through the generated agenda, save notes.

Drives Debian's /usr/bin/chromium through Playwright (see tests/test_browser.py
for the fixture's reasons); skips without the binary unless SPM_REQUIRE_BROWSER=1.

Scenario (team North of Acme, manager `manager@acme.example`):
- an earlier 1:1 with rep A left the action item "Send two references" open;
- in the current quarter rep A converted 1 of 5 deals from Qualified to
  Proposal, B 2 of 4 and C 3 of 4, so A is below the team median of 0.5.
Scheduling a new 1:1 with A generates an agenda of the carried action item and
the conversion signal. The manager reorders it, ticks an item off, saves a
shared and a private note and agrees an action item, all through htmx swaps.
The flow runs once per interface language (the manager's profile setting) and
finds every control by its translated label, so a missing or stale German
translation fails the German run.
"""

import datetime as dt
import re

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from coaching import services
from coaching.models import ActionItem, AgendaItem, CoachingNote, OneOnOne
from goals.attainment import organization_today
from pipelines.models import StageKind
from spm.fiscal import QUARTER, period_containing
from spm.models import Role
from tests.factories import (
    DealFactory,
    MembershipFactory,
    PipelineFactory,
    StageFactory,
    UserFactory,
)
from tests.test_browser import MANAGER_PASSWORD, browser_page  # noqa: F401  (fixture)
from tests.test_browser_import import in_plain_thread

pytestmark = pytest.mark.browser

# What the flow reads and clicks, per interface language. The German texts are the
# msgstr entries of locale/de/LC_MESSAGES/django.po for the English msgids, and the
# dates follow Django's SHORT_DATETIME_FORMAT of each locale.
UI_TEXT = {
    "en": {
        "schedule_link": "Schedule a 1:1",
        "rep_label": "Rep",
        "date_label": "Date",
        "time_label": "Time",
        "period_label": "Period of the numbers",
        "schedule_button": "Schedule and generate the agenda",
        "heading": "1:1 with Anna Rep",
        "scheduled_at": "01/15/2030 10:30 a.m.",
        "conversion_title": "Stage conversion Qualified → Proposal",
        "team_median": re.compile(r"team median: 50\.0%"),
        "rep_value": re.compile(r"^20\.0%$"),
        "move_up": "Move up",
        "discussed": "Discussed",
        "save": "Save",
        "new_note": "New note",
        "shared_with_rep": "Shared with the rep",
        "save_note": "Save note",
        # Django's "P" format writes "10 a.m." on the hour and "noon" or "midnight" at 12.
        "note_timestamp": re.compile(r"\d{2}/\d{2}/\d{4} (\d{1,2}(:\d{2})? [ap]\.m\.|noon|midnight)"),
        "new_action_item": "New action item",
        "add": "Add",
    },
    "de": {
        "schedule_link": "1:1 planen",
        "rep_label": "Vertriebsmitarbeiter/in",
        "date_label": "Datum",
        "time_label": "Zeitpunkt",
        "period_label": "Zeitraum der Zahlen",
        "schedule_button": "Planen und Agenda erstellen",
        "heading": "1:1 mit Anna Rep",
        "scheduled_at": "15.01.2030 10:30",
        "conversion_title": "Phasenkonversion Qualified → Proposal",
        "team_median": re.compile(r"Team-Median: 50,0\s%"),
        "rep_value": re.compile(r"^20,0\s%$"),
        "move_up": "Nach oben",
        "discussed": "Besprochen",
        "save": "Speichern",
        "new_note": "Neue Notiz",
        "shared_with_rep": "Mit Ihrem Gegenüber geteilt",
        "save_note": "Notiz speichern",
        "note_timestamp": re.compile(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}"),
        "new_action_item": "Neue Aufgabe",
        "add": "Hinzufügen",
    },
}


@pytest.fixture
def coaching_data(org, manager_member, member, other_rep, language):
    """The team's deals in the current quarter and an earlier 1:1 of rep A with one open action item.

    The manager's profile language is set to `language`, so every page after the login is in it.
    """
    quarter = period_containing(organization_today(org), QUARTER, org.fiscal_year_start_month)
    created_at = dt.datetime.combine(quarter.start, dt.time(12, 0), tzinfo=org.tzinfo)
    with scopes_disabled():
        manager_member.user.language = language
        manager_member.user.save(update_fields=["language"])
        member.user.name = "Anna Rep"
        member.user.save(update_fields=["name"])
        rep_c = MembershipFactory(
            organization=org, role=Role.REP, team=member.team, manager=manager_member, user=UserFactory(email="c@acme.example")
        )
        pipeline = PipelineFactory(organization=org)
        qualified = StageFactory(pipeline=pipeline, name="Qualified", order=1)
        proposal = StageFactory(pipeline=pipeline, name="Proposal", order=2)
        StageFactory(pipeline=pipeline, name="Won", order=3, kind=StageKind.WON)
        for rep, at_qualified, at_proposal in ((member, 4, 1), (other_rep, 2, 2), (rep_c, 1, 3)):
            for stage, count in ((qualified, at_qualified), (proposal, at_proposal)):
                for _index in range(count):
                    DealFactory(owner=rep, stage=stage, created_at=created_at)

    with scope(organization=org):
        earlier = services.one_on_one_create(
            organization=org,
            manager=manager_member,
            rep=member,
            scheduled_at=timezone.now() - dt.timedelta(days=14),
            period=quarter,
        )
        services.action_item_add(
            one_on_one=earlier, actor=manager_member, title="Send two references", owner=member, due_on=None
        )
    return quarter


def wait_for_htmx_idle(page) -> None:
    """Wait until no htmx request, swap or settle is in progress, so a fill does not go to an input being replaced."""
    from playwright.sync_api import expect

    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


@pytest.mark.parametrize("language", ["en", "de"])
def test_one_on_one_from_agenda_to_notes(
    org, manager_member, member, language, coaching_data, live_server, browser_page
):
    from playwright.sync_api import expect

    text = UI_TEXT[language]
    page = browser_page
    coaching_path = f"/o/{org.slug}/coaching/"
    page.goto(f"{live_server.url}/accounts/login/?next={coaching_path}")
    page.locator("input[name=login]").fill("manager@acme.example")
    page.locator("input[name=password]").fill(MANAGER_PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}{coaching_path}")
    assert page.locator("html").get_attribute("lang") == language

    page.get_by_role("link", name=text["schedule_link"]).click()
    page.get_by_label(text["rep_label"]).select_option(label="Anna Rep")
    page.get_by_label(text["date_label"], exact=True).fill("2030-01-15")
    page.get_by_label(text["time_label"]).fill("10:30")
    expect(page.get_by_label(text["period_label"])).to_have_value(coaching_data.label)
    page.get_by_role("button", name=text["schedule_button"]).click()

    # The generated agenda: the open action item of the earlier 1:1, then the conversion signal.
    expect(page.locator("h1")).to_have_text(text["heading"])
    expect(page.locator("h1 + p")).to_contain_text(text["scheduled_at"])
    items = page.locator("[data-agenda-item] input[name=title]")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_have_value("Send two references")
    expect(items.nth(1)).to_have_value(text["conversion_title"])
    expect(page.locator("[data-agenda-signal]")).to_contain_text(text["team_median"])
    expect(page.locator("[data-signal] [data-rep-value]").first).to_have_text(text["rep_value"])

    # A full page load would drop this marker; the htmx swaps keep it.
    page.evaluate("window.spmNoReloadMarker = true")
    page.locator("[data-agenda-item]").nth(1).get_by_role("button", name=text["move_up"]).click()
    expect(items.nth(0)).to_have_value(text["conversion_title"])
    first = page.locator("[data-agenda-item]").nth(0)
    first.get_by_label(text["discussed"]).check()
    first.get_by_role("button", name=text["save"]).click()
    expect(page.locator("[data-agenda-item]").nth(0).get_by_label(text["discussed"])).to_be_checked()

    page.get_by_label(text["new_note"]).fill("Agreed to qualify harder before proposals.")
    page.get_by_label(text["shared_with_rep"]).check()
    page.get_by_role("button", name=text["save_note"]).click()
    expect(page.locator("[data-note][data-visibility=shared]")).to_contain_text("Agreed to qualify harder")
    expect(page.locator("[data-note][data-visibility=shared]")).to_contain_text(text["note_timestamp"])
    wait_for_htmx_idle(page)
    page.get_by_label(text["new_note"]).fill("Check in again next week.")
    page.get_by_role("button", name=text["save_note"]).last.click()
    expect(page.locator("[data-note][data-visibility=private]")).to_contain_text("Check in again next week.")

    wait_for_htmx_idle(page)
    page.get_by_label(text["new_action_item"]).fill("Review every open proposal")
    with page.expect_response(lambda response: response.request.method == "POST" and "/action-items/" in response.url) as posted:
        page.get_by_role("button", name=text["add"], exact=True).click()
    body = posted.value.text()
    # The item must come back as a row, not only as the value of a re-shown (invalid) form.
    assert "<td>Review every open proposal" in body, f"the add answered {posted.value.status} without the row:\n{body[:3000]}"
    expect(page.locator("#action-items [data-action-item]").filter(has_text="Review every open proposal")).to_have_count(
        1, timeout=15_000
    )
    assert page.evaluate("window.spmNoReloadMarker") is True

    page.reload()
    expect(page.locator("[data-note]")).to_have_count(2)

    def saved_rows():
        one_on_one = OneOnOne.objects.get(scheduled_at__year=2030)
        return (
            list(AgendaItem.objects.filter(one_on_one=one_on_one).order_by("position").values_list("title", "is_discussed")),
            sorted(CoachingNote.objects.filter(one_on_one=one_on_one).values_list("visibility", "text")),
            list(ActionItem.objects.filter(one_on_one=one_on_one).values_list("title", flat=True)),
        )

    agenda, notes, action_titles = in_plain_thread(saved_rows)
    # The generated item was saved with its label unchanged, so it stores no text and each reader sees its label.
    assert agenda == [("", True), ("Send two references", False)]
    assert notes == [("private", "Check in again next week."), ("shared", "Agreed to qualify harder before proposals.")]
    assert action_titles == ["Review every open proposal"]
