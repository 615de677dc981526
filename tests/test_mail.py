"""Email builders and what reaches a mail server: headers that cannot be injected into,
names encoded per RFC 2047 / 6532, one valid event per booking whatever a patient types,
and golden calendar files for every artefact.

Regenerate the golden files deliberately, after checking the change is wanted:
    MICROSITE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_mail.py -k golden
"""

from __future__ import annotations

import email
import os
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import decode_header, make_header
from pathlib import Path
from types import SimpleNamespace

import icalendar
import pytest
from booking_helpers import slot_key_for, submit
from mail_helpers import dissect
from smtp_server import smtp_server
from sqlalchemy import select
from test_ics import interop_problems

from microsite import clock, ics, mail
from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import Booking
from microsite.services import calendar_events, lifecycle, notifications, outbox

GOLDEN = Path(__file__).parent / "data" / "mail"
REGENERATE = os.environ.get("MICROSITE_REGENERATE_GOLDEN") == "1"
NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
WEDNESDAY_11AM = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
CLINIC = mail.Mailbox("bookings@bluewater.example", "Bluewater")
REQUEST = ics.build_request(
    ics.CalendarEvent(
        uid="u1@bluewater.example",
        sequence=0,
        start=TUESDAY_9AM,
        end=TUESDAY_9AM + timedelta(hours=1),
        summary="Consultation — Bluewater, ref K7P2QX",
    ),
    organizer=ics.Party(CLINIC.email),
    attendees=[ics.Party("pat@example.com")],
    now=NOW,
    prodid="-//Bluewater//test//EN",
)

# Everything a patient could type that has broken someone's invites or headers before.
NASTY_NAME = (
    'Zoë "Z" O\'Brien;\\,\r\nBcc: evil@example.com\r\nATTENDEE:mailto:x@evil.example 😀\u200f'
)
NASTY_NOTE = (
    "END:VEVENT\r\nBEGIN:VALARM\r\nTRIGGER:-PT5M\r\nACTION:AUDIO\r\nEND:VALARM\r\n"
    'ATTENDEE;CN=x:mailto:evil@example.com\r\n\u202e\u2028; , " \\ 🧠 ' + "w" * 360
)


def _build(**overrides):
    fields = {
        "sender": CLINIC,
        "recipient": mail.Mailbox("pat@example.com", "Pat"),
        "subject": "Your consultation is booked — Bluewater, ref K7P2QX",
        "text": "plain",
        "html": "<p>html</p>",
        "now": NOW,
        "message_id": mail.new_message_id("bluewater.example"),
        "calendar": mail.CalendarPart("REQUEST", REQUEST),
    }
    fields.update(overrides)
    return mail.build_message(**fields)


# --- the pure builder ------------------------------------------------------------------------


def test_the_message_has_the_imip_shape_and_the_method_in_the_content_type():
    raw = _build().as_bytes(policy=policy.SMTP)
    assert b'Content-Type: text/calendar; method="REQUEST"; charset="UTF-8"' in raw
    parsed = dissect(email.message_from_bytes(raw, policy=policy.default))
    assert parsed.method_param == "REQUEST"
    assert parsed.attachment == REQUEST


def test_a_calendar_whose_method_differs_from_the_part_is_refused():
    with pytest.raises(ValueError, match="METHOD"):
        _build(calendar=mail.CalendarPart("CANCEL", REQUEST))


def test_header_values_lose_every_line_break():
    message = _build(
        subject="Booked\r\nBcc: evil@example.com\u2028X-Evil: 1",
        recipient=mail.Mailbox("pat@example.com", "Pat\nBcc: evil@example.com"),
    )
    head = message.as_bytes(policy=policy.SMTP).split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        assert not line.lower().startswith((b"bcc", b"x-evil")), line
    assert str(message["Subject"]) == "Booked Bcc: evil@example.com X-Evil: 1"


@pytest.mark.parametrize("bad", ["", "a@b, c@d", "a\n@b", "no-at-sign", "<a@b>", "a b@c"])
def test_anything_but_one_address_is_refused(bad):
    with pytest.raises(ValueError, match="not a usable email address"):
        _build(recipient=mail.Mailbox(bad))


def test_a_non_ascii_name_is_an_rfc_2047_word():
    message = _build(recipient=mail.Mailbox("pat@example.com", "Zoë Ñandú 😀"))
    raw = message.as_bytes(policy=policy.SMTP)
    to_line = next(line for line in raw.split(b"\r\n") if line.startswith(b"To:"))
    assert to_line.isascii()
    assert b"=?utf-8?" in to_line
    assert str(make_header(decode_header(to_line[3:].decode()))).startswith("Zoë Ñandú 😀")


def test_message_ids_are_unique_and_on_the_clinic_domain():
    ids = {mail.new_message_id("bluewater.example") for _ in range(500)}
    assert len(ids) == 500
    assert all(i.startswith("<") and i.endswith("@bluewater.example>") for i in ids)


# --- what a patient types, all the way to the mail server ----------------------------------


@pytest.fixture
def smtp():
    with smtp_server() as (port, handler):
        yield SimpleNamespace(port=port, handler=handler)


@pytest.fixture
def app_config(app_config, smtp):
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    return app_config


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return SimpleNamespace(
        clinician=make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test"),
        type=make_consultation_type(),
    )


def _book_and_send(client, clinic, smtp, **fields):
    key = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    response = submit(client, clinic.type.id, key, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    booking = db.session.scalars(select(Booking)).one()
    lifecycle.reschedule_booking(
        booking.id, key=slot_key_for(WEDNESDAY_11AM, clinic.clinician.id), actor="patient"
    )
    lifecycle.cancel_booking(booking.id, actor="patient")
    assert outbox.send_due().sent == 9
    return booking, smtp.handler.wait_for(9)


def test_hostile_patient_input_gives_valid_headers_and_one_clean_event(client, clinic, smtp):
    booking, received = _book_and_send(
        client,
        clinic,
        smtp,
        full_name=NASTY_NAME[:120],
        note=NASTY_NOTE[:500],
        email="o'brien+tag@example.com",
    )
    assert booking.patient_note.startswith("END:VEVENT")  # stored as typed
    for item in received:
        head = item.raw.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            # Every line is a header or a folded continuation: nothing injected.
            assert line[:1] in (b" ", b"\t") or b":" in line.split(b" ", 1)[0], line
            assert not line.lower().startswith((b"bcc", b"attendee")), line
        assert len(item.rcpt_tos) == 1
        parsed = dissect(item.message)  # structure, METHOD, both parsers, strict checks
        calendar = icalendar.Calendar.from_ical(parsed.ics)
        assert len(calendar.walk("VEVENT")) == 1
        assert calendar.walk("VALARM") == []
        attendees = parsed.event.get("ATTENDEE")
        attendees = attendees if isinstance(attendees, list) else [attendees]
        assert "evil" not in " ".join(str(a) for a in attendees)
        assert b"evil" not in parsed.ics
        assert b"VALARM" not in parsed.ics
    patients = [r for r in received if r.rcpt_tos == ("o'brien+tag@example.com",)]
    assert len(patients) == 3
    to = str(patients[0].message["To"])
    assert "\n" not in to
    assert "Bcc: evil@example.com" in to  # kept as harmless text inside the display name
    assert to.endswith("<o'brien+tag@example.com>")


def test_a_non_ascii_address_goes_out_with_smtputf8(client, clinic, smtp):
    _booking, received = _book_and_send(client, clinic, smtp, email="zoë@exämple.com")
    patients = [r for r in received if "zoë" in r.rcpt_tos[0]]
    assert len(patients) == 3
    assert "zoë@" in str(patients[0].message["To"])


# --- golden files ------------------------------------------------------------------------------


@pytest.fixture
def golden_booking(frozen_clock, make_clinician, make_consultation_type, make_booking):
    clinician = make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test")
    consultation_type = make_consultation_type(name="Initial consultation — in person")
    booking = make_booking(
        clinician,
        consultation_type,
        TUESDAY_9AM,
        uid="7f1c9a52-3b1e-4c7d-9f00-2a6d8e4b5c10@bluewater-psychiatry.example",
        reference="K7P2QX",
    )
    with write_transaction():
        outbox.queue_new_booking(booking)
    return booking


def _calendar_of(message_row) -> bytes:
    return dissect(notifications.render(message_row, now=clock.now())).ics


def _compare_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    assert path.exists(), f"{path} is missing: regenerate it (see the module docstring)"
    assert body == path.read_bytes(), f"{name} changed: compare, then regenerate deliberately"


def test_golden_calendar_files(app, golden_booking, frozen_clock):
    booking = golden_booking
    download = ics.build_download(
        calendar_events.booking_event(booking), now=clock.now(), prodid=app.config["ICS_PRODID"]
    )
    assert interop_problems(download, None) == []
    lifecycle.reschedule_booking(
        booking.id, key=slot_key_for(WEDNESDAY_11AM, booking.clinician_id), actor="patient"
    )
    lifecycle.cancel_booking(booking.id, actor="patient")
    rows = {(m.kind, m.recipient_role): m for m in outbox.messages_for_booking(booking.id)}
    artefacts = {
        "download.ics": download,
        "patient_request.ics": _calendar_of(rows["confirmation", "patient"]),
        "staff_request.ics": _calendar_of(rows["invite", "clinician"]),
        "staff_reschedule_request.ics": _calendar_of(rows["update", "clinician"]),
        "staff_cancel.ics": _calendar_of(rows["cancellation", "clinician"]),
    }
    for name, body in artefacts.items():
        _compare_golden(name, body)
