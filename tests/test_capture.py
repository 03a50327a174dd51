"""Activity capture: ICS parsing across daylight-saving changes, calendar uploads and feeds, the IMAP mailbox."""

import datetime as dt
import re
import socketserver
import threading
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from integrations.capture import ics, services
from integrations.capture.forms import MailboxForm
from integrations.capture.models import AccountDomain, CalendarFeed, Mailbox
from integrations.capture.tasks import calendar_feed_poll_schedule, mailbox_poll_schedule
from pipelines.models import Activity, ActivityKind, DealStatus
from spm.models import Role
from tests.attainment_data import deal_create
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from tests.test_webhooks import LoopbackHTTPServer

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.UTC
NOW = dt.datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


def calendar(*events: str) -> bytes:
    body = "".join(events)
    text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//SPM tests//EN\r\n{body}END:VCALENDAR\r\n"
    return text.encode("utf-8")


def event(uid: str, start: str, end: str, summary: str, *extra: str) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", start, end, f"SUMMARY:{summary}", *extra, "END:VEVENT"]
    return "\r\n".join(lines) + "\r\n"


WEEKLY_ACROSS_MARCH_DST = event(
    "weekly-sync@customer.example",
    "DTSTART;TZID=Europe/Berlin:20260316T100000",
    "DTEND;TZID=Europe/Berlin:20260316T110000",
    "Weekly sync",
    "RRULE:FREQ=WEEKLY;COUNT=4",
    "ORGANIZER:mailto:rep@acme.example",
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:Anna@Customer.example",
)


def recent_weekly() -> str:
    """A weekly meeting that started three weeks before today, for pages that read relative to now."""
    first = dt.date.today() - dt.timedelta(days=21)
    return event(
        "recent-weekly@customer.example",
        f"DTSTART;TZID=Europe/Berlin:{first:%Y%m%d}T100000",
        f"DTEND;TZID=Europe/Berlin:{first:%Y%m%d}T110000",
        "Weekly sync",
        "RRULE:FREQ=WEEKLY;COUNT=3",
        "ATTENDEE:mailto:anna@customer.example",
    )


def parse(data: bytes, start=dt.datetime(2026, 1, 1, tzinfo=UTC), end=dt.datetime(2027, 1, 1, tzinfo=UTC)):
    return ics.calendar_parse(data, start=start, end=end, floating_zone=BERLIN).meetings


# --- parsing ---------------------------------------------------------------------------------------


def test_weekly_meeting_keeps_local_time_across_march_change():
    meetings = parse(calendar(WEEKLY_ACROSS_MARCH_DST))

    # Summer time starts on 29 March 2026: 10:00 in Berlin is 09:00 UTC before and 08:00 UTC after.
    assert [meeting.starts_at for meeting in meetings] == [
        dt.datetime(2026, 3, 16, 9, tzinfo=UTC),
        dt.datetime(2026, 3, 23, 9, tzinfo=UTC),
        dt.datetime(2026, 3, 30, 8, tzinfo=UTC),
        dt.datetime(2026, 4, 6, 8, tzinfo=UTC),
    ]
    assert {meeting.starts_at.astimezone(BERLIN).time() for meeting in meetings} == {dt.time(10, 0)}
    assert {meeting.ends_at - meeting.starts_at for meeting in meetings} == {dt.timedelta(hours=1)}
    assert [meeting.recurrence_id for meeting in meetings] == [
        "20260316T090000Z",
        "20260323T090000Z",
        "20260330T080000Z",
        "20260406T080000Z",
    ]
    assert meetings[0].attendees == ["anna@customer.example", "rep@acme.example"]


def test_weekly_meeting_keeps_local_time_across_october_change():
    data = calendar(
        event(
            "autumn@customer.example",
            "DTSTART;TZID=Europe/Berlin:20261019T100000",
            "DTEND;TZID=Europe/Berlin:20261019T103000",
            "Autumn review",
            "RRULE:FREQ=WEEKLY;UNTIL=20261102T235959Z",
        )
    )

    meetings = parse(data)

    # Winter time starts on 25 October 2026.
    assert [meeting.starts_at.hour for meeting in meetings] == [8, 9, 9]
    assert [meeting.starts_at.day for meeting in meetings] == [19, 26, 2]


def test_utc_and_floating_times():
    data = calendar(
        event("utc@x", "DTSTART:20260210T150000Z", "DTEND:20260210T160000Z", "In UTC"),
        event("floating@x", "DTSTART:20260210T100000", "DTEND:20260210T110000", "Floating"),
    )

    meetings = {meeting.uid: meeting for meeting in parse(data)}

    assert meetings["utc@x"].starts_at == dt.datetime(2026, 2, 10, 15, tzinfo=UTC)
    # A floating time is read in the organization's zone: 10:00 in Berlin in February is 09:00 UTC.
    assert meetings["floating@x"].starts_at == dt.datetime(2026, 2, 10, 9, tzinfo=UTC)


def test_duration_instead_of_end():
    data = calendar(event("dur@x", "DTSTART:20260210T150000Z", "DURATION:PT45M", "Short call"))

    meetings = parse(data)

    assert meetings[0].ends_at - meetings[0].starts_at == dt.timedelta(minutes=45)


def test_exceptions_cancellations_and_all_day_events():
    data = calendar(
        event(
            "series@x",
            "DTSTART;TZID=Europe/Berlin:20260302T140000",
            "DTEND;TZID=Europe/Berlin:20260302T150000",
            "Series",
            "RRULE:FREQ=DAILY;COUNT=3",
            "EXDATE;TZID=Europe/Berlin:20260303T140000",
        ),
        event(
            "series@x",
            "DTSTART;TZID=Europe/Berlin:20260304T160000",
            "DTEND;TZID=Europe/Berlin:20260304T170000",
            "Series moved",
            "RECURRENCE-ID;TZID=Europe/Berlin:20260304T140000",
        ),
        event("cancelled@x", "DTSTART:20260305T100000Z", "DTEND:20260305T110000Z", "Cancelled", "STATUS:CANCELLED"),
        event("allday@x", "DTSTART;VALUE=DATE:20260306", "DTEND;VALUE=DATE:20260307", "Trade fair"),
    )

    meetings = parse(data)

    assert [(meeting.summary, meeting.starts_at) for meeting in meetings] == [
        ("Series", dt.datetime(2026, 3, 2, 13, tzinfo=UTC)),
        ("Series moved", dt.datetime(2026, 3, 4, 15, tzinfo=UTC)),
    ]
    # The moved occurrence keeps the recurrence id of its original slot.
    assert meetings[1].recurrence_id == "20260304T130000Z"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The calendar file is empty."),
        (b"\xff\xfe\x00B", "not UTF-8 text"),
        (b"Subject,Start\nLunch,2026-01-01\n", "does not start with BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:notadate\r\nEND:VCALENDAR\r\n", "not a valid iCalendar file"),
    ],
)
def test_bad_files_named(data, message):
    with pytest.raises(ics.CalendarFileError) as error:
        parse(data)

    assert message in str(error.value)


# --- capture into activities -----------------------------------------------------------------------


@pytest.fixture
def customer(org):
    with scope(organization=org):
        account = AccountFactory(organization=org, name="Customer GmbH")
        AccountDomain.objects.create(organization=org, account=account, domain="customer.example")
        return account


@pytest.fixture
def stages_org(org):
    from tests.attainment_data import stages_create

    with scopes_disabled():
        return stages_create(org)


def test_upload_creates_meetings_on_own_open_deal(org, member, other_rep, customer, stages_org):
    with scope(organization=org):
        others_deal = deal_create(other_rep, stages_org, DealStatus.OPEN, "100.00", created_at=dt.datetime(2026, 3, 1, tzinfo=UTC))
        own_old = deal_create(member, stages_org, DealStatus.OPEN, "100.00", created_at=dt.datetime(2025, 1, 1, tzinfo=UTC))
        own_new = deal_create(member, stages_org, DealStatus.OPEN, "100.00", created_at=dt.datetime(2025, 6, 1, tzinfo=UTC))
        own_won = deal_create(member, stages_org, DealStatus.WON, "100.00", created_at=dt.datetime(2026, 2, 1, tzinfo=UTC))
        for deal in (others_deal, own_old, own_new, own_won):
            deal.account = customer
            deal.save(update_fields=["account"])
        data = calendar(
            WEEKLY_ACROSS_MARCH_DST,
            event("internal@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Team call", "ATTENDEE:mailto:rep2@acme.example"),
        )

        result = services.calendar_file_capture(member=member, data=data, now=NOW)

        activities = list(Activity.objects.filter(source="calendar").order_by("occurred_at"))
    assert result.as_dict() == {"created": 4, "updated": 0, "unchanged": 0, "unmatched": 1, "without_member": 0, "too_old": 0}
    assert [activity.occurred_at for activity in activities] == [
        dt.datetime(2026, 3, 16, 9, tzinfo=UTC),
        dt.datetime(2026, 3, 23, 9, tzinfo=UTC),
        dt.datetime(2026, 3, 30, 8, tzinfo=UTC),
        dt.datetime(2026, 4, 6, 8, tzinfo=UTC),
    ]
    assert {activity.kind for activity in activities} == {ActivityKind.MEETING}
    assert {activity.deal_id for activity in activities} == {own_new.pk}
    assert {activity.account_id for activity in activities} == {customer.pk}
    assert {activity.owner_id for activity in activities} == {member.pk}
    assert {activity.duration for activity in activities} == {dt.timedelta(hours=1)}
    assert all(activity.is_captured and activity.is_done for activity in activities)
    assert activities[0].subject == "Weekly sync"


def test_reupload_is_idempotent(org, member, customer):
    data = calendar(WEEKLY_ACROSS_MARCH_DST)
    with scope(organization=org):
        services.calendar_file_capture(member=member, data=data, now=NOW)

        again = services.calendar_file_capture(member=member, data=data, now=NOW)

        assert Activity.objects.filter(source="calendar").count() == 4
    assert again.as_dict() == {"created": 0, "updated": 0, "unchanged": 4, "unmatched": 0, "without_member": 0, "too_old": 0}


def test_meeting_falls_back_to_any_open_deal_then_account(org, member, other_rep, customer, stages_org):
    data = calendar(event("one@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Demo", "ATTENDEE:mailto:cto@mail.customer.example"))
    with scope(organization=org):
        services.calendar_file_capture(member=member, data=data, now=NOW)
        without_deal = Activity.objects.get(source="calendar")
        assert without_deal.deal_id is None
        assert without_deal.account_id == customer.pk

        others_deal = deal_create(other_rep, stages_org, DealStatus.OPEN, "100.00")
        others_deal.account = customer
        others_deal.save(update_fields=["account"])
        services.calendar_file_capture(member=member, data=data, now=NOW)

        assert Activity.objects.get(source="calendar").deal_id == others_deal.pk


def test_future_meeting_planned_then_done(org, member, customer):
    data = calendar(event("later@x", "DTSTART:20260501T100000Z", "DTEND:20260501T110000Z", "Later", "ATTENDEE:mailto:a@customer.example"))
    with scope(organization=org):
        services.calendar_file_capture(member=member, data=data, now=NOW)
        assert not Activity.objects.get(source="calendar").is_done

        result = services.calendar_file_capture(member=member, data=data, now=dt.datetime(2026, 5, 2, tzinfo=UTC))

        assert Activity.objects.get(source="calendar").is_done
    assert result.updated == 1


def test_meetings_before_retention_not_captured(org, member, customer):
    with scopes_disabled():
        org.activity_retention_days = 30
        org.save(update_fields=["activity_retention_days"])
    data = calendar(
        event("old@x", "DTSTART:20260220T100000Z", "DTEND:20260220T110000Z", "Old", "ATTENDEE:mailto:a@customer.example"),
        event("recent@x", "DTSTART:20260410T100000Z", "DTEND:20260410T110000Z", "Recent", "ATTENDEE:mailto:a@customer.example"),
    )
    with scope(organization=member.organization):
        result = services.calendar_file_capture(member=member, data=data, now=NOW)

        subjects = list(Activity.objects.filter(source="calendar").values_list("subject", flat=True))
    # The nightly retention job deletes activities older than 30 days, so capture must not bring them back.
    assert subjects == ["Recent"]
    assert result.created == 1


def test_declined_meeting_skipped(org, member, customer):
    data = calendar(
        event(
            "declined@x",
            "DTSTART:20260317T100000Z",
            "DTEND:20260317T110000Z",
            "Declined",
            "ATTENDEE;PARTSTAT=DECLINED:mailto:rep@acme.example",
            "ATTENDEE:mailto:a@customer.example",
        )
    )
    with scope(organization=org):
        result = services.calendar_file_capture(member=member, data=data, now=NOW)

    assert result.created == 0


# --- calendar pages and feeds ----------------------------------------------------------------------


def test_upload_page_reports_counts_and_bad_file(org, member, customer, client):
    client.force_login(member.user)
    url = reverse("calendar_upload", kwargs={"org_slug": org.slug})

    good = client.post(url, {"file": SimpleUploadedFile("team.ics", calendar(recent_weekly()))}, follow=True)
    bad = client.post(url, {"file": SimpleUploadedFile("export.csv", b"Subject,Start\n")}, follow=True)

    assert "3 meetings added, 0 updated, 0 unchanged; 0 without a known account." in good.content.decode()
    assert "export.csv: The file does not start with BEGIN:VCALENDAR" in bad.content.decode()


def test_feed_read_from_loopback_server(org, member, customer, client):
    with LoopbackHTTPServer(get_body=calendar(recent_weekly()), content_type="text/calendar") as server:
        client.force_login(member.user)
        response = client.post(
            reverse("calendar_capture", kwargs={"org_slug": org.slug}), {"url": server.url + "/cal.ics"}, follow=True
        )
        enqueued = calendar_feed_poll_schedule.delay().get()

    with scopes_disabled():
        feed = CalendarFeed.objects.get()
        count = Activity.objects.filter(organization=org, source="calendar").count()
    assert response.status_code == 200
    assert server.requests[0]["path"] == "/cal.ics"
    assert len(server.requests) == 2
    assert enqueued == 1
    assert count == 3
    assert feed.member_id == member.pk
    assert feed.last_error == ""
    # The hourly poll read the same meetings again and changed nothing.
    assert feed.last_counts == {"created": 0, "updated": 0, "unchanged": 3, "unmatched": 0, "without_member": 0, "too_old": 0}


def test_feed_counts_meetings_in_window(org, member, customer):
    data = calendar(event("one@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Demo", "ATTENDEE:mailto:a@customer.example"))
    with LoopbackHTTPServer(get_body=data) as server, scope(organization=org):
        feed = services.calendar_feed_save(member=member, url=server.url)
        first = services.calendar_feed_poll(feed=feed, now=NOW)
        second = services.calendar_feed_poll(feed=feed, now=NOW)

    assert first.created == 1
    assert second.unchanged == 1


def test_feed_follows_redirects_and_webcal(org, member, customer):
    data = calendar(event("one@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Demo", "ATTENDEE:mailto:a@customer.example"))
    with LoopbackHTTPServer(get_body=data, redirects={"/old": "/new", "/new": "/cal.ics"}) as server, scope(organization=org):
        assert services.webcal_to_https("webcal://cal.example/x.ics") == "https://cal.example/x.ics"
        feed = services.calendar_feed_save(member=member, url=server.url + "/old")
        result = services.calendar_feed_poll(feed=feed, now=NOW)

    assert [request["path"] for request in server.requests] == ["/old", "/new", "/cal.ics"]
    assert result.created == 1


def test_feed_redirect_loop_stops(org, member):
    with LoopbackHTTPServer(redirects={"/loop": "/loop"}) as server, scope(organization=org):
        feed = services.calendar_feed_save(member=member, url=server.url + "/loop")
        result = services.calendar_feed_poll(feed=feed, now=NOW)

    assert result is None
    assert feed.last_error == "More than 3 redirects; use the final address of the calendar."
    assert len(server.requests) == 4


def test_feed_error_stored_on_feed(org, member):
    with LoopbackHTTPServer([(404, b"")]) as server, scope(organization=org):
        feed = services.calendar_feed_save(member=member, url=server.url)
        result = services.calendar_feed_poll(feed=feed, now=NOW)

    assert result is None
    assert feed.last_error == "The calendar server returned HTTP status 404 instead of 200."


def test_feed_form_rejects_loopback_in_production(org, member, client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    client.force_login(member.user)

    response = client.post(reverse("calendar_capture", kwargs={"org_slug": org.slug}), {"url": "https://127.0.0.1:8000/cal.ics"})

    assert "only public addresses are allowed" in response.content.decode()
    with scopes_disabled():
        assert CalendarFeed.objects.count() == 0


def test_feed_form_rejects_http_in_production(org, member, client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    client.force_login(member.user)

    response = client.post(reverse("calendar_capture", kwargs={"org_slug": org.slug}), {"url": "http://cal.example/cal.ics"})

    assert "http://cal.example/cal.ics must start with https:// or webcal://." in response.content.decode()
    with scopes_disabled():
        assert CalendarFeed.objects.count() == 0


def test_feed_form_scheme_error_in_german(org, member, client, settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    member.user.language = "de"
    member.user.save(update_fields=["language"])
    client.force_login(member.user)

    response = client.post(reverse("calendar_capture", kwargs={"org_slug": org.slug}), {"url": "ftp://cal.example/cal.ics"})

    assert "ftp://cal.example/cal.ics muss mit http://, https:// oder webcal:// beginnen." in response.content.decode()


def test_feed_form_help_names_accepted_schemes(org, member, client):
    client.force_login(member.user)

    response = client.get(reverse("calendar_capture", kwargs={"org_slug": org.slug}))

    assert "starting with https:// or webcal://" in response.content.decode()


def test_stored_http_feed_not_polled(org, member, settings):
    with scopes_disabled():
        feed = CalendarFeed.objects.create(organization=org, member=member, url="http://cal.example/cal.ics")
    settings.WEBHOOKS_ALLOW_LOOPBACK = False

    with scope(organization=org):
        result = services.calendar_feed_poll(feed=feed, now=NOW)

    assert result is None
    assert feed.last_error == "http://cal.example/cal.ics must start with https://."


def test_webcal_feed_stored_as_https(org, member):
    with scope(organization=org):
        feed = services.calendar_feed_save(member=member, url="webcal://127.0.0.1:9/cal.ics")

    assert feed.url == "https://127.0.0.1:9/cal.ics"


def test_rep_sees_and_removes_only_own_feed(org, member, other_rep, client):
    with scopes_disabled():
        CalendarFeed.objects.create(organization=org, member=other_rep, url="https://cal.example/other-secret.ics")
        CalendarFeed.objects.create(organization=org, member=member, url="https://cal.example/mine.ics")
    client.force_login(member.user)

    page = client.get(reverse("calendar_capture", kwargs={"org_slug": org.slug})).content.decode()
    client.post(reverse("calendar_feed_delete", kwargs={"org_slug": org.slug}))

    assert "mine.ics" in page
    assert "other-secret.ics" not in page
    with scopes_disabled():
        assert list(CalendarFeed.objects.values_list("member_id", flat=True)) == [other_rep.pk]


# --- IMAP --------------------------------------------------------------------------------------------


class FakeIMAPServer:
    """A loopback IMAP4rev1 subset for imaplib: CAPABILITY, LOGIN, EXAMINE/SELECT, UID SEARCH, UID FETCH, LOGOUT."""

    def __init__(self, messages: dict[int, bytes], *, password="secret", uid_validity=7):
        self.messages = messages
        self.password = password
        self.uid_validity = uid_validity
        self.commands = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def send(self, text):
                self.wfile.write(text if isinstance(text, bytes) else text.encode())

            def handle(self):
                self.send("* OK SPM test IMAP ready\r\n")
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
                    fake.commands.append(rest)
                    command = rest.split(" ", 1)[0].upper()
                    if command == "CAPABILITY":
                        self.send(f"* CAPABILITY IMAP4rev1\r\n{tag} OK CAPABILITY done\r\n")
                    elif command == "LOGIN":
                        password = rest.rsplit(" ", 1)[1].strip('"')
                        if password == fake.password:
                            self.send(f"{tag} OK LOGIN done\r\n")
                        else:
                            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
                    elif command in ("EXAMINE", "SELECT"):
                        self.send(
                            f"* {len(fake.messages)} EXISTS\r\n* OK [UIDVALIDITY {fake.uid_validity}] UIDs valid\r\n"
                            f"{tag} OK [READ-ONLY] {command} done\r\n"
                        )
                    elif rest.upper().startswith("UID SEARCH"):
                        first = int(re.search(r"UID (\d+):\*", rest, re.IGNORECASE).group(1))
                        uids = [uid for uid in sorted(fake.messages) if uid >= first] or sorted(fake.messages)[-1:]
                        self.send(f"* SEARCH {' '.join(map(str, uids))}\r\n{tag} OK SEARCH done\r\n")
                    elif rest.upper().startswith("UID FETCH"):
                        wanted = [int(uid) for uid in rest.split(" ")[2].split(",")]
                        for number, uid in enumerate(sorted(fake.messages), start=1):
                            if uid in wanted:
                                raw = fake.messages[uid]
                                self.send(
                                    f"* {number} FETCH (UID {uid} BODY[HEADER.FIELDS (MESSAGE-ID FROM TO CC DATE SUBJECT)] {{{len(raw)}}}\r\n".encode()
                                    + raw
                                    + b")\r\n"
                                )
                        self.send(f"{tag} OK FETCH done\r\n")
                    elif command == "LOGOUT":
                        self.send(f"* BYE logging out\r\n{tag} OK LOGOUT done\r\n")
                        return
                    else:
                        self.send(f"{tag} BAD unknown command\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def message(message_id: str, sender: str, to: str, subject: str, date="Tue, 17 Mar 2026 10:15:00 +0100", cc="") -> bytes:
    lines = [f"Message-ID: <{message_id}>", f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}"]
    if cc:
        lines.append(f"Cc: {cc}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def mailbox_messages():
    return {
        1: message("m1@acme.example", "Rep One <rep@acme.example>", "Anna <anna@customer.example>", "Offer"),
        2: message("m2@customer.example", "anna@customer.example", "rep2@acme.example", "=?utf-8?q?R=C3=BCckfrage?=", cc="rep@acme.example"),
        # The same message again, e.g. copied into the folder twice.
        3: message("m2@customer.example", "anna@customer.example", "rep2@acme.example", "=?utf-8?q?R=C3=BCckfrage?=", cc="rep@acme.example"),
        4: message("m4@unknown.example", "someone@unknown.example", "rep@acme.example", "Newsletter"),
        5: message("m5@customer.example", "anna@customer.example", "bob@customer.example", "Internal at the customer"),
    }


def mailbox_create(org, port, password="secret"):
    with scopes_disabled():
        return Mailbox.objects.create(
            organization=org, host="127.0.0.1", port=port, use_ssl=False, username="capture@acme.example", password=password
        )


def test_mailbox_poll_creates_email_activities_deduplicated(org, member, other_rep, customer, mailbox_messages):
    with FakeIMAPServer(mailbox_messages) as server:
        mailbox = mailbox_create(org, server.port)
        with scope(organization=org):
            first = services.mailbox_poll(mailbox=mailbox)
            activities = {activity.external_id: activity for activity in Activity.objects.filter(source="email")}

    assert first.as_dict() == {"created": 2, "updated": 0, "unchanged": 0, "unmatched": 1, "without_member": 1, "too_old": 0}
    assert set(activities) == {"m1@acme.example", "m2@customer.example"}
    sent, received = activities["m1@acme.example"], activities["m2@customer.example"]
    assert sent.owner_id == member.pk
    assert sent.type_name == "E-Mail gesendet"  # the organization writes German
    assert sent.kind == ActivityKind.EMAIL
    assert sent.account_id == customer.pk
    assert sent.occurred_at == dt.datetime(2026, 3, 17, 9, 15, tzinfo=UTC)
    # Received: the first member among the recipients (To before Cc, sorted) owns it.
    assert received.owner_id == other_rep.pk
    assert received.type_name == "E-Mail empfangen"
    assert received.subject == "Rückfrage"
    assert mailbox.last_uid == 5
    assert mailbox.uid_validity == 7
    assert any(command.upper().startswith("UID FETCH 1,2,3,4,5 (UID BODY.PEEK[HEADER.FIELDS") for command in server.commands)


def test_mailbox_second_poll_reads_only_new_messages(org, member, customer, mailbox_messages):
    with FakeIMAPServer(mailbox_messages) as server:
        mailbox = mailbox_create(org, server.port)
        with scope(organization=org):
            services.mailbox_poll(mailbox=mailbox)
            server.messages[6] = message("m6@customer.example", "rep@acme.example", "anna@customer.example", "Follow-up")
            second = services.mailbox_poll(mailbox=mailbox)
            third = services.mailbox_poll(mailbox=mailbox)

    assert second.created == 1
    assert mailbox.last_uid == 6
    assert third.as_dict() == {"created": 0, "updated": 0, "unchanged": 0, "unmatched": 0, "without_member": 0, "too_old": 0}


def test_mailbox_renumbered_folder_does_not_double(org, member, other_rep, customer, mailbox_messages):
    with FakeIMAPServer(mailbox_messages) as server:
        mailbox = mailbox_create(org, server.port)
        with scope(organization=org):
            services.mailbox_poll(mailbox=mailbox)
            server.uid_validity = 8
            again = services.mailbox_poll(mailbox=mailbox)

            assert Activity.objects.filter(source="email").count() == 2
    assert again.created == 0
    assert again.unchanged == 2
    assert mailbox.uid_validity == 8


def test_mailbox_skips_messages_before_retention(org, member, customer):
    with scopes_disabled():
        org.activity_retention_days = 30
        org.save(update_fields=["activity_retention_days"])
    messages = {
        1: message("old@acme.example", "rep@acme.example", "anna@customer.example", "Old offer", date="Mon, 2 Feb 2026 10:00:00 +0100"),
        2: message("new@acme.example", "rep@acme.example", "anna@customer.example", "New offer", date="Mon, 13 Apr 2026 10:00:00 +0200"),
    }
    with FakeIMAPServer(messages) as server:
        mailbox = mailbox_create(org, server.port)
        with scope(organization=org):
            result = services.mailbox_poll(mailbox=mailbox, now=NOW)

            subjects = list(Activity.objects.filter(source="email").values_list("subject", flat=True))
    assert subjects == ["New offer"]
    assert result.too_old == 1
    assert mailbox.last_uid == 2


def test_mailbox_login_failure_stored(org, member, mailbox_messages):
    with FakeIMAPServer(mailbox_messages) as server:
        mailbox = mailbox_create(org, server.port, password="wrong")
        with scope(organization=org):
            result = services.mailbox_poll(mailbox=mailbox)

    assert result is None
    assert mailbox.last_error.startswith("Login to the IMAP server failed:")
    assert "Invalid credentials" in mailbox.last_error
    assert mailbox.last_uid == 0


def test_mailbox_schedule_polls_every_active_mailbox(org, member, customer, mailbox_messages):
    with FakeIMAPServer(mailbox_messages) as server:
        mailbox_create(org, server.port)
        enqueued = mailbox_poll_schedule.delay().get()

    with scopes_disabled():
        assert Activity.objects.filter(organization=org, source="email").count() == 2
    assert enqueued == 1


def test_mailbox_page_keeps_password_out_of_html_and_audit(org, admin_member, client):
    client.force_login(admin_member.user)
    url = reverse("mailbox_settings", kwargs={"org_slug": org.slug})

    client.post(
        url,
        {"host": "127.0.0.1", "port": "143", "username": "capture", "password": "pa55-word", "folder": "INBOX", "is_active": "on"},
    )
    page = client.get(url).content.decode()

    with scopes_disabled():
        mailbox = Mailbox.objects.get()
        from spm.models import AuditLog

        audit = AuditLog.objects.get(action="capture.mailbox_saved")
    assert mailbox.password == "pa55-word"
    assert mailbox.use_ssl is False
    assert "pa55-word" not in page
    assert "pa55-word" not in str(audit.after)
    assert audit.after["password_changed"] is True


@pytest.mark.parametrize("host", ["a b", "imap.example:993", "imap://imap.example", "imap.example/inbox", "-imap.example"])
def test_mailbox_form_rejects_invalid_host(host):
    form = MailboxForm({"host": host, "port": "993", "username": "capture", "password": "pw", "folder": "INBOX"})

    assert not form.is_valid()
    assert form.errors["host"] == [
        f"{host} is not a valid host name; enter a name such as imap.example.com or an IP address, "
        "without a port or protocol (the port has its own field)."
    ]


@pytest.mark.parametrize(
    ("host", "stored"),
    [("::1", "::1"), ("[::1]", "::1"), ("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("imap.müller.example", "imap.müller.example")],
)
def test_mailbox_form_accepts_host_names_and_addresses(host, stored):
    # The test settings allow loopback targets, so only the form of the host is checked here.
    form = MailboxForm({"host": host, "port": "993", "username": "capture", "password": "pw", "folder": "INBOX"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["host"] == stored


def test_mailbox_page_rejects_invalid_host_with_400(org, admin_member, client):
    client.force_login(admin_member.user)
    url = reverse("mailbox_settings", kwargs={"org_slug": org.slug})

    response = client.post(
        url, {"host": "a b", "port": "993", "username": "capture", "password": "pw", "folder": "INBOX"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    assert "a b is not a valid host name" in response.content.decode()
    with scopes_disabled():
        assert not Mailbox.objects.exists()


def test_domain_form_rejects_taken_and_invalid_domains(org, admin_member, customer, client):
    client.force_login(admin_member.user)
    url = reverse("account_domain_add", kwargs={"org_slug": org.slug})

    taken = client.post(url, {"account": customer.pk, "domain": "@Customer.example"}, follow=True).content.decode()
    invalid = client.post(url, {"account": customer.pk, "domain": "not a domain"}, follow=True).content.decode()
    added = client.post(url, {"account": customer.pk, "domain": "anna@customer-group.example"}, follow=True).content.decode()

    assert "customer.example already belongs to Customer GmbH" in taken
    assert "not a domain is not a domain name" in invalid
    assert "Domain customer-group.example added." in added


def test_other_organization_members_not_matched(org, other_org, member, customer):
    with scopes_disabled():
        MembershipFactory(organization=other_org, role=Role.REP, user=UserFactory(email="sales@globex.example"))
    data = calendar(event("x@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Demo", "ATTENDEE:mailto:sales@globex.example"))
    with scope(organization=org):
        result = services.calendar_file_capture(member=member, data=data, now=NOW)

    assert result.unmatched == 1


def test_feed_reread_in_other_language_changes_nothing(org, member, customer):
    from django.utils import translation

    data = calendar(event("one@x", "DTSTART:20260317T100000Z", "DTEND:20260317T110000Z", "Demo", "ATTENDEE:mailto:a@customer.example"))
    with LoopbackHTTPServer(get_body=data) as server, scope(organization=org):
        feed = services.calendar_feed_save(member=member, url=server.url)
        with translation.override("en"):
            first = services.calendar_feed_poll(feed=feed, now=NOW)
        with translation.override("de"):
            second = services.calendar_feed_poll(feed=feed, now=NOW)

    assert first.created == 1
    assert second.unchanged == 1
