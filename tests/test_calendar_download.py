"""The three `.ics` downloads (confirmation page, manage link, console) share one helper:
each is an attachment of the booking's plain snapshot, named and worded for its reader."""

from __future__ import annotations

import icalendar
import pytest
from booking_helpers import slot_key_for, submit
from sqlalchemy import select
from staff_support import create_staff, quick_sign_in, use_fast_hashing
from test_reschedule_own_time import TUESDAY_9AM

from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import Booking
from microsite.services import manage_links


@pytest.fixture
def booking(client, frozen_clock, make_clinician, make_consultation_type) -> Booking:
    clinician, kind = make_clinician(), make_consultation_type()
    assert submit(client, kind.id, slot_key_for(TUESDAY_9AM, clinician.id)).status_code == 303
    return db.session.scalars(select(Booking)).one()


def event_of(response) -> icalendar.Event:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    assert "METHOD" not in calendar  # a snapshot to import, not an invitation
    (event,) = calendar.walk("VEVENT")
    return event


def test_the_patients_two_downloads_are_the_same_file(client, booking):
    with write_transaction():
        token = manage_links.issue_link(booking.id)
    downloads = [
        client.get("/book/confirmed/consultation.ics"),  # this browser just booked it
        client.get(f"/manage/{token}/consultation.ics"),
    ]
    for response in downloads:
        assert response.headers["Content-Disposition"] == 'attachment; filename="consultation.ics"'
        event = event_of(response)
        assert (str(event["UID"]), event.decoded("DTSTART")) == (booking.uid, TUESDAY_9AM)
        assert "staff console" not in str(event["DESCRIPTION"])


def test_the_consoles_download_is_named_by_reference_and_says_where_the_details_are(
    client, booking, monkeypatch
):
    use_fast_hashing(monkeypatch)
    quick_sign_in(client, create_staff(name="Dana Desk"))
    response = client.get(f"/staff/bookings/{booking.id}/consultation.ics")
    disposition = f'attachment; filename="{booking.reference}.ics"'
    assert response.headers["Content-Disposition"] == disposition
    event = event_of(response)
    assert str(event["UID"]) == booking.uid
    assert "sign in to the staff console" in str(event["DESCRIPTION"])
