"""Pure iCalendar builders: data in, RFC 5545 bytes out; no Flask, no database, no clock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vCalAddress, vDuration
from icalendar.parser import Contentline

# How often subscribers should re-fetch the staff feed. Google ignores it (8-24 h), which is
# why same-day changes also go out as emailed updates.
FEED_REFRESH = timedelta(hours=1)

# RFC 5545 TEXT forbids control characters; the library passes them through untouched.
# Line and paragraph separators become real newlines (which the library escapes as \n)
# because parsers that split on them (Python's str.splitlines does) would otherwise see a new
# content line; every other control character is dropped.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One booking as calendars see it; every text field is already privacy-safe."""

    uid: str  # stored per booking, forever: "<uuid>@<clinic domain>"
    sequence: int  # 0 first, +1 on each real change
    start: datetime  # aware, any zone; written in UTC
    end: datetime
    summary: str
    location: str = ""
    description: str = ""
    url: str = ""
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Party:
    """An organizer or attendee of an emailed invitation."""

    email: str
    name: str = ""


def build_download(event: CalendarEvent, *, now: datetime, prodid: str) -> bytes:
    """Patient 'add to calendar' download: a plain snapshot, no METHOD, no ORGANIZER/ATTENDEE."""
    calendar = _calendar(prodid)
    calendar.add_component(_vevent(event, now))
    return calendar.to_ical()


def build_request(
    event: CalendarEvent,
    *,
    organizer: Party,
    attendees: Sequence[Party],
    now: datetime,
    prodid: str,
) -> bytes:
    """iMIP METHOD:REQUEST (staff invite, patient confirmation, every update of either)."""
    if event.cancelled:
        raise ValueError("a cancelled event is sent with build_cancel, not build_request")
    return _scheduling_message("REQUEST", event, organizer, attendees, now, prodid)


def build_cancel(
    event: CalendarEvent,
    *,
    organizer: Party,
    attendees: Sequence[Party],
    now: datetime,
    prodid: str,
) -> bytes:
    """iMIP METHOD:CANCEL with STATUS:CANCELLED; pass the booking's UID and a higher SEQUENCE."""
    return _scheduling_message("CANCEL", event, organizer, attendees, now, prodid)


def build_feed(events: Sequence[CalendarEvent], *, name: str, now: datetime, prodid: str) -> bytes:
    """Subscription feed: a plain snapshot of many events with a name and a refresh hint.

    The calendar's own lines come from the icalendar library. Its per-event cost (about a
    millisecond) would make a 10,000-booking feed take many seconds, so each VEVENT is written
    by `_feed_vevent`, which reproduces the library's output byte for byte for the fixed set of
    properties a CalendarEvent has (tests/test_feed_ics.py compares the two on generated
    hostile text); `feed_vevent_reference` is the library's version of the same event.
    """
    calendar = _calendar(prodid)
    name = _clean_text(name)
    calendar.add("name", name)  # RFC 7986
    calendar.add("x-wr-calname", name)  # what Apple, Google and Outlook actually read
    # icalendar 7 writes REFRESH-INTERVAL without the VALUE=DURATION that RFC 7986 requires.
    calendar.add("refresh-interval", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(FEED_REFRESH))  # Outlook's older spelling
    head = calendar.to_ical()
    if not head.endswith(_CALENDAR_END):
        raise RuntimeError("unexpected calendar serialisation from the icalendar library")
    stamp = _utc_text(_utc(now, "now"))
    body = [_feed_vevent(event, stamp) for event in events]
    return b"".join([head[: -len(_CALENDAR_END)], *body, _CALENDAR_END])


def feed_vevent_reference(event: CalendarEvent, *, now: datetime) -> bytes:
    """One feed event as the icalendar library writes it: the yardstick for `_feed_vevent`."""
    return _vevent(event, now).to_ical()


_CALENDAR_END = b"END:VCALENDAR\r\n"


def _feed_vevent(event: CalendarEvent, stamp: str) -> bytes:
    start, end = _checked_span(event)
    if any(ch in event.url for ch in "\r\n"):
        raise ValueError(f"A URI value may not contain CR or LF characters: {event.url!r}")
    # The library's property order (it sorts: required ones first, then alphabetically).
    # Only text lines can pass 75 octets; the fixed-width ones are never folded.
    text = [
        _fold("SUMMARY:" + _escape_text(event.summary)),
        "DTSTART:" + _utc_text(start),
        "DTEND:" + _utc_text(end),
        "DTSTAMP:" + stamp,
        _fold("UID:" + _escape(event.uid)),
        f"SEQUENCE:{event.sequence}",
        "CLASS:PRIVATE",
    ]
    if event.description:
        text.append(_fold("DESCRIPTION:" + _escape_text(event.description)))
    if event.location:
        text.append(_fold("LOCATION:" + _escape_text(event.location)))
    text.append("STATUS:CANCELLED" if event.cancelled else "STATUS:CONFIRMED")
    if event.url:
        text.append(_fold("URL:" + event.url))
    return ("BEGIN:VEVENT\r\n" + "\r\n".join(text) + "\r\nEND:VEVENT\r\n").encode("utf-8")


def _escape_text(text: str) -> str:
    return _escape(_clean_text(text))


def _escape(text: str) -> str:
    # RFC 5545 TEXT escaping exactly as the library does it, in its order.
    return (
        text.replace(r"\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", r"\;")
        .replace(",", r"\,")
        .replace("\r\n", r"\n")
        .replace("\n", r"\n")
        .replace("\r", r"\n")
    )


def _fold(line: str) -> str:
    # The library folds before the 75th octet; lines shorter than that (nearly all) need no work.
    if len(line) < 75 and (line.isascii() or len(line.encode("utf-8")) < 75):
        return line
    return Contentline(line).to_ical().decode("utf-8")


def _utc_text(value: datetime) -> str:
    if value.year >= 1000:  # strftime does not pad earlier years to four digits
        return value.strftime("%Y%m%dT%H%M%SZ")
    return (
        f"{value.year:04}{value.month:02}{value.day:02}"
        f"T{value.hour:02}{value.minute:02}{value.second:02}Z"
    )


def _scheduling_message(
    method: str,
    event: CalendarEvent,
    organizer: Party,
    attendees: Sequence[Party],
    now: datetime,
    prodid: str,
) -> bytes:
    if not attendees:
        raise ValueError(f"a METHOD:{method} message needs at least one attendee")
    calendar = _calendar(prodid, method=method)
    vevent = _vevent(event, now, cancelled=method == "CANCEL")
    vevent.add("organizer", _address(organizer))
    for attendee in attendees:
        params = {"ROLE": "REQ-PARTICIPANT"}
        if method == "REQUEST":
            # RSVP=FALSE: the booking mailbox does not process iTIP replies, so clients should
            # not offer to send one; attendance is arranged by the booking itself.
            params |= {"PARTSTAT": "NEEDS-ACTION", "RSVP": "FALSE"}
        vevent.add("attendee", _address(attendee, **params))
    calendar.add_component(vevent)
    return calendar.to_ical()


def _calendar(prodid: str, *, method: str | None = None) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def _checked_span(event: CalendarEvent) -> tuple[datetime, datetime]:
    start, end = _utc(event.start, "start"), _utc(event.end, "end")
    if end <= start:
        raise ValueError(f"event {event.uid!r} must end after it starts")
    if not event.uid:
        raise ValueError("every event needs its booking's UID")
    if event.sequence < 0:
        raise ValueError("SEQUENCE starts at 0")
    return start, end


def _vevent(event: CalendarEvent, now: datetime, *, cancelled: bool = False) -> Event:
    start, end = _checked_span(event)
    vevent = Event()
    vevent.add("uid", event.uid)
    vevent.add("dtstamp", _utc(now, "now"))
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    vevent.add("sequence", event.sequence)
    vevent.add("summary", _clean_text(event.summary))
    if event.location:
        vevent.add("location", _clean_text(event.location))
    if event.description:
        vevent.add("description", _clean_text(event.description))
    if event.url:
        vevent.add("url", event.url)  # the library refuses CR/LF in a URI
    vevent.add("status", "CANCELLED" if cancelled or event.cancelled else "CONFIRMED")
    # Calendars get shared and synced to phones: show others only "busy".
    vevent.add("class", "PRIVATE")
    return vevent


def _address(party: Party, **params: str) -> vCalAddress:
    if not party.email or any(ch.isspace() or ord(ch) < 0x20 for ch in party.email):
        raise ValueError(f"not a usable email address: {party.email!r}")
    address = vCalAddress(f"mailto:{party.email}")
    name = " ".join(_clean_text(party.name).split())
    if name:
        # Clients that do not decode RFC 6868 (^' for a quote) would show the caret escape.
        address.params["CN"] = name.replace('"', "'")
    address.params.update(params)
    return address


def _utc(value: datetime, field: str) -> datetime:
    # A naive time would be written "floating" and shown at that wall-clock time in every zone.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware")
    return value.astimezone(UTC)


def _clean_text(text: str) -> str:
    if text.isprintable():  # no control character or line break: nothing to clean (the norm)
        return text
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))
