"""A schedule change and a booking never cross: the booking is judged by the schedule as
committed, not by a cached copy, and a schedule change waits for a booking in flight.

Other processes keep their schedule cache up to SCHEDULE_CACHE_SECONDS; here the cache is on
for minutes and the change is committed straight to the database, as another process's admin
would (which clears only its own process's caches). The patient's form was opened before the
change, so only the booking's re-check inside its write transaction can refuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time as wall_clock
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from booking_helpers import VALID_DETAILS, open_form
from sqlalchemy import create_engine, delete, func, select, text, update

from microsite.database import SCHEDULE_LOCK_NAMESPACE
from microsite.extensions import db
from microsite.models import Booking, Clinician, Closure, WorkingHours
from microsite.services import booking as booking_service
from microsite.services import schedule_admin
from microsite.services.errors import SlotNotBookableError

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _schedule_cached_for_minutes(app_config):
    app_config["SCHEDULE_CACHE_SECONDS"] = 600


def active_bookings() -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(Booking).where(Booking.status != "cancelled")
    )


def close_tuesday(clinician_id: int | None) -> None:
    db.session.add(
        Closure(
            clinician_id=clinician_id,
            starts_at=TUESDAY_9AM,
            ends_at=TUESDAY_9AM + 8 * HOUR,
            reason="Burst pipe",
        )
    )
    db.session.commit()


def close_the_week() -> None:
    """A closure that began days before the slot and ends days after it."""
    db.session.add(
        Closure(
            starts_at=TUESDAY_9AM - timedelta(days=3),
            ends_at=TUESDAY_9AM + timedelta(days=4),
            reason="Renovation",
        )
    )
    db.session.commit()


def commit(statement) -> None:
    db.session.execute(statement)
    db.session.commit()


# Each change turns Tuesday 11:00 unbookable; what the patient then sees.
CHANGES = {
    "closure for the clinician": (lambda c: close_tuesday(c.id), 422),
    "clinic-wide closure": (lambda c: close_tuesday(None), 422),
    "closure around the whole week": (lambda c: close_the_week(), 422),
    "hours removed": (
        lambda c: commit(
            delete(WorkingHours).where(WorkingHours.clinician_id == c.id, WorkingHours.weekday == 1)
        ),
        422,
    ),
    "clinician deactivated": (
        lambda c: commit(update(Clinician).where(Clinician.id == c.id).values(is_active=False)),
        422,
    ),
    # One booking already that day: a cap of one leaves no room (the "just taken" page).
    "cap lowered": (
        lambda c: commit(update(Clinician).where(Clinician.id == c.id).values(daily_cap=1)),
        409,
    ),
}
HEADINGS = {422: "Please choose another time", 409: "That time was just taken"}


@pytest.mark.parametrize("change", CHANGES)
def test_a_booking_with_a_stale_cached_schedule_is_refused_after_a_schedule_change(
    client, frozen_clock, make_clinician, make_consultation_type, make_booking, change
):
    clinician = make_clinician()
    consultation_type = make_consultation_type()
    make_booking(clinician, consultation_type, TUESDAY_9AM + 6 * HOUR)  # 15:00, far away
    key = booking_service.slot_key(TUESDAY_9AM + 2 * HOUR, clinician.id)
    response, hidden = open_form(client, consultation_type.id, key)  # caches the schedule
    assert response.status_code == 200
    assert hidden
    make_change, status = CHANGES[change]
    make_change(clinician)
    refused = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert refused.status_code == status
    assert HEADINGS[status] in refused.get_data(as_text=True)
    assert active_bookings() == 1  # only the one made before


def test_the_service_refuses_a_closed_time_despite_the_cache(
    frozen_clock, make_clinician, make_consultation_type
):
    clinician = make_clinician()
    consultation_type = make_consultation_type()
    start = TUESDAY_9AM + 2 * HOUR
    # The schedule is cached (the patient's slot list read it) ...
    booking_service.slot_problem(consultation_type, booking_service.slot_key(start, clinician.id))
    close_tuesday(clinician.id)  # ... then another process's admin closes the day.
    with pytest.raises(SlotNotBookableError, match="not one we offer"):
        booking_service.book_slot(
            consultation_type_id=consultation_type.id,
            key=booking_service.slot_key(start, clinician.id),
            patient=booking_service.PatientDetails(
                name="Pat",
                email="p@example.test",
                phone_e164="+12075550123",
                birth_date=date(1980, 1, 1),
            ),
            idempotency_key="stale-cache",
        )
    assert active_bookings() == 0


# --- PostgreSQL: a schedule change waits for the booking that holds the clinician's lock ------


def _wait_for_a_waiting_advisory_lock(other, give_up_after: float = 10.0) -> None:
    """Until some session waits for an advisory lock (the admin's change, blocked)."""
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    deadline = wall_clock.monotonic() + give_up_after
    while wall_clock.monotonic() < deadline:
        with other.connect() as conn:
            if conn.execute(waiting).scalar():
                return
        wall_clock.sleep(0.02)
    raise AssertionError("the schedule change never waited for the clinician's lock")


@pytest.mark.parametrize("clinic_wide", [False, True], ids=["clinician", "clinic"])
def test_a_closure_waits_for_a_booking_in_flight_and_then_sees_it(
    app,
    is_postgres,
    database_url,
    frozen_clock,
    make_clinician,
    make_consultation_type,
    clinic_wide,
):
    if not is_postgres:
        pytest.skip("advisory locks are PostgreSQL's; SQLite's write lock serialises writers")
    clinician = make_clinician()
    consultation_type = make_consultation_type()
    start = TUESDAY_9AM + 2 * HOUR
    other = create_engine(database_url)
    outcome: list[tuple[type | None, list[str]]] = []  # (error, references it named)

    def close_the_day() -> None:
        with app.app_context():
            try:
                schedule_admin.add_closure(
                    None if clinic_wide else clinician.id,
                    TUESDAY_9AM,
                    TUESDAY_9AM + 8 * HOUR,
                    reason="Burst pipe",
                    actor_account_id=None,
                )
                outcome.append((None, []))
            except BaseException as error:  # reported to the test below
                named = [b.reference for b in getattr(error, "bookings", [])]
                outcome.append((type(error), named))
            finally:
                db.session.remove()

    try:
        # A booking in flight in another process: it holds the clinician's schedule lock and
        # has written its row, not yet committed.
        with other.begin() as booking_tx:
            booking_tx.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :id)"),
                {"ns": SCHEDULE_LOCK_NAMESPACE, "id": clinician.id},
            )
            booking_tx.execute(
                text(
                    "INSERT INTO booking (uid, sequence, reference, status, clinician_id, "
                    "consultation_type_id, starts_at, ends_at, blocked_starts_at, "
                    "blocked_ends_at, patient_name, patient_email, patient_phone, "
                    "patient_birth_date, patient_note, created_at, updated_at) VALUES "
                    "('race@test', 0, 'RACE01', 'confirmed', :clinician, :type, :start, :end, "
                    ":start, :end, 'X', 'x@example.test', '+12075550123', '1980-01-01', '', "
                    ":start, :start)"
                ),
                {
                    "clinician": clinician.id,
                    "type": consultation_type.id,
                    "start": start,
                    "end": start + HOUR,
                },
            )
            admin = threading.Thread(target=close_the_day)
            admin.start()
            _wait_for_a_waiting_advisory_lock(other)
        # The booking committed; the admin's change now judges it.
        admin.join(timeout=30)
    finally:
        other.dispose()
    assert not admin.is_alive()
    # Refused with the booking that got in first, not applied over it unseen.
    assert outcome == [(schedule_admin.StrandedBookingsError, ["RACE01"])]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Closure)) == 0


# --- another process: its admin's change clears only its own caches ----------------------------

ADMIN_PROCESS = """
import json, os, sys
from datetime import datetime
from microsite import create_app
from microsite.services import schedule_admin
from microsite.services.errors import SlotNotBookableError

config = json.loads(os.environ["RACE_APP_CONFIG"])
with create_app(config).app_context():
    schedule_admin.add_closure(
        int(sys.argv[1]),
        datetime.fromisoformat(sys.argv[2]),
        datetime.fromisoformat(sys.argv[3]),
        reason="Burst pipe",
        actor_account_id=None,
    )
"""


def test_a_closure_made_in_another_process_refuses_a_booking_here(
    app_config, client, frozen_clock, make_clinician, make_consultation_type
):
    """Two real processes: this one (the patient's worker, its schedule cached for minutes) and
    an admin's, which commits a closure through the service and clears only its own caches."""
    clinician = make_clinician()
    consultation_type = make_consultation_type()
    key = booking_service.slot_key(TUESDAY_9AM + 2 * HOUR, clinician.id)
    response, hidden = open_form(client, consultation_type.id, key)
    assert response.status_code == 200
    assert hidden
    admin = subprocess.run(  # noqa: S603 - our own interpreter and script, no shell
        [
            sys.executable,
            "-c",
            ADMIN_PROCESS,
            str(clinician.id),
            TUESDAY_9AM.isoformat(),
            (TUESDAY_9AM + 8 * HOUR).isoformat(),
        ],
        env={**os.environ, "RACE_APP_CONFIG": json.dumps(app_config)},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert admin.returncode == 0, admin.stderr
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Closure)) == 1
    refused = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert refused.status_code == 422
    assert HEADINGS[422] in refused.get_data(as_text=True)
    assert active_bookings() == 0
