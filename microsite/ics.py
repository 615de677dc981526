"""Pure iCalendar builders: data in, RFC 5545 bytes out; no Flask, no database, no clock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vCalAddress, vDuration

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
    """Subscription feed: a plain snapshot of many events with a name and a refresh hint."""
    calendar = _calendar(prodid)
    name = _clean_text(name)
    calendar.add("name", name)  # RFC 7986
    calendar.add("x-wr-calname", name)  # what Apple, Google and Outlook actually read
    # icalendar 7 writes REFRESH-INTERVAL without the VALUE=DURATION that RFC 7986 requires.
    calendar.add("refresh-interval", vDuration(FEED_REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(FEED_REFRESH))  # Outlook's older spelling
    for event in events:
        calendar.add_component(_vevent(event, now))
    return calendar.to_ical()


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


def _vevent(event: CalendarEvent, now: datetime, *, cancelled: bool = False) -> Event:
    start, end = _utc(event.start, "start"), _utc(event.end, "end")
    if end <= start:
        raise ValueError(f"event {event.uid!r} must end after it starts")
    if not event.uid:
        raise ValueError("every event needs its booking's UID")
    if event.sequence < 0:
        raise ValueError("SEQUENCE starts at 0")
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
    return _CONTROLS.sub("", _LINE_BREAKS.sub("\n", text))
