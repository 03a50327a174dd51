"""Reading meetings from iCalendar (RFC 5545) data: recurring events expanded, times converted to UTC.

Time zones: a DTSTART with TZID is local time in that zone (the VTIMEZONE of the file or
the IANA zone of that name), and a value ending in Z is UTC. A floating time without either
is read in the time zone passed in, which is the organization's. Recurring events are expanded by
recurring-ical-events within a window, so a weekly 10:00 meeting in Europe/Berlin stays at
10:00 local time across a daylight-saving change while its UTC time moves by an hour.
All-day events and cancelled events are skipped.

Expansion is capped, because one line such as RRULE:FREQ=SECONDLY would otherwise yield
millions of occurrences: an event with more than MAX_OCCURRENCES_PER_EVENT occurrences in
the window, or whose rule needs more than MAX_RULE_STEPS recurrences from its DTSTART to the
window's end, is skipped whole, and so is every event that would take the file past
MAX_OCCURRENCES. An event whose RRULE matches no date at all (BYMONTH=2;BYMONTHDAY=30) is
skipped too, because dateutil would search for its first recurrence until the year 9999.
The other events are read, and each skipped event is named in ParsedCalendar.skipped.
"""

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field

import icalendar
import recurring_ical_events
from dateutil import rrule as dateutil_rrule
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pipelines.importers.base import value_excerpt

logger = logging.getLogger(__name__)

DATE_VALUE = gettext_lazy("a date such as 20261203 or a date and time such as 20261203T100000Z")
# Properties that decide when an event or a time zone rule applies, each with the form it expects.
# recurring-ical-events reads all of them, so a broken one stops the whole expansion.
TIME_PROPERTIES = {
    "DTSTART": DATE_VALUE,
    "DTEND": DATE_VALUE,
    "RECURRENCE-ID": DATE_VALUE,
    "RDATE": DATE_VALUE,
    "EXDATE": DATE_VALUE,
    "DURATION": gettext_lazy("a duration such as PT1H30M"),
    "RRULE": gettext_lazy("a recurrence rule such as FREQ=WEEKLY;BYDAY=MO"),
    "TZOFFSETFROM": gettext_lazy("a UTC offset such as +0100"),
    "TZOFFSETTO": gettext_lazy("a UTC offset such as +0100"),
}


# Occurrences read of one event (its series: the rule, RDATEs and changed occurrences) within the window.
# A daily meeting over the default window of 240 days has 240.
MAX_OCCURRENCES_PER_EVENT = 1000
# Occurrences read of all events of one file together.
MAX_OCCURRENCES = 20000
# Recurrences one RRULE may produce from its DTSTART to the end of the window, those before the window
# included. dateutil generates each of them, so a rule that started years earlier costs time even
# when few of its occurrences fall into the window.
MAX_RULE_STEPS = 100_000
# The Gregorian calendar repeats every 400 years (146,097 days, exactly 20,871 weeks), so date parts
# that match no day in 400 consecutive years match no day ever.
CALENDAR_CYCLE_YEARS = 400


# Returned by _series_occurrence_count for a series with a rule that matches no date.
NO_DATE_MATCHES = -1


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


@dataclass(frozen=True)
class ParsedCalendar:
    meetings: list[Meeting]
    # One message per event that was not read because of the limits above, in file order.
    skipped: list[str] = field(default_factory=list)


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


def calendar_parse(
    data: bytes,
    *,
    start: dt.datetime,
    end: dt.datetime,
    floating_zone: zoneinfo.ZoneInfo,
    require_events: bool = False,
) -> ParsedCalendar:
    """Return the timed meetings of `data` that start in `[start, end)` (aware datetimes), recurrences expanded.

    Events over the expansion limits (see the module docstring) are left out and named in
    the result's `skipped`. Raises CalendarFileError when the data is not text, not an iCalendar object, has no
    VCALENDAR, has a date, duration, recurrence rule or UTC offset that cannot be read,
    or its recurrence rules cannot be expanded; with `require_events`, also when it has
    no event at all.
    """
    if not data.strip():
        raise CalendarFileError(_("The calendar file is empty."))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise CalendarFileError(_("The calendar file is not UTF-8 text; export it again as an .ics file.")) from None
    if not data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise CalendarFileError(_("The file does not start with BEGIN:VCALENDAR, so it is no iCalendar (.ics) file."))
    text = data.decode("utf-8")
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as error:
        # The error's text repeats the file's content, so only its type is logged.
        logger.warning("Calendar file not parsed: %s", type(error).__name__)
        raise _syntax_error(text) from None
    _broken_property_check(calendar, text)
    if require_events and not calendar.walk("VEVENT"):
        raise CalendarFileError(_("The calendar file contains no events (no BEGIN:VEVENT)."))
    try:
        query = recurring_ical_events.of(calendar, components=["VEVENT"])
        skipped = _oversized_series_remove(query, start, end, floating_zone)
        occurrences = query.between(start, end)
    except (ValueError, TypeError, recurring_ical_events.InvalidCalendar) as error:
        # The checks above catch the known causes; the library's English text stays in the log.
        logger.warning("Calendar events not expanded: %s", error)
        raise CalendarFileError(
            _(
                "The events in the calendar file could not be read. Check their start, end and recurrence "
                "rules in the calendar and export it again."
            )
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
    return ParsedCalendar(meetings=meetings, skipped=skipped)


def _oversized_series_remove(query, start: dt.datetime, end: dt.datetime, floating_zone: zoneinfo.ZoneInfo) -> list[str]:
    """Remove from `query` the series (events with their changed occurrences) over the expansion limits.

    Returns one message per removed series. The counts come from iterating each RRULE
    lazily, so a removed series costs at most MAX_RULE_STEPS recurrences and never a list
    of its occurrences.
    """
    kept, skipped = [], []
    total = 0
    for series in query.series:
        count = _series_occurrence_count(series, start, end, floating_zone)
        name = _series_name(series)
        if count is NO_DATE_MATCHES:
            skipped.append(
                _(
                    "Event %(event)s was skipped: its recurrence rule matches no date, because no day fits all of "
                    "its BYMONTH, BYMONTHDAY, BYYEARDAY, BYWEEKNO and BYDAY parts (such as BYMONTH=2;BYMONTHDAY=30). "
                    "Correct the rule in the calendar and export it again."
                )
                % {"event": name}
            )
        elif count is None:
            skipped.append(
                _(
                    "Event %(event)s was skipped: its recurrence rule repeats more than %(limit)s times "
                    "before the end of the period read. Shorten the rule in the calendar and export it again."
                )
                % {"event": name, "limit": number_format(MAX_RULE_STEPS, force_grouping=True)}
            )
        elif count > MAX_OCCURRENCES_PER_EVENT:
            skipped.append(
                _(
                    "Event %(event)s was skipped: it occurs more than %(limit)s times between %(start)s and "
                    "%(end)s. SPM reads at most %(limit)s occurrences of one event."
                )
                % {"event": name, "limit": number_format(MAX_OCCURRENCES_PER_EVENT, force_grouping=True), **_period(start, end, floating_zone)}
            )
        elif total + count > MAX_OCCURRENCES:
            skipped.append(
                _(
                    "Event %(event)s was skipped: the calendar file has more than %(limit)s occurrences of events "
                    "between %(start)s and %(end)s, and SPM reads at most %(limit)s from one file."
                )
                % {"event": name, "limit": number_format(MAX_OCCURRENCES, force_grouping=True), **_period(start, end, floating_zone)}
            )
        else:
            total += count
            kept.append(series)
            continue
        if count is NO_DATE_MATCHES:
            logger.warning("Calendar event skipped: its recurrence rule matches no date")
        else:
            logger.warning("Calendar event skipped by the expansion limits: occurrences=%s", count)
    query.series = kept
    return skipped


def _period(start: dt.datetime, end: dt.datetime, zone: zoneinfo.ZoneInfo) -> dict[str, str]:
    """Return the period read as the dates in the organization's time zone, where its people are."""
    return {"start": start.astimezone(zone).date().isoformat(), "end": end.astimezone(zone).date().isoformat()}


def _series_name(series) -> str:
    component = series.recurrence.core._component if series.recurrence.has_core else None
    uid = value_excerpt(str(series.uid).strip() or "?")
    summary = str(component.get("SUMMARY", "")).strip() if component is not None else ""
    return f"{uid} ({value_excerpt(summary)})" if summary else uid


def _series_occurrence_count(series, start: dt.datetime, end: dt.datetime, floating_zone: zoneinfo.ZoneInfo) -> int | None:
    """Return an upper bound of the occurrences of `series` that recurring-ical-events yields for `[start, end]`.

    Returns None when a rule needs more than MAX_RULE_STEPS recurrences to pass the end, and
    NO_DATE_MATCHES when a rule matches no date (see _rule_matches_no_date).
    The bound counts the distinct starts from DTSTART, the RRULEs and the RDATEs in the span
    that the library queries (widened by the event's duration, as the library does) and every
    changed occurrence; EXDATEs are not subtracted. Counting stops one past MAX_OCCURRENCES_PER_EVENT.
    """
    # NOTE: this reads attributes of recurring-ical-events 3.x series (recurrence.rrules,
    # _subtract_from_start, _add_to_stop); pyproject.toml pins the library below 4.
    span_start = start - series._subtract_from_start
    span_end = end + series._add_to_stop
    modifications = len(series.modifications)
    if not series.recurrence.has_core:
        return modifications
    starts: set[dt.datetime] = set()
    # The first rule is a set of DTSTART and the RDATEs, the others are the event's RRULEs.
    if any(_rule_matches_no_date(rule) for rule in series.recurrence.rrules):
        return NO_DATE_MATCHES
    for rule in series.recurrence.rrules:
        for step, recurrence in enumerate(iter(rule), start=1):
            moment = recurrence if recurrence.tzinfo else recurrence.replace(tzinfo=floating_zone)
            if moment > span_end:
                break
            if step > MAX_RULE_STEPS:
                return None
            if moment >= span_start:
                starts.add(moment)
                if len(starts) + modifications > MAX_OCCURRENCES_PER_EVENT:
                    return len(starts) + modifications
    return len(starts) + modifications


def _rule_matches_no_date(rule) -> bool:
    """Return whether the date parts of a dateutil `rule` match no day in any year.

    MAX_RULE_STEPS counts produced recurrences only. A rule that produces none makes dateutil
    2.9 check candidate periods one by one up to the year 9999: for
    FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30 from 2026 that took 5.3 seconds of CPU in one
    measurement on a shared build machine. The probe puts the rule's date parts into one
    yearly rule over the last CALENDAR_CYCLE_YEARS years that dateutil supports, so it
    checks at most 400 candidate years and stops at the first match.
    """
    # NOTE: this reads private attributes of dateutil 2.9 rrule objects (_bymonth, _byweekday, ...).
    # NOTE: the probe drops INTERVAL and BYSETPOS and so matches a superset of the rule's days.
    # A rule that only those parts make empty (FREQ=DAILY;INTERVAL=7;BYDAY=MO from a Tuesday)
    # is not detected and still costs the full walk to the year 9999.
    if not isinstance(rule, dateutil_rrule.rrule):
        return False
    weekdays = [dateutil_rrule.weekday(day) for day in rule._byweekday or ()]
    weekdays += [dateutil_rrule.weekday(day, n) for day, n in rule._bynweekday or ()]
    month_days = [*(rule._bymonthday or ()), *(rule._bynmonthday or ())]
    if not (rule._bymonth or month_days or rule._byyearday or rule._byweekno or weekdays or rule._byeaster):
        return False
    months = rule._bymonth
    if rule._bynweekday and rule._freq == dateutil_rrule.MONTHLY and not months:
        # In a yearly rule, BYDAY=2MO counts Mondays per month only when BYMONTH is given.
        months = range(1, 13)
    probe = dateutil_rrule.rrule(
        dateutil_rrule.YEARLY,
        dtstart=dt.datetime(dt.MAXYEAR - CALENDAR_CYCLE_YEARS + 1, 1, 1),
        wkst=rule._wkst,
        bymonth=months or None,
        bymonthday=month_days or None,
        byyearday=rule._byyearday or None,
        byweekno=rule._byweekno or None,
        # Every weekday, when the rule names none, stops dateutil from adding the start's day as a filter.
        byweekday=weekdays or range(7),
        byeaster=rule._byeaster or None,
    )
    return next(iter(probe), None) is None


def _content_lines(text: str) -> list[tuple[int, str]]:
    """Return the content lines of iCalendar text, unfolded, each with the number of its first physical line."""
    lines: list[tuple[int, str]] = []
    for number, physical in enumerate(text.split("\n"), start=1):
        physical = physical.rstrip("\r")
        # A line starting with a space or tab continues the previous one (RFC 5545, section 3.1).
        if physical[:1] in (" ", "\t") and lines:
            first, content = lines[-1]
            lines[-1] = (first, content + physical[1:])
        else:
            lines.append((number, physical))
    return lines


def _syntax_error(text: str) -> CalendarFileError:
    """Return the error for text that icalendar cannot parse, naming the first line without a NAME:value form."""
    for number, content in _content_lines(text):
        if content.strip() and ":" not in content:
            return CalendarFileError(
                _("Line %(line)d of the calendar file is not an iCalendar line of the form NAME:value: %(text)s")
                % {"line": number, "text": value_excerpt(content.strip())}
            )
    return CalendarFileError(
        _(
            "The calendar file is not a valid iCalendar file: a BEGIN line has no matching END line, or an END line "
            "no matching BEGIN line. Export it again from the calendar."
        )
    )


def _broken_property_check(calendar: icalendar.Calendar, text: str) -> None:
    """Raise CalendarFileError for the first time property in file order whose value icalendar could not parse.

    The message names the property, its value, the line (the first line in the file with
    that property and value) and the event's UID or the time zone's TZID.
    """
    for component in calendar.walk():
        # Only events and their time zones are read; a broken to-do or journal entry does no harm.
        if component.name not in ("VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT"):
            continue
        for name, _error in component.errors:
            name = name.upper()
            if name not in TIME_PROPERTIES:
                continue
            value = _broken_text(component.get(name))
            line = _line_of(text, name, value)
            if component.name == "VEVENT":
                where = _("event %(uid)s") % {"uid": value_excerpt(str(component.get("UID", "")).strip() or "?")}
            else:
                where = _("time zone %(tzid)s") % {"tzid": value_excerpt(_time_zone_id(calendar, component))}
            params = {
                "line": line,
                "where": where,
                "property": name,
                "value": value_excerpt(value),
                "expected": TIME_PROPERTIES[name],
            }
            if line:
                message = _("Line %(line)d (%(where)s): %(property)s has the invalid value %(value)s; expected %(expected)s.")
            else:
                message = _("In %(where)s, %(property)s has the invalid value %(value)s; expected %(expected)s.")
            raise CalendarFileError(message % params)


def _broken_text(value) -> str:
    """Return the text of an unparsable property value; a property given several times yields its first broken value."""
    if isinstance(value, list):
        broken = [item for item in value if isinstance(item, icalendar.prop.vBroken)]
        value = broken[0] if broken else value[0]
    return str(value)


def _line_of(text: str, name: str, value: str) -> int:
    """Return the number of the first line that gives property `name` the value `value`, or 0 if none does."""
    for number, content in _content_lines(text):
        property_name = content.split(":", 1)[0].split(";", 1)[0].strip().upper()
        if property_name == name and content.endswith(":" + value):
            return number
    return 0


def _time_zone_id(calendar: icalendar.Calendar, component) -> str:
    """Return the TZID of the VTIMEZONE that `component` (a STANDARD or DAYLIGHT rule) belongs to."""
    for time_zone in calendar.walk("VTIMEZONE"):
        if component is time_zone or any(sub is component for sub in time_zone.subcomponents):
            return str(time_zone.get("TZID", "")) or "?"
    return "?"
