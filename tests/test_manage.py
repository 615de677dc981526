"""The patient's manage link: view, download, cancel, reschedule; its limits and its secrecy."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import icalendar
import pytest
from booking_helpers import slot_key_for, submit
from mail_helpers import dissect
from smtp_server import smtp_server
from sqlalchemy import select, text
from tests_support import csrf_token

from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import Booking, ManageLink
from microsite.services import manage_links, outbox
from microsite.services.booking import cancel_booking
from microsite.services.history import booking_history

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
WEDNESDAY_11AM = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    clinician = make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test")
    return SimpleNamespace(clinician=clinician, type=make_consultation_type())


@pytest.fixture
def booking(client, clinic) -> Booking:
    key = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    assert submit(client, clinic.type.id, key).status_code == 303
    return db.session.scalars(select(Booking)).one()


def new_token(booking: Booking) -> str:
    with write_transaction():
        token = manage_links.issue_link(booking.id)
    return token


def post_form(client, page_url: str, action_url: str, **data):
    page = client.get(page_url)
    assert page.status_code == 200, page.status_code
    return client.post(
        action_url, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data}
    )


def test_the_link_in_the_confirmation_email_opens_the_booking(app, client, booking):
    with smtp_server() as (port, handler):
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
        outbox.send_due()
        received = handler.wait_for(3)
    (confirmation,) = [
        dissect(r.message)
        for r in received
        if r.rcpt_tos[0] != "a.quinn@example.test" and "bookings@" not in r.rcpt_tos[0]
    ]
    token = confirmation.manage_token
    assert len(token) >= 22  # at least 128 bits of URL-safe base64
    response = client.get(f"/manage/{token}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for shown in (
        "Tuesday, December 1, 2026 at 9:00 AM EST",
        "Dr. Avery Quinn",
        booking.consultation_type.name,
        booking.reference,
        "100 Harbor Street, Suite 200",
        "Cancel this consultation",
        "Choose another time",
        f"/manage/{token}/consultation.ics",
    ):
        assert shown in page, shown
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert token not in re.sub(r'href="/manage/[^"]+"|action="/manage/[^"]+"', "", page)
    # Only a hash is stored, and nowhere in the database does the token itself appear.
    stored = db.session.scalars(select(ManageLink.token_hash)).all()
    assert manage_links.token_hash(token) in stored
    assert token not in stored
    dump = "\n".join(str(row) for row in db.session.execute(text("SELECT * FROM outbox_message")))
    assert token not in dump


def test_the_calendar_file_again(client, booking):
    token = new_token(booking)
    response = client.get(f"/manage/{token}/consultation.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    event = icalendar.Calendar.from_ical(response.data).walk("VEVENT")[0]
    assert str(event["UID"]) == booking.uid
    assert str(event["STATUS"]) == "CONFIRMED"
    assert response.headers["Cache-Control"] == "no-store"


def test_cancelling_with_the_link(client, booking):
    token = new_token(booking)
    response = post_form(client, f"/manage/{token}", f"/manage/{token}/cancel")
    assert response.status_code == 303
    gone = client.get(response.headers["Location"])
    assert gone.status_code == 410
    assert "This consultation was cancelled" in gone.get_data(as_text=True)
    assert "+1 207 555 0142" in gone.get_data(as_text=True)
    db.session.refresh(booking)
    assert booking.status == "cancelled"
    assert booking.sequence == 1
    assert [(e.kind, e.actor) for e in booking_history(booking.id)][-1] == ("cancelled", "patient")
    cancellations = [m for m in outbox.messages_for_booking(booking.id) if m.kind == "cancellation"]
    assert sorted(m.recipient_role for m in cancellations) == ["clinic", "clinician", "patient"]
    assert client.get(f"/manage/{token}/consultation.ics").status_code == 410


def test_a_change_without_the_csrf_token_is_refused(client, booking):
    token = new_token(booking)
    assert client.post(f"/manage/{token}/cancel").status_code == 400
    assert client.get(f"/manage/{token}/cancel").status_code == 405  # no change on GET
    db.session.refresh(booking)
    assert booking.status == "confirmed"


def test_over_https_the_forms_work_without_a_referrer(app, booking):
    """The pages send no referrer, so Flask-WTF's HTTPS referrer check must not apply here."""
    secure = app.test_client()
    token = new_token(booking)
    page = secure.get(f"/manage/{token}", base_url="https://localhost")
    assert page.headers["Referrer-Policy"] == "no-referrer"
    response = secure.post(
        f"/manage/{token}/cancel",
        data={"csrf_token": csrf_token(page.get_data(as_text=True))},
        base_url="https://localhost",
    )
    assert response.status_code == 303
    db.session.refresh(booking)
    assert booking.status == "cancelled"


def test_a_cross_site_post_is_refused(client, booking):
    token = new_token(booking)
    page = client.get(f"/manage/{token}")
    data = {"csrf_token": csrf_token(page.get_data(as_text=True))}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        assert client.post(f"/manage/{token}/cancel", data=data, headers=headers).status_code == 403
    db.session.refresh(booking)
    assert booking.status == "confirmed"


def test_inside_the_cutoff_the_page_says_to_phone(client, booking, frozen_clock):
    token = new_token(booking)
    page_before = client.get(f"/manage/{token}").get_data(as_text=True)
    frozen_clock.set(TUESDAY_9AM - timedelta(hours=23))
    response = client.get(f"/manage/{token}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Cancel this consultation" not in page
    assert "please call us on" in page
    # A form opened earlier and sent now is refused too.
    response = client.post(f"/manage/{token}/cancel", data={"csrf_token": csrf_token(page_before)})
    assert response.status_code == 409
    assert client.get(f"/manage/{token}/reschedule").status_code == 303
    db.session.refresh(booking)
    assert booking.status == "confirmed"


def test_rescheduling_with_the_link_keeps_the_uid_and_the_link(client, booking, clinic):
    token = new_token(booking)
    uid = booking.uid
    picker = client.get(f"/manage/{token}/reschedule?week=2026-11-30&day=2026-12-02")
    assert picker.status_code == 200
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    confirm_url = f"/manage/{token}/reschedule/confirm?slot={key}"
    assert confirm_url in picker.get_data(as_text=True)  # the picker's times lead back here
    response = post_form(client, confirm_url, f"/manage/{token}/reschedule/confirm", slot=key)
    assert response.status_code == 303
    db.session.refresh(booking)
    assert (booking.starts_at, booking.uid, booking.sequence) == (WEDNESDAY_11AM, uid, 1)
    assert booking_history(booking.id)[-1].detail == "from 2026-12-01T14:00Z"
    assert "has moved" in client.get(response.headers["Location"]).get_data(as_text=True)
    page = client.get(f"/manage/{token}").get_data(as_text=True)  # the same link still works
    assert "Wednesday, December 2, 2026 at 11:00 AM EST" in page
    updates = [m for m in outbox.messages_for_booking(booking.id) if m.kind == "update"]
    assert sorted(m.recipient_role for m in updates) == ["clinic", "clinician", "patient"]
    # The old time is free again for someone else.
    other_key = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    assert client.get(f"/book/details?type={clinic.type.id}&slot={other_key}").status_code == 200


def test_losing_the_race_for_the_new_time_keeps_the_old_booking(
    client, booking, clinic, make_booking
):
    token = new_token(booking)
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    confirm_url = f"/manage/{token}/reschedule/confirm?slot={key}"
    page = client.get(confirm_url)
    assert page.status_code == 200
    make_booking(clinic.clinician, clinic.type, WEDNESDAY_11AM)  # someone else was quicker
    response = client.post(
        f"/manage/{token}/reschedule/confirm",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "slot": key},
    )
    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "That time was just taken" in body
    assert "still booked for Tuesday, December 1, 2026 at 9:00 AM EST" in body
    assert f"/manage/{token}/reschedule/confirm" in body  # other times offered
    db.session.expire_all()
    kept = db.session.get(Booking, booking.id)
    assert (kept.starts_at, kept.sequence, kept.status) == (TUESDAY_9AM, 0, "confirmed")
    assert not [m for m in outbox.messages_for_booking(booking.id) if m.kind == "update"]


def test_a_tampered_or_unknown_token_is_404(client, booking):
    token = new_token(booking)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, "x" * 43, "short", token + "x"):
        assert client.get(f"/manage/{bad}").status_code == 404, bad
    assert client.get(f"/manage/{token}").status_code == 200


def test_after_the_appointment_the_link_is_410(client, booking, frozen_clock):
    token = new_token(booking)
    frozen_clock.set(booking.ends_at + timedelta(minutes=1))
    response = client.get(f"/manage/{token}")
    assert response.status_code == 410
    assert "has passed" in response.get_data(as_text=True)
    assert "+1 207 555 0142" in response.get_data(as_text=True)


def test_the_token_never_reaches_the_logs(client, booking, clinic, caplog):
    caplog.set_level(logging.DEBUG)
    token = new_token(booking)
    client.get(f"/manage/{token}")
    client.get(f"/manage/{token}/reschedule")
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    post_form(
        client,
        f"/manage/{token}/reschedule/confirm?slot={key}",
        f"/manage/{token}/reschedule/confirm",
        slot=key,
    )
    post_form(client, f"/manage/{token}", f"/manage/{token}/cancel")
    client.get(f"/manage/{token}")
    assert any(getattr(r, "booking_id", None) == booking.id for r in caplog.records)
    assert token not in caplog.text
    for record in caplog.records:
        assert token not in str(record.__dict__)


def test_a_cancelled_booking_reads_as_cancelled_on_its_confirmation_page(client, booking):
    assert "Your consultation is booked" in client.get("/book/confirmed").get_data(as_text=True)
    cancel_booking(booking.reference)
    page = client.get("/book/confirmed").get_data(as_text=True)
    assert "This consultation was cancelled" in page
    assert "Your consultation is booked" not in page
    assert " is booked" not in page  # nor in the page's description
    download = client.get("/book/confirmed/consultation.ics")
    event = icalendar.Calendar.from_ical(download.data).walk("VEVENT")[0]
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 1
