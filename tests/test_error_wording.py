"""Error pages say what is true for the page that failed: the booking form, a patient's manage
link, or the staff console. A database outage (503), a form too large (413) and an expired
form (400) each tell the patient or the staff member what did not happen there, and a change
whose COMMIT may have reached the database never claims that nothing was changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from booking_helpers import slot_key_for, submit
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from staff_support import create_staff, quick_sign_in, use_fast_hashing
from tests_support import csrf_token

from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import Booking
from microsite.services import lifecycle, manage_links, staff_bookings

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
NOTHING_PHRASES = ("Nothing was booked", "Nothing was changed", "nothing was changed")


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def booking(client, frozen_clock, make_clinician, make_consultation_type) -> Booking:
    clinician, kind = make_clinician(), make_consultation_type()
    assert submit(client, kind.id, slot_key_for(TUESDAY_9AM, clinician.id)).status_code == 303
    return db.session.scalars(select(Booking)).one()


@pytest.fixture
def token(booking) -> str:
    with write_transaction():
        return manage_links.issue_link(booking.id)


def database_away(*_args, **_kwargs):
    raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))


def lost_during_commit(*_args, **_kwargs):
    """PostgreSQL's COMMIT lost with its connection: the change may be stored (see database.py)."""
    error = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    error.commit_outcome_unknown = True
    raise error


def failed_page(response, status: int = 503) -> str:
    assert response.status_code == status
    return response.get_data(as_text=True)


def post_with_token(client, page_url: str, action_url: str, data: dict | None = None):
    page = client.get(page_url)
    assert page.status_code == 200
    return client.post(action_url, data={"csrf_token": csrf_token(page.text), **(data or {})})


# --- 503: the manage link ------------------------------------------------------------------------


def test_a_manage_cancel_that_never_ran_says_nothing_was_changed(client, token, monkeypatch):
    monkeypatch.setattr(lifecycle, "cancel_booking", database_away)
    text = failed_page(post_with_token(client, f"/manage/{token}", f"/manage/{token}/cancel"))
    assert "Nothing was changed." in text
    assert "Nothing was booked" not in text
    assert "Retry-After" not in text  # a header, checked below, not words on the page


def test_a_manage_page_that_cannot_load_says_the_booking_is_safe(client, token, monkeypatch):
    monkeypatch.setattr(manage_links, "booking_for_token", database_away)
    response = client.get(f"/manage/{token}")
    text = failed_page(response)
    assert response.headers["Retry-After"]
    assert "Your booking is safe." in text
    assert "Nothing was booked" not in text


def test_a_manage_change_whose_commit_is_unknown_does_not_claim_nothing_changed(
    client, token, monkeypatch
):
    monkeypatch.setattr(lifecycle, "cancel_booking", lost_during_commit)
    text = failed_page(post_with_token(client, f"/manage/{token}", f"/manage/{token}/cancel"))
    assert "may or may not have been saved" in text
    assert not [phrase for phrase in NOTHING_PHRASES if phrase in text]


# --- 503: the staff console ----------------------------------------------------------------------


@pytest.fixture
def desk(client, frozen_clock):
    account = create_staff()
    quick_sign_in(client, account)
    return account


STAFF_WORDS = "The console could not reach the database; nothing was changed."


def test_a_staff_page_that_cannot_load_uses_the_consoles_words(client, desk, monkeypatch):
    monkeypatch.setattr(staff_bookings, "bookings_between", database_away)
    text = failed_page(client.get("/staff/day/2026-12-01"))
    assert STAFF_WORDS in text
    assert "The console is unavailable for a moment" in text
    # Not the patient's words: staff were not looking at "your booking".
    assert "Your booking is safe" not in text
    assert "Nothing was booked" not in text


def test_a_staff_action_that_never_ran_uses_the_consoles_words(client, desk, booking, monkeypatch):
    monkeypatch.setattr(staff_bookings, "add_note", database_away)
    response = post_with_token(
        client,
        f"/staff/bookings/{booking.id}",
        f"/staff/bookings/{booking.id}/notes",
        {"body": "x"},
    )
    text = failed_page(response)
    assert STAFF_WORDS in text
    assert "Your booking is safe" not in text


def test_a_staff_action_whose_commit_is_unknown_does_not_claim_nothing_changed(
    client, desk, booking, monkeypatch
):
    monkeypatch.setattr(staff_bookings, "add_note", lost_during_commit)
    response = post_with_token(
        client,
        f"/staff/bookings/{booking.id}",
        f"/staff/bookings/{booking.id}/notes",
        {"body": "x"},
    )
    text = failed_page(response)
    assert "may or may not have been saved" in text
    assert not [phrase for phrase in NOTHING_PHRASES if phrase in text]


# --- 413 and the expired form (CSRF 400) follow the path ------------------------------------------

FORMS = {
    "booking form": ("/book/details", "Nothing was booked."),
    "manage link": ("/manage/{token}/cancel", "Nothing was changed."),
    "staff sign-in": ("/staff/login", "Nothing was saved."),
    "staff action": ("/staff/bookings/{booking_id}/notes", "Nothing was saved."),
}
OTHER_WORDS = {"Nothing was booked.", "Nothing was changed.", "Nothing was saved."}


@pytest.mark.parametrize("form", FORMS)
def test_a_form_too_large_says_what_did_not_happen_there(client, booking, token, form):
    path, words = FORMS[form]
    url = path.format(token=token, booking_id=booking.id)
    text = failed_page(client.post(url, data={"note": "x" * 70_000}), 413)
    assert "larger than our forms take" in text
    assert words in text
    assert not [other for other in OTHER_WORDS - {words} if other in text]


@pytest.mark.parametrize("form", FORMS)
def test_an_expired_form_says_what_did_not_happen_there(client, booking, token, form):
    path, words = FORMS[form]
    url = path.format(token=token, booking_id=booking.id)
    text = failed_page(client.post(url, data={"csrf_token": "expired"}), 400)
    # The manage forms check their own token (a plain 400); the others are Flask-WTF's page.
    assert ("We could not read that request" if form == "manage link" else "has expired") in text
    assert words in text
    assert not [other for other in OTHER_WORDS - {words} if other in text]
