"""The database, not Python, keeps one clinician from being booked twice at overlapping times."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from microsite.extensions import db
from microsite.models import Booking
from microsite.services import booking as booking_service
from microsite.services import outbox
from microsite.services.errors import SlotTakenError
from microsite.services.history import booking_history

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(), make_consultation_type()


def patient(n: int = 0) -> booking_service.PatientDetails:
    return booking_service.PatientDetails(
        name=f"Patient {n}",
        email=f"p{n}@example.test",
        phone_e164="+12075550123",
        birth_date=date(1980, 1, 1),
    )


def active_bookings() -> int:
    db.session.rollback()  # end this thread's read snapshot; count what is committed now
    query = select(func.count()).select_from(Booking).where(Booking.status != "cancelled")
    return db.session.scalar(query)


def sql_instant(instant: datetime) -> str:
    """A UTC instant as SQL text: SQLite's column holds naive UTC text (as the app writes it)."""
    offset = "+00:00" if db.engine.dialect.name == "postgresql" else ""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + offset


def insert_raw(
    clinician_id: int,
    type_id: int,
    start: datetime,
    minutes: int = 60,
    *,
    before: int = 0,
    after: int = 0,
):
    """A booking written straight into the table (its buffered span `before`/`after` minutes
    either side), bypassing every Python check."""
    db.session.execute(
        text(
            "INSERT INTO booking (uid, sequence, reference, status, clinician_id, "
            "consultation_type_id, starts_at, ends_at, blocked_starts_at, blocked_ends_at, "
            "patient_name, patient_email, "
            "patient_phone, patient_birth_date, patient_note, created_at, updated_at) "
            "VALUES (:uid, 0, :ref, 'confirmed', :clinician, :type, :start, :end, "
            ":blocked_start, :blocked_end, 'X', "
            "'x@example.test', '+12075550123', :dob, '', :now, :now)"
        ),
        {
            "blocked_start": sql_instant(start - timedelta(minutes=before)),
            "blocked_end": sql_instant(start + timedelta(minutes=minutes + after)),
            "uid": str(uuid.uuid4()),
            "ref": uuid.uuid4().hex[:6],
            "clinician": clinician_id,
            "type": type_id,
            "start": sql_instant(start),
            "end": sql_instant(start + timedelta(minutes=minutes)),
            "dob": date(1980, 1, 1),
            "now": sql_instant(TUESDAY_9AM),
        },
    )
    db.session.commit()


def test_raw_overlapping_insert_fails_on_the_database_constraint(clinic, is_postgres):
    clinician, consultation_type = clinic
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM)
    with pytest.raises(IntegrityError) as refused:
        insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM + timedelta(minutes=30))
    db.session.rollback()
    expected = "ex_booking_no_overlap" if is_postgres else "booking_overlap"
    assert expected in str(refused.value.orig)
    assert active_bookings() == 1


def test_raw_back_to_back_and_other_clinician_inserts_are_allowed(clinic, make_clinician):
    clinician, consultation_type = clinic
    other = make_clinician(name="Dr. Other")
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM)
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM + timedelta(hours=1))
    insert_raw(other.id, consultation_type.id, TUESDAY_9AM)
    assert active_bookings() == 3


def test_a_cancelled_booking_frees_its_time_in_the_database(clinic):
    clinician, consultation_type = clinic
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM)
    db.session.execute(text("UPDATE booking SET status = 'cancelled'"))
    db.session.commit()
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM)
    assert active_bookings() == 1


def test_moving_a_booking_onto_another_is_refused_by_the_database(clinic):
    clinician, consultation_type = clinic
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM)
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM + timedelta(hours=2))
    later = db.session.scalars(select(Booking).order_by(Booking.starts_at.desc())).first()
    later.starts_at = TUESDAY_9AM + timedelta(minutes=30)
    later.ends_at = TUESDAY_9AM + timedelta(minutes=90)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def _race(app, workers: int, make_call) -> list:
    """Run `make_call(i)` in `workers` threads released at once; return results or errors."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def run(i: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[i] = make_call(i)
            except Exception as error:  # noqa: BLE001 - the race's outcome is what we assert
                results[i] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_threads_racing_for_one_slot_make_exactly_one_booking(app, clinic):
    clinician, consultation_type = clinic
    key = booking_service.slot_key(TUESDAY_9AM, clinician.id)

    def book(i: int):
        return booking_service.book_slot(
            consultation_type_id=consultation_type.id,
            key=key,
            patient=patient(i),
            idempotency_key=uuid.uuid4().hex,
        ).id

    results = _race(app, 12, book)
    booked = [r for r in results if isinstance(r, int)]
    taken = [r for r in results if isinstance(r, SlotTakenError)]
    assert len(booked) == 1, results
    assert len(taken) == 11, results
    assert active_bookings() == 1


def test_one_idempotency_key_sent_at_once_makes_one_booking(app, clinic):
    clinician, consultation_type = clinic
    key = booking_service.slot_key(TUESDAY_9AM, clinician.id)
    token = uuid.uuid4().hex

    def book(_i: int):
        return booking_service.book_slot(
            consultation_type_id=consultation_type.id,
            key=key,
            patient=patient(),
            idempotency_key=token,
        ).reference

    results = _race(app, 8, book)
    assert len(set(results)) == 1, results
    assert isinstance(results[0], str)
    assert active_bookings() == 1


def test_a_repeated_reference_is_drawn_again_not_reported_as_taken(app, clinic, monkeypatch):
    clinician, consultation_type = clinic
    first = booking_service.book_slot(
        consultation_type_id=consultation_type.id,
        key=booking_service.slot_key(TUESDAY_9AM, clinician.id),
        patient=patient(1),
        idempotency_key=uuid.uuid4().hex,
    )
    draws = iter([first.reference, "QRSTUV"])
    monkeypatch.setattr(booking_service, "new_reference", lambda: next(draws))
    second = booking_service.book_slot(
        consultation_type_id=consultation_type.id,
        key=booking_service.slot_key(TUESDAY_9AM + timedelta(hours=2), clinician.id),
        patient=patient(2),
        idempotency_key=uuid.uuid4().hex,
    )
    assert second.reference == "QRSTUV"
    assert active_bookings() == 2


def test_a_booking_that_fails_after_its_row_is_written_leaves_nothing_and_can_be_sent_again(
    clinic,
):
    """The console's audit callback runs after the booking row is written; when it fails the
    whole booking is undone, and the same form then books, reading like any stored booking
    (even while the failed attempt's booking object is still held, here by `audited`)."""
    clinician, consultation_type = clinic
    key = booking_service.slot_key(TUESDAY_9AM, clinician.id)
    form_key = uuid.uuid4().hex
    audited = []

    def failing_audit(booking: Booking) -> None:
        audited.append(booking)
        raise RuntimeError("the audit table is unavailable")

    with pytest.raises(RuntimeError):
        booking_service.book_slot(
            consultation_type_id=consultation_type.id,
            key=key,
            patient=patient(1),
            idempotency_key=form_key,
            on_created=failing_audit,
        )
    assert active_bookings() == 0
    booking = booking_service.book_slot(
        consultation_type_id=consultation_type.id,
        key=key,
        patient=patient(1),
        idempotency_key=form_key,
        on_created=audited.append,
    )
    assert len(audited) == 2
    assert audited[1] is booking
    assert active_bookings() == 1
    assert booking.clinician.name == clinician.name
    assert booking.consultation_type.name == consultation_type.name
    assert [event.kind for event in booking_history(booking.id)] == ["created"]
    assert len(outbox.messages_for_booking(booking.id)) == 3
