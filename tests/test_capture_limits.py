"""Limits on the expansion of recurring calendar events, for uploads and feeds."""

import datetime as dt

import pytest
from dateutil import rrule as dateutil_rrule
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from integrations.capture import ics, services
from integrations.capture.models import CalendarFeed
from pipelines.models import Activity
from tests.test_capture import BERLIN, NOW, calendar, customer, event  # noqa: F401  (customer is a fixture)
from tests.test_webhooks import LoopbackHTTPServer

UTC = dt.UTC
SECONDLY_SKIPPED = (
    "Event every-second@customer.example (Ping) was skipped: it occurs more than 1,000 times between "
    "{start} and {end}. SPM reads at most 1,000 occurrences of one event."
)


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


def every_second(day: dt.date) -> str:
    """The event from the report: one minute long, repeated every second without end."""
    return event(
        "every-second@customer.example",
        f"DTSTART:{day:%Y%m%d}T100000Z",
        f"DTEND:{day:%Y%m%d}T100100Z",
        "Ping",
        "RRULE:FREQ=SECONDLY",
        "ATTENDEE:mailto:anna@customer.example",
    )


def demo(day: dt.date) -> str:
    return event(
        "demo@customer.example",
        f"DTSTART:{day:%Y%m%d}T140000Z",
        f"DTEND:{day:%Y%m%d}T150000Z",
        "Demo",
        "ATTENDEE:mailto:anna@customer.example",
    )


def parse(data: bytes) -> ics.ParsedCalendar:
    return ics.calendar_parse(
        data, start=dt.datetime(2026, 1, 1, tzinfo=UTC), end=dt.datetime(2027, 1, 1, tzinfo=UTC), floating_zone=BERLIN
    )


def daily(uid: str, count: int) -> str:
    return event(uid, "DTSTART:20260301T090000Z", "DTEND:20260301T093000Z", "Stand-up", f"RRULE:FREQ=DAILY;COUNT={count}")


def test_secondly_event_skipped_other_events_kept():
    parsed = parse(calendar(every_second(dt.date(2026, 12, 1)), demo(dt.date(2026, 12, 2))))

    assert [meeting.uid for meeting in parsed.meetings] == ["demo@customer.example"]
    assert parsed.skipped == [SECONDLY_SKIPPED.format(start="2026-01-01", end="2027-01-01")]


def test_event_at_per_event_limit_kept(monkeypatch):
    monkeypatch.setattr(ics, "MAX_OCCURRENCES_PER_EVENT", 3)

    parsed = parse(calendar(daily("three@x", 3), daily("four@x", 4)))

    assert [meeting.uid for meeting in parsed.meetings] == ["three@x", "three@x", "three@x"]
    assert parsed.skipped == [
        (
            "Event four@x (Stand-up) was skipped: it occurs more than 3 times between 2026-01-01 and 2027-01-01. "
            "SPM reads at most 3 occurrences of one event."
        )
    ]


def test_minutely_event_before_window_skipped():
    # About 3.2 million recurrences lie between DTSTART and the window, none in it.
    rule = event("old@x", "DTSTART:20200101T090000Z", "DTEND:20200101T090100Z", "Old", "RRULE:FREQ=MINUTELY;UNTIL=20251231T000000Z")

    parsed = parse(calendar(rule, daily("kept@x", 2)))

    assert [meeting.uid for meeting in parsed.meetings] == ["kept@x", "kept@x"]
    assert parsed.skipped == [
        (
            "Event old@x (Old) was skipped: its recurrence rule repeats more than 100,000 times before the end of "
            "the period read. Shorten the rule in the calendar and export it again."
        )
    ]


def test_file_total_limit_skips_later_events(monkeypatch):
    monkeypatch.setattr(ics, "MAX_OCCURRENCES", 5)

    parsed = parse(calendar(daily("first@x", 2), daily("second@x", 3), daily("third@x", 1)))

    assert [meeting.uid for meeting in parsed.meetings] == ["first@x", "second@x"] * 2 + ["second@x"]
    assert parsed.skipped == [
        (
            "Event third@x (Stand-up) was skipped: the calendar file has more than 5 occurrences of events between "
            "2026-01-01 and 2027-01-01, and SPM reads at most 5 from one file."
        )
    ]


def test_upload_of_secondly_event_reports_it(org, member, customer, client):  # noqa: F811
    today = dt.date.today()
    client.force_login(member.user)
    data = calendar(every_second(today - dt.timedelta(days=4)), demo(today - dt.timedelta(days=3)))
    assert len(data) < 700

    response = client.post(
        reverse("calendar_upload", kwargs={"org_slug": org.slug}),
        {"file": SimpleUploadedFile("ping.ics", data)},
        follow=True,
    )

    with scopes_disabled():
        subjects = list(Activity.objects.filter(organization=org, source="calendar").values_list("subject", flat=True))
    page = response.content.decode()
    # The message names the period in the organization's time zone, whose date differs from the
    # machine's or UTC's around midnight.
    now = timezone.now()
    start = timezone.localdate(now - dt.timedelta(days=services.CALENDAR_PAST_DAYS), timezone=org.tzinfo)
    end = timezone.localdate(now + dt.timedelta(days=services.CALENDAR_FUTURE_DAYS), timezone=org.tzinfo)
    assert response.status_code == 200
    assert subjects == ["Demo"]
    assert "1 meeting added, 0 updated, 0 unchanged; 0 without a known account." in page
    assert SECONDLY_SKIPPED.format(start=start, end=end) in page


def test_feed_with_secondly_event_reports_it(org, member, customer, client):  # noqa: F811
    data = calendar(every_second(dt.date(2026, 4, 1)), demo(dt.date(2026, 4, 2)))
    with LoopbackHTTPServer(get_body=data, content_type="text/calendar") as server, scope(organization=org):
        feed = services.calendar_feed_save(member=member, url=server.url + "/cal.ics")
        result = services.calendar_feed_poll(feed=feed, now=NOW)

    with scopes_disabled():
        feed = CalendarFeed.objects.get()
        subjects = list(Activity.objects.filter(organization=org, source="calendar").values_list("subject", flat=True))
    expected = SECONDLY_SKIPPED.format(start="2025-10-22", end="2026-06-19")
    assert result.created == 1
    assert subjects == ["Demo"]
    assert feed.last_error == ""
    assert feed.last_counts["skipped"] == [expected]
    client.force_login(member.user)
    page = client.get(reverse("calendar_capture", kwargs={"org_slug": org.slug})).content.decode()
    assert expected in page


@pytest.mark.parametrize(
    "rule",
    ["FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=4,6,9,11", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"],
)
def test_rule_matching_no_date_skipped(monkeypatch, rule):
    # dateutil rebuilds its per-year tables once per candidate year or month it checks.
    rebuilds = []
    rebuild = dateutil_rrule._iterinfo.rebuild

    def counting_rebuild(info, *args):
        rebuilds.append(args)
        return rebuild(info, *args)

    monkeypatch.setattr(dateutil_rrule._iterinfo, "rebuild", counting_rebuild)
    never = event("never@customer.example", "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "Never", f"RRULE:{rule}")

    result = parse(calendar(never, demo(dt.date(2026, 3, 2))))

    assert [meeting.uid for meeting in result.meetings] == ["demo@customer.example"]
    assert result.skipped == [
        (
            "Event never@customer.example (Never) was skipped: its recurrence rule matches no date, because no day "
            "fits all of its BYMONTH, BYMONTHDAY, BYYEARDAY, BYWEEKNO and BYDAY parts (such as BYMONTH=2;BYMONTHDAY=30). "
            "Correct the rule in the calendar and export it again."
        )
    ]
    # The probe checks the 400 years 9600 to 9999 once. Without it, dateutil checks every year or
    # month from 2026 to 9999 (7,974 years, 95,688 months).
    assert len(rebuilds) == 400
