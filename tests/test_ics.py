"""Calendar files as clients read them: two independent parsers plus a strict raw-text check."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from microsite.ics import (
    CalendarEvent,
    Party,
    build_cancel,
    build_download,
    build_feed,
    build_request,
)

FIXTURES = Path(__file__).parent / "data" / "ics"
PRODID = "-//Bluewater Psychiatry//Booking microsite//EN"
NEW_YORK = ZoneInfo("America/New_York")

# Named instants. DST ends in New York at 02:00 on Sunday 1 Nov 2026, so 09:00 is EST (UTC-5).
NOW = datetime(2026, 11, 20, 15, 4, 5, tzinfo=UTC)
MONDAY_930AM_EST = datetime(2026, 11, 30, 9, 30, tzinfo=NEW_YORK)
DST_FALL_BACK_DAY_9AM = datetime(2026, 11, 1, 9, 0, tzinfo=NEW_YORK)

EVENT = CalendarEvent(
    uid="0b8f3c1e-5d2a-4f6b-9a7e-1c2d3e4f5a6b@bluewater.example",
    sequence=0,
    start=MONDAY_930AM_EST,
    end=MONDAY_930AM_EST + timedelta(minutes=45),
    summary="Consultation — Bluewater Psychiatry, ref K7P2QX",
    location="Suite 4; 12 Harbour Road, Portland",
    description="Manage or cancel: https://bluewater.example/m/abc\nArrive 10 minutes early.",
    url="https://bluewater.example/m/abc",
)
CLINIC = Party(email="bookings@bluewater.example", name="Bluewater Psychiatry")
CLINICIAN = Party(email="aquinn@bluewater.example", name="Dr Avery Quinn")

DATE_TIME_PROPERTIES = {"DTSTART", "DTEND", "DTSTAMP", "RECURRENCE-ID", "EXDATE", "RDATE", "DUE"}
REQUIRED_ONCE = ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "SEQUENCE")
UTC_DATE_TIME = re.compile(r"\d{8}T\d{6}Z")
# RFC 5545 content line: name *(";" param) ":" value, where a quoted parameter value may hold
# ";" and ":". Stricter than either library, which is the point.
_PARAM_VALUE = r'(?:"[^"]*"|[^";:,]*)'
_PARAM = rf"[A-Za-z0-9-]+={_PARAM_VALUE}(?:,{_PARAM_VALUE})*"
CONTENT_LINE = re.compile(rf"(?P<name>[A-Za-z0-9-]+)(?P<params>(?:;{_PARAM})*):(?P<value>.*)", re.S)
PARAM = re.compile(rf";(?P<key>[A-Za-z0-9-]+)=(?P<value>{_PARAM_VALUE}(?:,{_PARAM_VALUE})*)")


# ---------------------------------------------------------------------------------------------
# The checker: one function every artefact must pass and every broken fixture must fail.


def interop_problems(raw: bytes, method: str | None) -> list[str]:
    """Everything in `raw` that Google, Outlook, Apple or Thunderbird could trip over."""
    problems = _line_problems(raw)
    try:
        components = _components(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return [*problems, f"unreadable: {error}"]
    problems += _calendar_problems(components, method)
    problems += _parser_problems(raw, components)
    return problems


def _line_problems(raw: bytes) -> list[str]:
    problems = []
    if not raw.endswith(b"\r\n"):
        problems.append("the last line does not end with CRLF")
    for number, line in enumerate(raw.removesuffix(b"\r\n").split(b"\r\n"), 1):
        if b"\n" in line or b"\r" in line:
            problems.append(f"line {number}: a line ends with a bare LF or CR, not CRLF")
        if len(line) > 75:
            problems.append(f"line {number}: {len(line)} octets, longer than 75 (not folded)")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"line {number}: not UTF-8 on its own (a fold split a character)")
    return problems


def _components(text: str) -> list[tuple[str, list[tuple[str, dict[str, str], str]]]]:
    """Unfold and tokenise: [(component path, [(name, params, raw value), ...]), ...]."""
    components: list[tuple[str, list[tuple[str, dict[str, str], str]]]] = []
    stack: list[tuple[str, list[tuple[str, dict[str, str], str]]]] = []
    for line in re.sub(r"\r?\n[ \t]", "", text).splitlines():
        match = CONTENT_LINE.fullmatch(line)
        if not match:
            raise ValueError(f"malformed content line {line[:40]!r}")
        name, value = match["name"].upper(), match["value"]
        if name == "BEGIN":
            path = "/".join([*(p for p, _ in stack[-1:]), value.upper()])
            stack.append((path, []))
        elif name == "END":
            if not stack or not stack[-1][0].endswith(value.upper()):
                raise ValueError(f"END:{value} without its BEGIN")
            components.append(stack.pop())
        elif not stack:
            raise ValueError(f"{name} outside any component")
        else:
            params = {k.upper(): v.strip('"') for k, v in PARAM.findall(match["params"])}
            stack[-1][1].append((name, params, value))
    if stack or not components or components[-1][0] != "VCALENDAR":
        raise ValueError("not exactly one complete VCALENDAR")
    return components


def _calendar_problems(components, method: str | None) -> list[str]:
    problems = []
    calendar = dict(components)["VCALENDAR"]
    values = _values(calendar)
    if values.get("VERSION") != ["2.0"]:
        problems.append("VERSION:2.0 missing")
    if len(values.get("PRODID", [])) != 1:
        problems.append("PRODID missing")
    if values.get("METHOD", [None]) != [method]:
        problems.append(f"METHOD is {values.get('METHOD')}, expected {method}")
    if any("VTIMEZONE" in path for path, _ in components):
        problems.append("VTIMEZONE present: times must be UTC")
    for name, params, value in calendar:
        if name == "REFRESH-INTERVAL" and params.get("VALUE") != "DURATION":
            problems.append("REFRESH-INTERVAL without VALUE=DURATION")
        if name in {"REFRESH-INTERVAL", "X-PUBLISHED-TTL"} and not value.startswith("P"):
            problems.append(f"{name} is not a duration: {value!r}")
    events = [props for path, props in components if path == "VCALENDAR/VEVENT"]
    if method and len(events) != 1:
        problems.append(f"METHOD:{method} carries {len(events)} VEVENTs, expected 1")
    for props in events:
        problems += _event_problems(props, method)
    return problems


def _event_problems(props, method: str | None) -> list[str]:
    values = _values(props)
    uid = values.get("UID", ["?"])[0]
    problems = [
        f"{uid}: {name} missing" for name in REQUIRED_ONCE if len(values.get(name, [])) != 1
    ]
    for name, params, value in props:
        if name in DATE_TIME_PROPERTIES and (
            "TZID" in params or not all(UTC_DATE_TIME.fullmatch(part) for part in value.split(","))
        ):
            problems.append(f"{uid}: {name} {value!r} is not UTC (floating or zoned)")
    if not all(v.isdigit() for v in values.get("SEQUENCE", [])):
        problems.append(f"{uid}: SEQUENCE is not a non-negative integer")
    allowed = {"REQUEST": [["CONFIRMED"]], "CANCEL": [["CANCELLED"]]}.get(
        method, [["CONFIRMED"], ["CANCELLED"]]
    )
    if values.get("STATUS") not in allowed:
        problems.append(f"{uid}: STATUS is {values.get('STATUS')}")
    if values.get("CLASS") != ["PRIVATE"]:
        problems.append(f"{uid}: CLASS:PRIVATE missing")
    organizers = [v for n, _, v in props if n == "ORGANIZER"]
    attendees = [(p, v) for n, p, v in props if n == "ATTENDEE"]
    if method is None:
        if organizers or attendees:
            problems.append(f"{uid}: ORGANIZER/ATTENDEE in a file without METHOD")
        return problems
    if len(organizers) != 1 or not organizers[0].lower().startswith("mailto:"):
        problems.append(f"{uid}: METHOD:{method} needs one ORGANIZER with a mailto: address")
    if not attendees or not all(v.lower().startswith("mailto:") for _, v in attendees):
        problems.append(f"{uid}: METHOD:{method} needs ATTENDEEs with mailto: addresses")
    if method == "REQUEST" and any(p.get("PARTSTAT") != "NEEDS-ACTION" for p, _ in attendees):
        problems.append(f"{uid}: an ATTENDEE of a REQUEST lacks PARTSTAT=NEEDS-ACTION")
    return problems


def _parser_problems(raw: bytes, components) -> list[str]:
    """Both libraries must read the file and see the same events at the same UTC instants."""
    expected = sorted(
        _values(props).get("UID", ["?"])[0] for path, props in components if path.endswith("VEVENT")
    )
    problems = []
    try:
        parsed = icalendar.Calendar.from_ical(raw)
        seen = sorted(str(event.get("UID", "?")) for event in parsed.walk("VEVENT"))
        if seen != expected:
            problems.append(f"icalendar sees events {seen}, the text has {expected}")
    except (ValueError, KeyError) as error:
        problems.append(f"icalendar cannot read it: {error!r}")
    try:
        events = vobject.readOne(raw.decode("utf-8")).contents.get("vevent", [])
        uids = sorted(e.uid.value if "uid" in e.contents else "?" for e in events)
        if uids != expected:
            problems.append(f"vobject sees events {uids}, the text has {expected}")
        for event in events:
            start = event.dtstart.value if "dtstart" in event.contents else None
            if not isinstance(start, datetime) or start.utcoffset() != timedelta(0):
                problems.append(f"vobject reads DTSTART as {start!r}, not a UTC instant")
    except Exception as error:  # noqa: BLE001 - vobject raises many types; any is a failure
        problems.append(f"vobject cannot read it: {error!r}")
    return problems


def _values(props) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, _, value in props:
        values.setdefault(name, []).append(value)
    return values


# ---------------------------------------------------------------------------------------------
# Helpers for reading artefacts back as a client would.


def _download(event: CalendarEvent = EVENT) -> bytes:
    return build_download(event, now=NOW, prodid=PRODID)


def _request(event: CalendarEvent = EVENT, attendees: tuple[Party, ...] = (CLINICIAN,)) -> bytes:
    return build_request(event, organizer=CLINIC, attendees=attendees, now=NOW, prodid=PRODID)


def _cancel(event: CalendarEvent = EVENT) -> bytes:
    return build_cancel(event, organizer=CLINIC, attendees=(CLINICIAN,), now=NOW, prodid=PRODID)


def _feed(events: tuple[CalendarEvent, ...] = (EVENT,)) -> bytes:
    return build_feed(events, name="Bluewater — Dr Quinn", now=NOW, prodid=PRODID)


def _only_event(raw: bytes) -> tuple[icalendar.Event, vobject.base.Component]:
    """The single VEVENT, as icalendar and as vobject read it."""
    events = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    vevents = vobject.readOne(raw.decode("utf-8")).vevent_list
    assert len(events) == len(vevents) == 1
    return events[0], vevents[0]


def _unfolded(raw: bytes) -> list[str]:
    return re.sub(r"\r\n[ \t]", "", raw.decode("utf-8")).split("\r\n")


ARTEFACTS = {
    "download": (_download, None),
    "request": (_request, "REQUEST"),
    "cancel": (lambda: _cancel(replace(EVENT, sequence=1)), "CANCEL"),
    "feed": (lambda: _feed((EVENT, replace(EVENT, uid="second@bluewater.example"))), None),
}


# ---------------------------------------------------------------------------------------------
# The builders.


@pytest.mark.parametrize("kind", ARTEFACTS)
def test_every_artefact_passes_the_interop_checks(kind):
    build, method = ARTEFACTS[kind]
    assert interop_problems(build(), method) == []


@pytest.mark.parametrize("kind", ARTEFACTS)
def test_every_event_carries_the_required_properties_in_utc(kind):
    build, method = ARTEFACTS[kind]
    raw = build()
    lines = _unfolded(raw)
    assert "VERSION:2.0" in lines
    assert f"PRODID:{PRODID}" in lines
    assert "CALSCALE:GREGORIAN" in lines
    assert (
        ("METHOD:" + method in lines)
        if method
        else not any(line.startswith("METHOD") for line in lines)
    )
    assert b"VTIMEZONE" not in raw
    assert b"TZID" not in raw
    assert "DTSTART:20261130T143000Z" in lines  # 09:30 EST
    assert "DTEND:20261130T151500Z" in lines
    assert "DTSTAMP:20261120T150405Z" in lines
    assert "CLASS:PRIVATE" in lines
    for vevent in vobject.readOne(raw.decode("utf-8")).vevent_list:
        for name in ("uid", "dtstamp", "dtstart", "dtend", "summary", "sequence", "status"):
            assert name in vevent.contents, name
        for name in ("dtstamp", "dtstart", "dtend"):
            assert vevent.contents[name][0].value.utcoffset() == timedelta(0)


def test_download_is_a_plain_snapshot_that_round_trips():
    event, vevent = _only_event(_download())
    assert "METHOD" not in icalendar.Calendar.from_ical(_download())
    assert "ORGANIZER" not in event
    assert "ATTENDEE" not in event
    assert not {"organizer", "attendee"} & vevent.contents.keys()
    assert str(event["UID"]) == vevent.uid.value == EVENT.uid
    assert vevent.dtstart.value == EVENT.start
    assert vevent.dtend.value == EVENT.end
    assert vevent.summary.value == event["SUMMARY"] == EVENT.summary
    assert vevent.location.value == event["LOCATION"] == EVENT.location
    assert vevent.description.value == event["DESCRIPTION"] == EVENT.description
    assert vevent.url.value == EVENT.url
    assert vevent.sequence.value == "0"
    assert vevent.status.value == "CONFIRMED"


def test_request_invites_each_attendee_from_the_clinic_mailbox():
    patient = Party(email="patient@example.org", name="Jane Doe")
    raw = _request(replace(EVENT, sequence=2), attendees=(CLINICIAN, patient))
    assert "METHOD:REQUEST" in _unfolded(raw)
    _, vevent = _only_event(raw)
    assert vevent.organizer.value == "mailto:bookings@bluewater.example"
    assert vevent.organizer.params["CN"] == ["Bluewater Psychiatry"]
    attendees = {a.value: a.params for a in vevent.attendee_list}
    assert attendees.keys() == {"mailto:aquinn@bluewater.example", "mailto:patient@example.org"}
    for params in attendees.values():
        assert params["PARTSTAT"] == ["NEEDS-ACTION"]
        assert params["ROLE"] == ["REQ-PARTICIPANT"]
        assert params["RSVP"] == ["FALSE"]
    assert attendees["mailto:patient@example.org"]["CN"] == ["Jane Doe"]
    assert vevent.sequence.value == "2"
    assert vevent.status.value == "CONFIRMED"


def test_cancel_keeps_the_uid_and_marks_the_event_cancelled():
    sent = _request(replace(EVENT, sequence=1))
    raw = _cancel(replace(EVENT, sequence=2))
    assert "METHOD:CANCEL" in _unfolded(raw)
    event, vevent = _only_event(raw)
    assert vevent.uid.value == _only_event(sent)[1].uid.value == EVENT.uid
    assert vevent.status.value == event["STATUS"] == "CANCELLED"
    assert int(vevent.sequence.value) > int(_only_event(sent)[1].sequence.value)
    assert vevent.organizer.value == "mailto:bookings@bluewater.example"
    assert [a.value for a in vevent.attendee_list] == ["mailto:aquinn@bluewater.example"]


def test_feed_names_itself_and_asks_for_hourly_refresh():
    cancelled = replace(EVENT, uid="gone@bluewater.example", sequence=1, cancelled=True)
    raw = _feed((EVENT, cancelled))
    lines = _unfolded(raw)
    assert "NAME:Bluewater — Dr Quinn" in lines
    assert "X-WR-CALNAME:Bluewater — Dr Quinn" in lines
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in lines
    assert "X-PUBLISHED-TTL:PT1H" in lines
    assert not any(line.startswith(("METHOD", "ORGANIZER", "ATTENDEE")) for line in lines)
    calendar = vobject.readOne(raw.decode("utf-8"))
    statuses = {e.uid.value: e.status.value for e in calendar.vevent_list}
    assert statuses == {EVENT.uid: "CONFIRMED", "gone@bluewater.example": "CANCELLED"}
    assert calendar.contents["refresh-interval"][0].params["VALUE"] == ["DURATION"]


def test_an_empty_feed_still_reads():
    raw = _feed(())
    assert interop_problems(raw, None) == []
    assert vobject.readOne(raw.decode("utf-8")).contents.get("vevent") is None


def test_event_on_the_dst_change_day_is_written_in_utc():
    event = replace(
        EVENT, start=DST_FALL_BACK_DAY_9AM, end=DST_FALL_BACK_DAY_9AM + timedelta(hours=1)
    )
    raw = _request(event)
    assert "DTSTART:20261101T140000Z" in _unfolded(raw)
    assert "DTEND:20261101T150000Z" in _unfolded(raw)
    _, vevent = _only_event(raw)
    assert vevent.dtstart.value == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    assert interop_problems(raw, "REQUEST") == []


def test_long_multibyte_summary_folds_at_75_octets_without_splitting_characters():
    summary = "Consultation — Bluewater Psychiatry " + "é😀" * 60
    raw = _download(replace(EVENT, summary=summary))
    physical = raw.split(b"\r\n")
    assert physical[-1] == b""  # ends with CRLF
    assert len([line for line in physical if line.startswith(b" ")]) >= 4  # really folded
    for line in physical:
        assert len(line) <= 75
        line.decode("utf-8")  # raises if a fold cut a character in two
    event, vevent = _only_event(raw)
    assert vevent.summary.value == event["SUMMARY"] == summary


def test_special_characters_are_escaped_and_round_trip():
    text = 'Back\\slash, comma; semicolon: colon "quotes"'
    raw = _download(replace(EVENT, summary=text, location=text))
    assert 'SUMMARY:Back\\\\slash\\, comma\\; semicolon: colon "quotes"' in _unfolded(raw)
    event, vevent = _only_event(raw)
    assert vevent.summary.value == vevent.location.value == event["SUMMARY"] == text


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\u2028", "\x85"])
def test_a_typed_newline_cannot_inject_a_property(newline):
    evil = f"Room 2{newline}ATTENDEE:mailto:evil@x{newline}X-INJECTED:1"
    event = replace(EVENT, summary=evil, location=evil, description=evil)
    patient = Party(email="patient@example.org", name=f"Jane{newline}ATTENDEE:mailto:evil@x")
    raw = _request(event, attendees=(patient,))
    assert interop_problems(raw, "REQUEST") == []
    lines = _unfolded(raw)
    assert [line for line in lines if line.startswith("ATTENDEE")] == [
        'ATTENDEE;CN="Jane ATTENDEE:mailto:evil@x";PARTSTAT=NEEDS-ACTION;'
        "ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:patient@example.org"
    ]
    assert not any(line.startswith("X-INJECTED") for line in lines)
    parsed, vevent = _only_event(raw)
    assert len(vevent.attendee_list) == 1
    assert "x-injected" not in vevent.contents
    assert "X-INJECTED" not in parsed
    assert vevent.attendee.params["CN"] == ["Jane ATTENDEE:mailto:evil@x"]
    # The text survives as text; every kind of line break arrives as one newline.
    typed = evil.replace(newline, "\n")
    for name in ("summary", "location", "description"):
        assert vevent.contents[name][0].value == parsed[name.upper()] == typed


def test_control_characters_are_dropped():
    raw = _download(replace(EVENT, summary="ref\x00 K7P2QX\x1b\x7f"))
    assert _only_event(raw)[1].summary.value == "ref K7P2QX"


def test_dtstamp_is_the_given_now_in_utc():
    now_in_new_york = NOW.astimezone(NEW_YORK)
    raw = build_download(EVENT, now=now_in_new_york, prodid=PRODID)
    assert "DTSTAMP:20261120T150405Z" in _unfolded(raw)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: _download(replace(EVENT, start=EVENT.start.replace(tzinfo=None))),
            id="naive start",
        ),
        pytest.param(
            lambda: build_download(EVENT, now=NOW.replace(tzinfo=None), prodid=PRODID),
            id="naive now",
        ),
        pytest.param(lambda: _download(replace(EVENT, end=EVENT.start)), id="empty event"),
        pytest.param(lambda: _download(replace(EVENT, sequence=-1)), id="negative sequence"),
        pytest.param(lambda: _request(replace(EVENT, cancelled=True)), id="request a cancelled"),
        pytest.param(lambda: _request(attendees=()), id="request with nobody"),
        pytest.param(lambda: _request(attendees=(Party("a@b\nBcc: c@d"),)), id="newline in email"),
        pytest.param(
            lambda: _download(replace(EVENT, url="https://x/\nX-A:1")), id="newline in url"
        ),
    ],
)
def test_unusable_input_is_refused_not_written(build):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build()


# ---------------------------------------------------------------------------------------------
# The checker keeps rejecting what clients reject.

BROKEN_FIXTURES = {
    "floating_dtstart.ics": "DTSTART '20261130T093000' is not UTC",
    "missing_uid.ics": "UID missing",
    "missing_dtstamp.ics": "DTSTAMP missing",
    "vtimezone_rdate.ics": "VTIMEZONE present",
    "request_without_organizer.ics": "needs one ORGANIZER",
    "unfolded_long_line.ics": "200 octets",
    "lf_line_endings.ics": "bare LF",
}


def test_every_broken_fixture_has_a_stated_defect():
    assert sorted(p.name for p in FIXTURES.glob("*.ics")) == sorted(BROKEN_FIXTURES)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.ics")), ids=lambda p: p.name)
def test_broken_fixture_fails_the_interop_checks(path):
    raw = path.read_bytes()
    method = re.search(rb"^METHOD:(\w+)", raw, re.M)
    problems = interop_problems(raw, method and method[1].decode())
    assert problems
    assert any(BROKEN_FIXTURES[path.name] in problem for problem in problems), problems
