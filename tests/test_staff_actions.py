"""Booking actions in the console: cancel with a reason, reschedule with the patients' picker,
a booking for a caller; the emails each queues, its history and audit rows, who may act."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from html import unescape
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from booking_helpers import VALID_DETAILS, hidden_fields, input_attributes, slot_key_for
from mail_helpers import dissect
from smtp_server import smtp_server
from sqlalchemy import select
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing
from tests_support import csrf_token

from microsite.extensions import db
from microsite.models import AuditEvent, Booking, StaffNote
from microsite.services import booking as booking_service
from microsite.services import outbox, staff_actions
from microsite.services.errors import SlotTakenError
from microsite.services.history import booking_history

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
TUESDAY_11AM = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
WEDNESDAY_11AM = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
CALLER = {
    "full_name": "Riley <b>Caller</b>",
    "email": "riley.caller@example.com",
    "phone": "(207) 555-0199",
    "birth_date-month": "05",
    "birth_date-day": "17",
    "birth_date-year": "1990",
    "note": "Referred by Dr. Example.",
    "consent_privacy": "y",
}


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return SimpleNamespace(
        clinician=make_clinician(name="Dr Okafor", email="okafor@clinic.test"),
        other=make_clinician(name="Dr Other", email="other@clinic.test"),
        type=make_consultation_type(name="Initial consultation"),
        clinician_zone=ZoneInfo("America/New_York"),
    )


def patient(n: int = 0) -> booking_service.PatientDetails:
    return booking_service.PatientDetails(
        name=f"Patient {n}",
        email=f"p{n}@example.test",
        phone_e164=f"+1207555{n:04d}",
        birth_date=date(1980, 1, 1),
    )


def book(clinic, start=TUESDAY_9AM, clinician=None, n: int = 0) -> Booking:
    """A booking made by a patient through the service (its emails queued)."""
    return booking_service.book_slot(
        consultation_type_id=clinic.type.id,
        key=booking_service.slot_key(start, (clinician or clinic.clinician).id),
        patient=patient(n),
        idempotency_key=uuid.uuid4().hex,
    )


@pytest.fixture
def booking(clinic) -> Booking:
    return book(clinic)


@pytest.fixture
def desk(client, frozen_clock):
    account = create_staff(name="Dana Desk")
    quick_sign_in(client, account)
    return account


def fresh(booking_id: int) -> Booking:
    db.session.expire_all()
    return db.session.get(Booking, booking_id)


def messages(booking_id: int, kind: str) -> list:
    return [m for m in outbox.messages_for_booking(booking_id) if m.kind == kind]


def audit_rows(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def text_of(response) -> str:
    return unescape(response.get_data(as_text=True))


# --- the route list the access tests run over ---------------------------------------------------


def test_the_access_tests_cover_the_new_routes(app):
    # The rule tests/test_staff_access.staff_routes() follows: every rule under /staff/, each
    # method (not imported: under the whole suite `conftest` can name tests/e2e/conftest.py).
    covered = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/staff/")
        for method in rule.methods
    }
    for endpoint, method in [
        ("staff.actions.cancel", "GET"),
        ("staff.actions.cancel", "POST"),
        ("staff.actions.reschedule", "GET"),
        ("staff.actions.confirm_reschedule", "POST"),
        ("staff.actions.new_booking", "GET"),
        ("staff.actions.new_booking_details", "POST"),
        ("staff.outbox.failed", "GET"),
        ("staff.outbox.retry", "POST"),
        ("staff.feeds.overview", "GET"),
        ("staff.feeds.renew", "POST"),
        ("staff.feeds.revoke", "POST"),
    ]:
        assert (endpoint, method) in covered, endpoint


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_with_a_reason_sends_the_cancellations_and_writes_history_and_audit(
    client, desk, booking
):
    url = f"/staff/bookings/{booking.id}/cancel"
    page = client.get(url)
    assert page.status_code == 200
    assert "Clinician unavailable" in text_of(page)
    response = post_form(
        client, url, {"reason": "clinician_unavailable", "note": "Rebook next week <script>"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/staff/bookings/{booking.id}")
    cancelled = fresh(booking.id)
    assert (cancelled.status, cancelled.sequence, cancelled.uid) == ("cancelled", 1, booking.uid)
    sent = messages(booking.id, "cancellation")
    assert sorted(m.recipient_role for m in sent) == ["clinic", "clinician", "patient"]
    assert {m.sequence for m in sent} == {1}
    event = booking_history(booking.id)[-1]
    assert (event.kind, event.actor, event.detail) == (
        "cancelled",
        f"staff:{desk.id}",
        "Clinician unavailable",
    )
    (row,) = audit_rows("booking.cancelled")
    assert (row.actor_account_id, row.booking_id, row.detail) == (
        desk.id,
        booking.id,
        "clinician_unavailable",
    )
    # What staff typed is kept as an internal note, never in the audit or history row.
    note = db.session.scalars(select(StaffNote).where(StaffNote.booking_id == booking.id)).one()
    assert note.body == "Rebook next week <script>"
    detail = client.get(f"/staff/bookings/{booking.id}").get_data(as_text=True)
    assert "Rebook next week &lt;script&gt;" in detail
    assert "Staff: Dana Desk" in detail
    # The time is free again for a patient.
    assert book(clinic_of(booking), n=5).status == "confirmed"


def clinic_of(booking: Booking) -> SimpleNamespace:
    return SimpleNamespace(type=booking.consultation_type, clinician=booking.clinician)


def test_cancel_needs_a_reason_from_the_list(client, desk, booking):
    url = f"/staff/bookings/{booking.id}/cancel"
    for reason in ("", "because I said so"):
        response = post_form(client, url, {"reason": reason})
        assert response.status_code == 422
    assert "Choose why the consultation is cancelled." in text_of(
        post_form(client, url, {"reason": ""})
    )
    assert fresh(booking.id).status == "confirmed"
    assert not messages(booking.id, "cancellation")
    assert not audit_rows("booking.cancelled")


def test_cancelling_twice_changes_nothing_more(client, desk, booking):
    url = f"/staff/bookings/{booking.id}/cancel"
    post_form(client, url, {"reason": "booked_in_error"})
    again = client.get(url)
    assert again.status_code == 303
    assert len(messages(booking.id, "cancellation")) == 3
    assert len(audit_rows("booking.cancelled")) == 1


# --- reschedule ---------------------------------------------------------------------------------


def test_reschedule_uses_the_picker_and_keeps_the_uid_with_a_higher_sequence(
    client, desk, booking, clinic
):
    uid, sequence = booking.uid, booking.sequence
    picker = client.get(f"/staff/bookings/{booking.id}/reschedule?week=2026-11-30&day=2026-12-02")
    assert picker.status_code == 200
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    confirm_url = f"/staff/bookings/{booking.id}/reschedule/confirm?slot={key}"
    assert confirm_url in text_of(picker)  # the patients' picker, leading to the staff page
    page = client.get(confirm_url)
    assert page.status_code == 200
    assert "Wednesday, December 2, 2026 at 11:00 AM EST" in text_of(page)
    response = client.post(
        f"/staff/bookings/{booking.id}/reschedule/confirm",
        data={"csrf_token": csrf_token(page.text), "slot": key},
    )
    assert response.status_code == 303
    moved = fresh(booking.id)
    assert (moved.starts_at, moved.uid, moved.sequence) == (WEDNESDAY_11AM, uid, sequence + 1)
    updates = messages(booking.id, "update")
    assert sorted(m.recipient_role for m in updates) == ["clinic", "clinician", "patient"]
    assert {m.sequence for m in updates} == {sequence + 1}
    event = booking_history(booking.id)[-1]
    assert (event.kind, event.actor, event.detail) == (
        "rescheduled",
        f"staff:{desk.id}",
        "from 2026-12-01T14:00Z",
    )
    (row,) = audit_rows("booking.rescheduled")
    assert (row.actor_account_id, row.booking_id) == (desk.id, booking.id)
    # The old time is free again.
    assert book(clinic, TUESDAY_9AM, n=7).status == "confirmed"


def test_staff_may_move_and_cancel_inside_the_patients_cutoff(
    app, client, desk, booking, clinic, frozen_clock
):
    app.config["CANCEL_CUTOFF"] = 48  # hours: the patient could no longer change it online
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    assert (
        post_form(
            client,
            f"/staff/bookings/{booking.id}/reschedule/confirm?slot={key}",
            {"slot": key},
            to=f"/staff/bookings/{booking.id}/reschedule/confirm",
        ).status_code
        == 303
    )
    assert fresh(booking.id).starts_at == WEDNESDAY_11AM
    url = f"/staff/bookings/{booking.id}/cancel"
    assert post_form(client, url, {"reason": "patient_request"}).status_code == 303
    assert fresh(booking.id).status == "cancelled"


def test_a_time_taken_meanwhile_gives_the_409_page_with_nearby_times(
    client, desk, booking, clinic, make_booking
):
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    page = client.get(f"/staff/bookings/{booking.id}/reschedule/confirm?slot={key}")
    assert page.status_code == 200
    make_booking(clinic.clinician, clinic.type, WEDNESDAY_11AM)  # a patient was quicker
    response = client.post(
        f"/staff/bookings/{booking.id}/reschedule/confirm",
        data={"csrf_token": csrf_token(page.text), "slot": key},
    )
    assert response.status_code == 409
    body = text_of(response)
    assert "That time was just taken" in body
    assert "still booked for Tuesday, December 1, 2026 at 9:00 AM EST" in body
    assert re.search(r'name="slot" value="\d+-20261202T1[57]', body)  # nearby times offered
    kept = fresh(booking.id)
    assert (kept.starts_at, kept.sequence) == (TUESDAY_9AM, 0)
    assert not messages(booking.id, "update")
    assert not audit_rows("booking.rescheduled")


def test_a_patient_who_loses_to_a_staff_reschedule_is_told_the_time_was_taken(
    client, desk, booking, clinic, app
):
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    patient_client = app.test_client()
    form = patient_client.get(f"/book/details?type={clinic.type.id}&slot={key}")
    assert form.status_code == 200
    staff_page = client.get(f"/staff/bookings/{booking.id}/reschedule/confirm?slot={key}")
    moved = client.post(
        f"/staff/bookings/{booking.id}/reschedule/confirm",
        data={"csrf_token": csrf_token(staff_page.text), "slot": key},
    )
    assert moved.status_code == 303
    # The patient presses "Book" on the form they opened before the move.
    data = {**hidden_fields(form.text), **VALID_DETAILS, "csrf_token": csrf_token(form.text)}
    lost = patient_client.post("/book/details", data=data)
    assert lost.status_code == 409
    assert "That time was just taken" in text_of(lost)


def _race(app, calls) -> list:
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                results[i] = calls[i]()
            except Exception as error:  # noqa: BLE001 - the outcome is what is asserted
                results[i] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_a_staff_reschedule_racing_a_patient_booking_gives_one_winner(app, clinic):
    """Threads released at once, on whichever database the suite runs on: for each new time,
    exactly one of the staff move and the patient's booking gets it; the other is refused
    with SlotTakenError (the 409 path) and, if it was the move, the booking is as it was."""
    account = create_staff(name="Dana Desk")
    winners = []
    for n in range(4):
        booking = book(clinic, TUESDAY_9AM + timedelta(hours=n), n=10 + n)
        target = WEDNESDAY_11AM + timedelta(hours=n)
        key = booking_service.slot_key(target, clinic.clinician.id)
        staff, booked = _race(
            app,
            [
                lambda b=booking, k=key: staff_actions.reschedule(b.id, k, account_id=account.id),
                lambda k=key, i=n: booking_service.book_slot(
                    consultation_type_id=clinic.type.id,
                    key=k,
                    patient=patient(20 + i),
                    idempotency_key=uuid.uuid4().hex,
                ),
            ],
        )
        outcomes = [isinstance(r, Booking) for r in (staff, booked)]
        assert outcomes.count(True) == 1, (staff, booked)
        loser = booked if outcomes[0] else staff
        assert isinstance(loser, SlotTakenError), loser
        db.session.rollback()
        at_target = db.session.scalars(
            select(Booking).where(Booking.starts_at == target, Booking.status == "confirmed")
        ).all()
        assert len(at_target) == 1
        moved = fresh(booking.id)
        if outcomes[0]:
            winners.append("staff")
            assert (moved.starts_at, moved.sequence) == (target, 1)
        else:
            winners.append("patient")
            assert (moved.starts_at, moved.sequence) == (booking.starts_at, 0)
            assert not messages(booking.id, "update")
    assert len(audit_rows("booking.rescheduled")) == winners.count("staff")


# --- a booking for a caller ---------------------------------------------------------------------


def _caller_form(client, clinic, start=TUESDAY_11AM):
    key = slot_key_for(start, clinic.clinician.id)
    day = start.astimezone(clinic.clinician_zone).date().isoformat()
    picker = client.get(
        f"/staff/bookings/new?type={clinic.type.id}&clinician={clinic.clinician.id}&day={day}"
    )
    assert picker.status_code == 200
    details_url = f"/staff/bookings/new/details?type={clinic.type.id}&slot={key}"
    assert details_url in text_of(picker)
    return details_url


def submit_caller(client, details_url: str, **changes):
    """Open the caller form for a time and send it (hidden fields as the page has them)."""
    page = client.get(details_url)
    data = {**hidden_fields(page.text), **CALLER, "csrf_token": csrf_token(page.text), **changes}
    return client.post(
        "/staff/bookings/new/details", data={k: v for k, v in data.items() if v is not None}
    )


def test_front_desk_books_for_a_caller_who_gets_the_confirmation_and_link(
    app, client, desk, clinic
):
    assert clinic.type.name in text_of(client.get("/staff/bookings/new"))
    details_url = _caller_form(client, clinic)
    page = client.get(details_url)
    assert page.status_code == 200
    assert 'name="website"' not in page.text  # no bot guards for a signed-in member of staff
    assert 'name="started"' not in page.text
    response = submit_caller(client, details_url)
    assert response.status_code == 303, response.text
    made = db.session.scalars(select(Booking)).one()
    assert response.headers["Location"].endswith(f"/staff/bookings/{made.id}")
    assert (made.starts_at, made.patient_name, made.patient_phone, made.patient_birth_date) == (
        TUESDAY_11AM,
        "Riley <b>Caller</b>",
        "+12075550199",
        date(1990, 5, 17),
    )
    event = booking_history(made.id)[0]
    assert (event.kind, event.actor) == ("created", f"staff:{desk.id}")
    queued = {(m.kind, m.recipient_role) for m in outbox.messages_for_booking(made.id)}
    assert queued == {("confirmation", "patient"), ("invite", "clinician"), ("invite", "clinic")}
    (row,) = audit_rows("booking.created")
    assert (row.actor_account_id, row.booking_id, row.detail) == (desk.id, made.id, "")
    with smtp_server() as (port, handler):
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
        outbox.send_due()
        received = handler.wait_for(3)
    (confirmation,) = [
        dissect(r.message) for r in received if r.rcpt_tos[0] == "riley.caller@example.com"
    ]
    assert client.get(f"/manage/{confirmation.manage_token}").status_code == 200


def test_a_caller_booking_is_checked_like_the_public_form(client, desk, clinic):
    details_url = _caller_form(client, clinic)
    response = submit_caller(client, details_url, phone="12", consent_privacy=None)
    assert response.status_code == 422
    body = text_of(response)
    assert "Enter a valid phone number" in body
    assert "Confirm the caller agreed to the privacy notice." in body
    assert "Riley <b>Caller</b>" not in response.get_data(as_text=True)  # escaped, kept
    assert db.session.scalars(select(Booking)).all() == []


def test_staff_give_the_date_of_birth_in_the_same_three_boxes(client, desk, clinic):
    details_url = _caller_form(client, clinic)
    page = client.get(details_url).text
    labels = re.findall(r'<label for="birth_date-(\w+)">(\w+)</label>', page)
    assert labels == [("month", "Month"), ("day", "Day"), ("year", "Year")]
    assert 'id="birth_date-hint">For example, 04 23 1985.</p>' in page
    response = submit_caller(client, details_url, **{"birth_date-year": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<a href="#birth_date-year">Date of birth must include a year.</a>' in html
    assert input_attributes(html, "birth_date-month")["value"] == "05"  # kept to correct
    assert db.session.scalars(select(Booking)).all() == []


def test_the_upcoming_limit_holds_unless_staff_override_it(app, client, desk, clinic):
    app.config["MAX_UPCOMING_PER_PATIENT"] = 1
    booking_service.book_slot(
        consultation_type_id=clinic.type.id,
        key=booking_service.slot_key(TUESDAY_9AM, clinic.clinician.id),
        patient=booking_service.PatientDetails(
            name="Riley Caller",
            email=CALLER["email"],
            phone_e164="+12075550199",
            birth_date=date(1990, 5, 17),
        ),
        idempotency_key=uuid.uuid4().hex,
    )
    details_url = _caller_form(client, clinic, WEDNESDAY_11AM)
    refused = submit_caller(client, details_url)
    assert refused.status_code == 409
    assert "Book even if" in text_of(refused)
    assert len(db.session.scalars(select(Booking)).all()) == 1
    allowed = submit_caller(client, details_url, override_upcoming_limit="y")
    assert allowed.status_code == 303
    assert len(db.session.scalars(select(Booking)).all()) == 2
    (row,) = audit_rows("booking.created")
    assert row.detail == "limit overridden"


def test_a_caller_booking_for_a_taken_time_offers_the_nearest(client, desk, clinic, make_booking):
    details_url = _caller_form(client, clinic)
    page = client.get(details_url)
    make_booking(clinic.clinician, clinic.type, TUESDAY_11AM)  # taken while the call went on
    data = {**hidden_fields(page.text), **CALLER, "csrf_token": csrf_token(page.text)}
    response = client.post("/staff/bookings/new/details", data=data)
    assert response.status_code == 409
    body = text_of(response)
    assert "That time was just taken" in body
    assert "Riley <b>Caller</b>" in body  # the details are kept (escaped in the page)
    assert 'name="slot" value="' in body


# --- who may act --------------------------------------------------------------------------------


def test_a_clinician_acts_on_their_own_bookings_only(client, frozen_clock, clinic):
    mine = book(clinic)
    theirs = book(clinic, clinician=clinic.other, n=1)
    quick_sign_in(client, create_staff("okafor@clinic.test", role="clinician", name="Dr O"))
    key = slot_key_for(WEDNESDAY_11AM, clinic.clinician.id)
    for url in (
        f"/staff/bookings/{theirs.id}/cancel",
        f"/staff/bookings/{theirs.id}/reschedule",
        f"/staff/bookings/{theirs.id}/reschedule/confirm?slot={key}",
    ):
        assert client.get(url).status_code == 404, url
    own_page = f"/staff/bookings/{mine.id}/cancel"
    for action in ("cancel", "reschedule/confirm"):
        response = post_form(
            client,
            own_page,
            {"reason": "patient_request", "slot": key},
            to=f"/staff/bookings/{theirs.id}/{action}",
        )
        assert response.status_code == 404
    assert fresh(theirs.id).status == "confirmed"
    assert post_form(client, own_page, {"reason": "patient_request"}).status_code == 303
    assert fresh(mine.id).status == "cancelled"
    # Booking for callers and the outbox are the front desk's work.
    assert client.get("/staff/bookings/new").status_code == 403
    assert client.get("/staff/outbox/").status_code == 403


def test_clinicians_may_act_on_all_when_configured(app, client, frozen_clock, clinic):
    app.config["STAFF_CLINICIANS_SEE_ALL"] = True
    theirs = book(clinic, clinician=clinic.other)
    quick_sign_in(client, create_staff("okafor@clinic.test", role="clinician", name="Dr O"))
    url = f"/staff/bookings/{theirs.id}/cancel"
    assert post_form(client, url, {"reason": "clinic_closed"}).status_code == 303


def test_admin_can_act_too(client, frozen_clock, booking):
    quick_sign_in(client, create_staff("admin@clinic.test", role="admin", name="Ada Admin"))
    url = f"/staff/bookings/{booking.id}/cancel"
    assert post_form(client, url, {"reason": "clinic_closed"}).status_code == 303


@pytest.mark.parametrize(
    "path",
    [
        "/staff/bookings/{id}/cancel",
        "/staff/bookings/{id}/reschedule/confirm",
        "/staff/bookings/new/details",
        "/staff/outbox/{message}/retry",
        "/staff/feeds/renew",
        "/staff/feeds/revoke",
    ],
)
def test_every_action_needs_the_csrf_token(app, client, frozen_clock, booking, path):
    account = create_staff("admin@clinic.test", role="admin", name="Ada Admin")
    quick_sign_in(client, account)
    message = outbox.messages_for_booking(booking.id)[0]
    url = path.format(id=booking.id, message=message.id)
    response = client.post(
        url, data={"reason": "clinic_closed", "slot": "x", "owner": "clinic", **CALLER}
    )
    assert response.status_code == 400
    assert fresh(booking.id).status == "confirmed"
    assert audit_rows("booking.cancelled") == []
    assert audit_rows("feed.renewed") == []


def test_actions_are_post_only(client, desk, booking):
    assert client.get("/staff/feeds/renew").status_code == 405
    message = outbox.messages_for_booking(booking.id)[0]
    assert client.get(f"/staff/outbox/{message.id}/retry").status_code == 405
