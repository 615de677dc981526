"""Moving a consultation onto part of its own time (half an hour later), from the patient's
manage link and from the console: the picker offers it, the move commits, and nothing of that
"ignore this booking" view reaches the pages other patients book from.

The slot caches are on in this module (other modules turn them off), so a leak between the
reschedule picker and the public picker or API would show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from booking_helpers import slot_key_for
from mail_helpers import dissect
from smtp_server import smtp_server
from sqlalchemy.exc import IntegrityError
from staff_support import create_staff, quick_sign_in, use_fast_hashing
from test_staff_actions import book, fresh, text_of
from tests_support import csrf_token

from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import AuditEvent, Booking
from microsite.services import manage_links, outbox
from microsite.services import schedule as schedule_service
from microsite.services.history import booking_history

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 60 minutes, on a 30-minute grid
TUESDAY_930AM = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
TUESDAY_10AM = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
TUESDAY_WEEK = "week=2026-11-30&day=2026-12-01"


@pytest.fixture
def app_config(app_config):
    app_config.update(SLOT_CACHE_SECONDS=60, SCHEDULE_CACHE_SECONDS=60)
    return app_config


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return SimpleNamespace(
        clinician=make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test"),
        other=make_clinician(name="Dr Other", email="other@clinic.test"),
        type=make_consultation_type(),
    )


@pytest.fixture
def booking(clinic) -> Booking:
    """Tuesday 9:00-10:00 with the first clinician, booked through the service."""
    return book(clinic, TUESDAY_9AM)


@pytest.fixture
def token(booking) -> str:
    with write_transaction():
        return manage_links.issue_link(booking.id)


@pytest.fixture
def desk(client, frozen_clock, monkeypatch) -> None:
    """The front desk, signed in."""
    use_fast_hashing(monkeypatch)
    quick_sign_in(client, create_staff(name="Dana Desk"))


def offers(page: str, key: str) -> bool:
    """Whether a page offers a time by its key: a picker's link or an alternative's radio."""
    return f"slot={key}" in page or f'value="{key}"' in page


def confirm_move(client, booking_url: str, key: str):
    """Open the confirm page for the time `key` names, check it, and press its button."""
    confirm = client.get(f"{booking_url}/reschedule/confirm?slot={key}")
    assert confirm.status_code == 200
    assert "To: Tuesday, December 1, 2026 at 9:30 AM EST" in text_of(confirm)
    response = client.post(
        f"{booking_url}/reschedule/confirm",
        data={"csrf_token": csrf_token(confirm.text), "slot": key},
    )
    assert response.status_code == 303
    return response


def delivered_updates(app) -> list:
    """Send what the outbox holds to a real SMTP server; the update REQUESTs it received."""
    with smtp_server() as (port, handler):
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
        outbox.send_due()
        received = handler.wait_for(6)  # 3 for the booking, 3 for its move
    mails = [dissect(r.message) for r in received]
    return [m for m in mails if m.sequence == 1]


def assert_moved_half_an_hour_later(app, booking: Booking, uid: str) -> None:
    moved = fresh(booking.id)
    assert (moved.starts_at, moved.ends_at) == (
        TUESDAY_930AM,
        TUESDAY_930AM + timedelta(hours=1),
    )
    assert (moved.uid, moved.sequence, moved.clinician_id) == (uid, 1, booking.clinician_id)
    assert booking_history(booking.id)[-1].detail == "from 2026-12-01T14:00Z"
    queued = [m for m in outbox.messages_for_booking(booking.id) if m.kind == "update"]
    assert sorted(m.recipient_role for m in queued) == ["clinic", "clinician", "patient"]
    updates = delivered_updates(app)
    assert len(updates) == 3
    for mail in updates:
        assert (mail.method, mail.uid) == ("REQUEST", uid)
        assert mail.event.decoded("DTSTART") == TUESDAY_930AM


# --- the patient's manage link ------------------------------------------------------------------


def test_a_patient_moves_their_consultation_half_an_hour_later(app, client, booking, token, clinic):
    uid = booking.uid
    picker = client.get(f"/manage/{token}/reschedule?{TUESDAY_WEEK}")
    assert picker.status_code == 200
    page = text_of(picker)
    half_later = slot_key_for(TUESDAY_930AM, clinic.clinician.id)
    assert offers(page, half_later)  # overlaps only the booking itself
    assert not offers(page, slot_key_for(TUESDAY_9AM, clinic.clinician.id))  # its current time
    response = confirm_move(client, f"/manage/{token}", half_later)
    assert "has moved" in text_of(client.get(response.headers["Location"]))
    assert "Tuesday, December 1, 2026 at 9:30 AM EST" in text_of(client.get(f"/manage/{token}"))
    assert_moved_half_an_hour_later(app, booking, uid)


def test_the_current_time_is_not_a_new_time_to_move_to(client, booking, token, clinic):
    current = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    response = client.get(f"/manage/{token}/reschedule/confirm?slot={current}")
    assert response.status_code == 422
    page = text_of(response)
    assert "That is the consultation's current time" in page
    assert "still booked for Tuesday, December 1, 2026 at 9:00 AM EST" in page
    assert not offers(page, current)  # nor among the nearest other times
    assert offers(page, slot_key_for(TUESDAY_930AM, clinic.clinician.id))
    # Sent anyway (a form sent twice, say): nothing changes and nothing is sent.
    client.post(
        f"/manage/{token}/reschedule/confirm",
        data={"csrf_token": csrf_token(response.text), "slot": current},
    )
    assert fresh(booking.id).sequence == 0
    assert not [m for m in outbox.messages_for_booking(booking.id) if m.kind == "update"]


def test_the_same_move_sent_twice_moves_once(client, booking, token, clinic):
    half_later = slot_key_for(TUESDAY_930AM, clinic.clinician.id)
    page = client.get(f"/manage/{token}/reschedule/confirm?slot={half_later}")
    form = {"csrf_token": csrf_token(page.text), "slot": half_later}
    first = client.post(f"/manage/{token}/reschedule/confirm", data=form)
    again = client.post(f"/manage/{token}/reschedule/confirm", data=form)  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert (fresh(booking.id).starts_at, fresh(booking.id).sequence) == (TUESDAY_930AM, 1)
    assert len([m for m in outbox.messages_for_booking(booking.id) if m.kind == "update"]) == 3


def test_with_any_clinician_the_current_start_is_left_out_but_another_clinician_keeps_it(
    client, booking, token, clinic
):
    any_page = text_of(client.get(f"/manage/{token}/reschedule?clinician=&{TUESDAY_WEEK}"))
    # "any" at 9:00 could name the booking's own clinician again: not offered.
    assert not offers(any_page, slot_key_for(TUESDAY_9AM))
    assert offers(any_page, slot_key_for(TUESDAY_930AM))
    other = clinic.other.id
    other_page = text_of(client.get(f"/manage/{token}/reschedule?clinician={other}&{TUESDAY_WEEK}"))
    assert offers(other_page, slot_key_for(TUESDAY_9AM, other))  # a real change: who


def test_the_reschedule_view_does_not_reach_the_public_picker_or_the_api(
    client, booking, token, clinic
):
    own = clinic.clinician.id
    half_later = slot_key_for(TUESDAY_930AM, own)
    public_url = f"/book/?type={clinic.type.id}&clinician={own}&{TUESDAY_WEEK}"
    api_url = f"/api/slots?type={clinic.type.id}&from=2026-12-01&days=1&clinician={own}"

    def api_keys() -> list[str]:
        return [s["key"] for s in json.loads(client.get(api_url).data)["slots"]]

    # The public answers first (so cached), then the reschedule picker still sees its own view...
    assert not offers(text_of(client.get(public_url)), half_later)
    assert half_later not in api_keys()
    assert offers(text_of(client.get(f"/manage/{token}/reschedule?{TUESDAY_WEEK}")), half_later)
    # ... and after it, the public answers still hold the booking's time as taken.
    assert not offers(text_of(client.get(public_url)), half_later)
    assert half_later not in api_keys()
    assert slot_key_for(TUESDAY_10AM, own) in api_keys()


# --- the staff console --------------------------------------------------------------------------


def test_staff_move_a_consultation_half_an_hour_later(app, client, desk, booking, clinic):
    uid = booking.uid
    picker = client.get(f"/staff/bookings/{booking.id}/reschedule?{TUESDAY_WEEK}")
    assert picker.status_code == 200
    half_later = slot_key_for(TUESDAY_930AM, clinic.clinician.id)
    assert offers(text_of(picker), half_later)
    assert not offers(text_of(picker), slot_key_for(TUESDAY_9AM, clinic.clinician.id))
    confirm_move(client, f"/staff/bookings/{booking.id}", half_later)
    assert_moved_half_an_hour_later(app, booking, uid)
    db.session.expire_all()
    actions = [row.action for row in db.session.query(AuditEvent).filter_by(booking_id=booking.id)]
    assert "booking.rescheduled" in actions


def test_staff_asking_for_the_current_time_are_told_so(client, desk, booking, clinic):
    current = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    response = client.get(f"/staff/bookings/{booking.id}/reschedule/confirm?slot={current}")
    assert response.status_code == 422
    assert "That is the consultation's current time" in text_of(response)


# --- the database guarantee -------------------------------------------------------------------


def test_the_database_lets_a_booking_overlap_its_own_old_time_but_no_other(booking, clinic):
    """The guard (exclusion constraint / triggers of migration 0006) compares a row with the
    others only, so the one-row UPDATE of a move passes; onto another booking it is refused."""
    other = book(clinic, TUESDAY_9AM + timedelta(hours=3), n=1)  # 12:00-13:00
    row = db.session.get(Booking, booking.id)
    row.starts_at, row.ends_at = TUESDAY_930AM, TUESDAY_930AM + (row.ends_at - row.starts_at)
    db.session.commit()
    assert fresh(booking.id).blocked_starts_at == TUESDAY_930AM
    row = db.session.get(Booking, booking.id)
    row.starts_at, row.ends_at = other.starts_at, other.ends_at
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert fresh(booking.id).starts_at == TUESDAY_930AM


def test_the_reschedule_picker_opens_on_a_new_time_not_the_current_one(clinic):
    """A booking on the first free time: its picker must open where another time is free (on
    the week of the current time alone it could list nothing at all)."""
    first = schedule_service.first_available(clinic.type, clinic.clinician.id)
    held = book(clinic, first.start)
    for clinician_id in (clinic.clinician.id, None):
        opening = schedule_service.first_available(clinic.type, clinician_id, moving=held)
        assert opening is not None
        assert not schedule_service.is_current_time(held, opening.start, clinician_id)
