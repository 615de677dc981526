"""The feed's fast VEVENT writer gives exactly the icalendar library's bytes, on any input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from microsite import ics

NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
# Everything a patient or a config file could put into a text field: escapes, separators,
# control characters, emoji, right-to-left marks, long runs.
HOSTILE = st.text(
    alphabet=st.sampled_from(
        list("aZ09 ,;:\\\"'\n\r\t\x00\x0b\x1f\x7f\x85é—😀\u200f\u2028\u2029Nü")
    ),
    max_size=200,
)
START = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - made aware by timezones=
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@st.composite
def events(draw) -> ics.CalendarEvent:
    start = draw(START)
    return ics.CalendarEvent(
        uid=draw(st.from_regex(r"[A-Za-z0-9-]{1,40}@[a-z.]{1,30}", fullmatch=True)),
        sequence=draw(st.integers(0, 1000)),
        start=start,
        end=start + timedelta(minutes=draw(st.integers(1, 600))),
        summary=draw(HOSTILE),
        location=draw(HOSTILE),
        description=draw(HOSTILE),
        url=draw(
            st.sampled_from(["", "https://bluewater.example/", "https://x.example/a?b=c,d;e"])
        ),
        cancelled=draw(st.booleans()),
    )


@settings(max_examples=300, deadline=None)
@given(event=events())
def test_fast_feed_event_is_byte_for_byte_the_librarys(event):
    feed = ics.build_feed([event], name="Dr. Test", now=NOW, prodid="-//t//EN")
    reference = ics.feed_vevent_reference(event, now=NOW)
    assert reference in feed
    # Nothing else between the calendar's properties and its end.
    assert feed.count(b"BEGIN:VEVENT") == 1


def test_a_feed_parses_back_with_every_event():
    items = [
        ics.CalendarEvent(
            uid=f"u{i}@t",
            sequence=i % 3,
            start=NOW + timedelta(hours=i),
            end=NOW + timedelta(hours=i, minutes=45),
            summary=f"Consultation — Bluewater, ref R{i}",
            cancelled=i % 2 == 1,
        )
        for i in range(5)
    ]
    calendar = Calendar.from_ical(ics.build_feed(items, name="Clinic", now=NOW, prodid="-//t//EN"))
    parsed = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in parsed] == [f"u{i}@t" for i in range(5)]
    assert [str(e["STATUS"]) for e in parsed] == ["CONFIRMED", "CANCELLED"] * 2 + ["CONFIRMED"]


def test_a_url_with_a_newline_is_refused_like_the_library_does():
    event = ics.CalendarEvent(
        uid="u@t",
        sequence=0,
        start=NOW,
        end=NOW + timedelta(hours=1),
        summary="x",
        url="https://x.example/\nATTENDEE:mailto:evil@example.com",
    )
    with pytest.raises(ValueError, match="CR or LF"):
        ics.build_feed([event], name="x", now=NOW, prodid="-//t//EN")
    with pytest.raises(ValueError, match="CR or LF"):
        ics.feed_vevent_reference(event, now=NOW)
