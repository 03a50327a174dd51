"""Reading meetings from iCalendar (RFC 5545) data: recurring events expanded, times converted to UTC.

Time zones: a DTSTART with TZID is local time in that zone (the VTIMEZONE of the file or
the IANA zone of that name), and a value ending in Z is UTC. A floating time without either
is read in the time zone passed in, which is the organization's. Recurring events are expanded by
recurring-ical-events within a window, so a weekly 10:00 meeting in Europe/Berlin stays at
10:00 local time across a daylight-saving change while its UTC time moves by an hour.
All-day events and cancelled events are skipped.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

import icalendar
import recurring_ical_events
from django.utils.translation import gettext as _


class CalendarFileError(ValueError):
    """Data that is no usable iCalendar file; the message names the problem for the user."""


@dataclass(frozen=True)
class Meeting:
    uid: str
    recurrence_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    summary: str
    attendees: list[str] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)


def _address(value) -> str:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def _as_utc(value, floating_zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating_zone)
    return value.astimezone(dt.UTC)


def _people(component) -> tuple[list[str], list[str]]:
    attendees = component.get("ATTENDEE", [])
    if not isinstance(attendees, list):
        attendees = [attendees]
    addresses, declined = [], []
    for attendee in attendees:
        address = _address(attendee)
        if "@" not in address:
            continue
        addresses.append(address)
        if str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper() == "DECLINED":
            declined.append(address)
    organizer = component.get("ORGANIZER")
    if organizer is not None and "@" in _address(organizer):
        addresses.append(_address(organizer))
    return sorted(set(addresses)), sorted(set(declined))


def calendar_parse(data: bytes, *, start: dt.datetime, end: dt.datetime, floating_zone: zoneinfo.ZoneInfo) -> list[Meeting]:
    """Return the timed meetings of `data` that start in `[start, end)` (aware datetimes), recurrences expanded.

    Raises CalendarFileError when the data is not text, not an iCalendar object, has no
    VCALENDAR, or its recurrence rules cannot be expanded.
    """
    if not data.strip():
        raise CalendarFileError(_("The calendar file is empty."))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise CalendarFileError(_("The calendar file is not UTF-8 text; export it again as an .ics file.")) from None
    if not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise CalendarFileError(_("The file does not start with BEGIN:VCALENDAR, so it is no iCalendar (.ics) file."))
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as error:
        raise CalendarFileError(_("The calendar file could not be read: %(error)s") % {"error": error}) from None
    try:
        occurrences = list(recurring_ical_events.of(calendar, components=["VEVENT"]).between(start, end))
    except (ValueError, TypeError, recurring_ical_events.InvalidCalendar) as error:
        raise CalendarFileError(
            _("The recurring events in the calendar file could not be expanded: %(error)s") % {"error": error}
        ) from None

    meetings = []
    for event in occurrences:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        starts_at = _as_utc(event["DTSTART"].dt, floating_zone) if event.get("DTSTART") else None
        # An all-day event (a DATE value) is no meeting with a time.
        if starts_at is None:
            continue
        ends_at = _as_utc(event["DTEND"].dt, floating_zone) if event.get("DTEND") else None
        if ends_at is None and event.get("DURATION") is not None:
            ends_at = starts_at + event["DURATION"].dt
        uid = str(event.get("UID", "")).strip()
        if not uid:
            continue
        recurrence = event.get("RECURRENCE-ID")
        recurrence_id = ""
        if recurrence is not None:
            moment = _as_utc(recurrence.dt, floating_zone)
            recurrence_id = moment.strftime("%Y%m%dT%H%M%SZ") if moment else str(recurrence.dt)
        attendees, declined = _people(event)
        meetings.append(
            Meeting(
                uid=uid,
                recurrence_id=recurrence_id,
                starts_at=starts_at,
                ends_at=ends_at,
                summary=str(event.get("SUMMARY", "")).strip(),
                attendees=attendees,
                declined=declined,
            )
        )
    meetings.sort(key=lambda meeting: (meeting.starts_at, meeting.uid))
    return meetings
