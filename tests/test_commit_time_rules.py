"""Every rule the engine checks holds when the booking is written, not only in the slot list.

Each case books a time that only one rule forbids (a neighbour's buffer, the daily cap, a
closure) straight through `book_slot` and through the form, never through the list: the
refusal must come from the booking-time re-check or the database. Also: the buffered span is
stored and guarded by the database, cancellations clear the slot cache, SQL errors hide their
parameters, and PostgreSQL's schedule lock really excludes a second writer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from booking_helpers import VALID_DETAILS, open_form
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError
from test_booking_guarantee import insert_raw

from microsite import create_app
from microsite.database import SCHEDULE_LOCK_NAMESPACE, lock_clinician_schedules
from microsite.extensions import db
from microsite.models import Booking, Closure
from microsite.services import booking as booking_service
from microsite.services.errors import SlotNotBookableError, SlotTakenError

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST
HOUR = timedelta(hours=1)


def patient(n: int = 0) -> booking_service.PatientDetails:
    return booking_service.PatientDetails(
        name=f"Patient {n}",
        email=f"p{n}@example.test",
        phone_e164="+12075550123",
        birth_date=date(1980, 1, 1),
    )


def book(consultation_type, clinician_id: int | None, start: datetime, n: int = 0):
    return booking_service.book_slot(
        consultation_type_id=consultation_type.id,
        key=booking_service.slot_key(start, clinician_id),
        patient=patient(n),
        idempotency_key=uuid.uuid4().hex,
    )


def form_then_post(client, type_id: int, key: str, meanwhile):
    """Open the form while the time is free, let `meanwhile()` block it, then send the form."""
    response, hidden = open_form(client, type_id, key)
    assert response.status_code == 200
    assert hidden
    meanwhile()
    return client.post("/book/details", data={**hidden, **VALID_DETAILS})


def stored_bookings() -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(Booking).where(Booking.status != "cancelled")
    )


@pytest.fixture
def buffered(frozen_clock, make_clinician, make_consultation_type):
    """A clinician and a 60-minute type with 30 minutes' buffer after each consultation."""
    return make_clinician(), make_consultation_type(buffer_after_minutes=30)


# --- a neighbour's buffer --------------------------------------------------------------------


def test_a_time_blocked_only_by_a_neighbours_buffer_is_refused_by_the_service(
    buffered, make_booking
):
    clinician, consultation_type = buffered
    make_booking(clinician, consultation_type, TUESDAY_9AM)  # 9:00-10:00, held to 10:30
    with pytest.raises(SlotTakenError):
        book(consultation_type, clinician.id, TUESDAY_9AM + HOUR)  # 10:00: inside the buffer
    assert stored_bookings() == 1
    # Just past the buffer is fine: the rule is the buffer, not "no neighbours".
    book(consultation_type, clinician.id, TUESDAY_9AM + HOUR + timedelta(minutes=30))
    assert stored_bookings() == 2


def test_a_time_blocked_only_by_a_neighbours_buffer_is_refused_by_the_form(
    buffered, make_booking, client
):
    clinician, consultation_type = buffered
    key = booking_service.slot_key(TUESDAY_9AM + HOUR, clinician.id)
    response = form_then_post(
        client,
        consultation_type.id,
        key,
        lambda: make_booking(clinician, consultation_type, TUESDAY_9AM),
    )
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)
    assert stored_bookings() == 1


def test_any_clinician_skips_the_one_held_by_a_buffer(
    frozen_clock, make_clinician, make_consultation_type, make_booking
):
    """The re-check must see the neighbour (BOOKED_MARGIN): else it picks the held clinician
    and the database refuses, telling the patient "taken" while another clinician is free."""
    held = make_clinician(name="Dr. Held", display_order=0)
    free = make_clinician(name="Dr. Free", display_order=1)
    consultation_type = make_consultation_type(buffer_after_minutes=30)
    make_booking(held, consultation_type, TUESDAY_9AM)
    booking = book(consultation_type, None, TUESDAY_9AM + HOUR)
    assert booking.clinician_id == free.id


def test_the_new_slots_own_buffer_counts_against_the_next_booking(
    frozen_clock, make_clinician, make_consultation_type, make_booking
):
    clinician = make_clinician()
    plain = make_consultation_type()
    padded = make_consultation_type(buffer_after_minutes=30)
    make_booking(clinician, plain, TUESDAY_9AM + HOUR + timedelta(minutes=15))  # 10:15-11:15
    with pytest.raises(SlotTakenError):
        book(padded, clinician.id, TUESDAY_9AM)  # 9:00-10:00 + 30 min reaches 10:30
    assert stored_bookings() == 1


# --- the daily cap ----------------------------------------------------------------------------


def test_a_time_blocked_only_by_the_daily_cap_is_refused_by_the_service(
    frozen_clock, make_clinician, make_consultation_type, make_booking
):
    clinician = make_clinician(daily_cap=2)
    consultation_type = make_consultation_type()
    make_booking(clinician, consultation_type, TUESDAY_9AM)
    make_booking(clinician, consultation_type, TUESDAY_9AM + HOUR)
    with pytest.raises(SlotTakenError):
        book(consultation_type, clinician.id, TUESDAY_9AM + 6 * HOUR)  # 15:00, far from both
    assert stored_bookings() == 2
    book(consultation_type, clinician.id, TUESDAY_9AM + 24 * HOUR)  # Wednesday: a new day
    assert stored_bookings() == 3


def test_a_time_blocked_only_by_the_daily_cap_is_refused_by_the_form(
    frozen_clock, make_clinician, make_consultation_type, make_booking, client
):
    clinician = make_clinician(daily_cap=1)
    consultation_type = make_consultation_type()
    key = booking_service.slot_key(TUESDAY_9AM + 6 * HOUR, clinician.id)
    response = form_then_post(
        client,
        consultation_type.id,
        key,
        lambda: make_booking(clinician, consultation_type, TUESDAY_9AM),
    )
    assert response.status_code == 409
    assert stored_bookings() == 1


def test_any_clinician_under_the_cap_takes_the_booking(
    frozen_clock, make_clinician, make_consultation_type, make_booking
):
    full = make_clinician(name="Dr. Full", daily_cap=1, display_order=0)
    free = make_clinician(name="Dr. Free", display_order=1)
    consultation_type = make_consultation_type()
    make_booking(full, consultation_type, TUESDAY_9AM)
    booking = book(consultation_type, None, TUESDAY_9AM + 6 * HOUR)
    assert booking.clinician_id == free.id


# --- closures ---------------------------------------------------------------------------------


def test_a_time_blocked_only_by_a_closure_is_refused_by_the_service_and_the_form(
    frozen_clock, make_clinician, make_consultation_type, client
):
    clinician = make_clinician()
    consultation_type = make_consultation_type()

    def close_the_day() -> None:
        db.session.add(
            Closure(
                clinician_id=clinician.id,
                starts_at=TUESDAY_9AM,
                ends_at=TUESDAY_9AM + 8 * HOUR,
                reason="Training",
            )
        )
        db.session.commit()

    key = booking_service.slot_key(TUESDAY_9AM + 2 * HOUR, clinician.id)
    response = form_then_post(client, consultation_type.id, key, close_the_day)
    assert response.status_code == 422
    assert "not one we offer" in response.get_data(as_text=True)
    with pytest.raises(SlotNotBookableError):
        book(consultation_type, clinician.id, TUESDAY_9AM + 3 * HOUR)
    assert stored_bookings() == 0


# --- the database guard over buffered spans ---------------------------------------------------


def test_a_booking_stores_its_buffered_span(buffered):
    clinician, consultation_type = buffered
    booking = book(consultation_type, clinician.id, TUESDAY_9AM)
    db.session.expire_all()
    stored = db.session.get(Booking, booking.id)
    assert stored.blocked_starts_at == TUESDAY_9AM
    assert stored.blocked_ends_at == TUESDAY_9AM + HOUR + timedelta(minutes=30)


def test_the_database_refuses_overlapping_buffered_spans(buffered, is_postgres):
    clinician, consultation_type = buffered
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM, after=30)
    with pytest.raises(IntegrityError) as refused:
        # The appointments do not overlap (10:00 starts as 9:00 ends); the spans do.
        insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM + HOUR)
    db.session.rollback()
    assert ("ex_booking_no_overlap" if is_postgres else "booking_overlap") in str(refused.value)
    insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM + HOUR + timedelta(minutes=30))
    assert stored_bookings() == 2


def test_the_database_refuses_a_buffered_span_that_does_not_hold_the_appointment(buffered):
    clinician, consultation_type = buffered
    with pytest.raises(IntegrityError):
        insert_raw(clinician.id, consultation_type.id, TUESDAY_9AM, before=-30)
    db.session.rollback()
    assert stored_bookings() == 0


def test_moving_a_booking_moves_its_buffered_span(buffered, make_booking):
    clinician, consultation_type = buffered
    booking = make_booking(clinician, consultation_type, TUESDAY_9AM)
    booking.starts_at, booking.ends_at = TUESDAY_9AM + 3 * HOUR, TUESDAY_9AM + 4 * HOUR
    db.session.commit()
    assert booking.blocked_ends_at == TUESDAY_9AM + 4 * HOUR + timedelta(minutes=30)
    book(consultation_type, clinician.id, TUESDAY_9AM)  # the old time is free again


@pytest.mark.postgres
def test_the_schedule_lock_holds_a_second_writer_until_commit(
    is_postgres, database_url, make_clinician
):
    if not is_postgres:
        pytest.skip("advisory locks are PostgreSQL's; SQLite's write lock serialises writers")
    clinician = make_clinician()
    other = create_engine(database_url)
    probe = text("SELECT pg_try_advisory_xact_lock(:ns, :id)")
    params = {"ns": SCHEDULE_LOCK_NAMESPACE, "id": clinician.id}
    try:
        lock_clinician_schedules([clinician.id])
        with other.connect() as conn:
            assert conn.execute(probe, params).scalar() is False
            conn.rollback()
        db.session.commit()
        with other.connect() as conn:
            assert conn.execute(probe, params).scalar() is True
            conn.rollback()
    finally:
        other.dispose()


# --- caches and error messages ----------------------------------------------------------------


def test_a_cancellation_clears_the_slot_cache(app_config, frozen_clock):
    app_config["SLOT_CACHE_SECONDS"] = 60
    cached = create_app(app_config)
    with cached.app_context():
        from microsite.models import Clinician, ConsultationType, WorkingHours

        clinician = Clinician(name="Dr. Cache", email="c@example.test")
        clinician.weekly_hours = [WorkingHours(weekday=1, start_time=time(9), end_time=time(17))]
        consultation_type = ConsultationType(
            slug="cache", name="Consultation", mode="in_person", duration_minutes=60
        )
        db.session.add_all([clinician, consultation_type])
        db.session.commit()
        booking = book(consultation_type, clinician.id, TUESDAY_9AM)
        client = cached.test_client()
        url = f"/api/slots?type={consultation_type.id}&from=2026-12-01&days=1"

        def starts() -> list[str]:
            return [slot["start"] for slot in client.get(url).get_json()["slots"]]

        assert "2026-12-01T14:00:00Z" not in starts()  # now cached for a minute
        booking_service.cancel_booking(booking.reference)
        assert "2026-12-01T14:00:00Z" in starts()
        db.session.remove()


def test_sql_errors_hide_their_parameters(buffered, make_booking):
    """A database error (logged, maybe shown in a traceback) never carries what was typed."""
    clinician, consultation_type = buffered
    make_booking(clinician, consultation_type, TUESDAY_9AM, reference="SAMEREF")
    with pytest.raises(IntegrityError) as refused:
        make_booking(
            clinician,
            consultation_type,
            TUESDAY_9AM + 3 * HOUR,
            reference="SAMEREF",
            patient_name="Secret Name Of A Patient",
            patient_email="secret.patient@example.test",
        )
    db.session.rollback()
    message = str(refused.value)
    assert "parameters hidden" in message
    assert "Secret Name" not in message
    assert "secret.patient" not in message


def test_migration_0006_backfills_spans_and_downgrades_to_the_plain_guard(database_url):
    from flask_migrate import downgrade, upgrade
    from tests_support import throwaway_database

    def dt(instant: datetime) -> str:
        offset = "+00:00" if database_url.startswith("postgresql") else ""
        return instant.strftime("%Y-%m-%d %H:%M:%S.%f") + offset

    booking_sql = text(
        "INSERT INTO booking (uid, sequence, reference, status, clinician_id, "
        "consultation_type_id, starts_at, ends_at, patient_name, patient_email, "
        "patient_phone, patient_birth_date, patient_note, created_at, updated_at) "
        "VALUES (:uid, 0, :uid, 'confirmed', 1, 1, :start, :end, 'X', 'x@example.test', "
        "'+12075550123', '1980-01-01', '', :start, :start)"
    )
    with throwaway_database(database_url) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade(revision="0002")
            with db.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO clinician (id, name, email, is_active, display_order) "
                        "VALUES (1, 'Dr. Old', 'old@example.test', true, 0)"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO consultation_type (id, slug, name, mode, description, "
                        "duration_minutes, buffer_before_minutes, buffer_after_minutes, "
                        "min_notice_minutes, horizon_days, slot_interval_minutes, is_active, "
                        "display_order) VALUES (1, 'old', 'Old', 'video', '', 60, 15, 30, 0, "
                        "60, 30, true, 0)"
                    )
                )
                conn.execute(
                    booking_sql,
                    {"uid": "A1", "start": dt(TUESDAY_9AM), "end": dt(TUESDAY_9AM + HOUR)},
                )
            upgrade(revision="0006")
            with db.engine.connect() as conn:
                span = conn.execute(
                    select(Booking.blocked_starts_at, Booking.blocked_ends_at)
                ).one()
            assert span == (
                TUESDAY_9AM - timedelta(minutes=15),
                TUESDAY_9AM + HOUR + timedelta(minutes=30),
            )
            downgrade(revision="0002")
            later = TUESDAY_9AM + timedelta(minutes=30)
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                conn.execute(
                    booking_sql, {"uid": "B2", "start": dt(later), "end": dt(later + HOUR)}
                )
            db.engine.dispose()
