"""Databases for the HTTP benchmarks, built with the real commands and services.

Each database is migrated by `flask db upgrade` in its own process, like a deployment; the rows
are then written from this process through the app's models and booking service.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic as time_now
from time import sleep
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import create_engine, func, select

from microsite import create_app
from microsite.extensions import db
from microsite.models import Booking, Clinician, ConsultationType, WorkingHours
from tests.live_server import CLINIC_TIMEZONE, SECRET_KEY, app_env, migrate, run_flask

SEED = 20260202
DEMO_TYPE_SLUG = "initial-in-person"
SETTLE_LIMIT_S = 60
DEMO_BOOKED_DAYS = 14
# Every sixth free slot booked: the engine has bookings to step around, and times stay free.
DEMO_BOOKING_STRIDE = 6
# The booking benchmark's clinic: enough distinct slots that no run can use them all.
BOOKING_CLINICIANS = 200
BOOKING_DAYS = range(1, 30)  # tomorrow .. 29 days ahead, inside the 30-day horizon
BOOKING_DAY_HOURS = (time(7), time(21))
BOOKING_MINUTES = 30
PATIENT = {
    "full_name": "Bench Patient",
    "email": "bench.patient@example.com",
    "phone": "(207) 555-0123",
    "birth_date-month": "05",
    "birth_date-day": "06",
    "birth_date-year": "1984",
    "note": "",
    "consent_privacy": "y",
    "ack_not_emergency": "y",
}


@contextmanager
def app_for(database_uri: str) -> Iterator[Flask]:
    """The app in this process, on that database, inside an app context."""
    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            # The demo patient holds many bookings; the clinic's one-per-patient rule is off.
            "MAX_UPCOMING_PER_PATIENT": 0,
        }
    )
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


@dataclass(frozen=True)
class DemoData:
    type_id: int
    clinicians: int
    bookings: int


def demo_database(database_uri: str) -> DemoData:
    """`flask seed-demo`, then every sixth free slot of each clinician booked for two weeks."""
    migrate(database_uri)
    run_flask(["seed-demo"], app_env(database_uri))
    from microsite.services import booking as booking_service
    from microsite.services import schedule as schedule_service
    from microsite.services.errors import BookingError

    with app_for(database_uri):
        consultation_type = db.session.scalars(
            select(ConsultationType).where(ConsultationType.slug == DEMO_TYPE_SLUG)
        ).one()
        today = datetime.now(ZoneInfo(CLINIC_TIMEZONE)).date()
        clinician_ids = list(schedule_service.clinician_names())
        patient = booking_service.PatientDetails(
            name="Demo Patient",
            email="demo.patient@example.com",
            phone_e164="+12075550123",
            birth_date=date(1984, 5, 6),
        )
        for clinician_id in clinician_ids:
            slots = schedule_service.free_slots(
                consultation_type, today, DEMO_BOOKED_DAYS, clinician_id
            )
            for slot in slots[::DEMO_BOOKING_STRIDE]:
                try:
                    booking_service.book_slot(
                        consultation_type_id=consultation_type.id,
                        key=booking_service.slot_key(slot.start, clinician_id),
                        patient=patient,
                        idempotency_key=uuid.uuid4().hex,
                    )
                except BookingError:
                    continue  # an earlier booking's buffer covers it: fine for a demo
        bookings = db.session.scalar(select(func.count()).select_from(Booking))
        return DemoData(consultation_type.id, len(clinician_ids), bookings)


@dataclass(frozen=True)
class BookingClinic:
    type_id: int
    clinician_ids: list[int]
    start_keys: list[str]  # "YYYYMMDDTHHMMZ", shuffled so bookings spread over the month

    @property
    def slots(self) -> int:
        return len(self.clinician_ids) * len(self.start_keys)


def booking_database(database_uri: str) -> BookingClinic:
    """200 clinicians working 07:00-21:00 every day; a 30-minute type on a 30-minute grid."""
    migrate(database_uri)
    with app_for(database_uri):
        consultation_type = ConsultationType(
            slug="bench-follow-up",
            name="Follow-up — video",
            mode="video",
            duration_minutes=BOOKING_MINUTES,
            slot_interval_minutes=BOOKING_MINUTES,
            min_notice_minutes=0,
            horizon_days=30,
        )
        opens, closes = BOOKING_DAY_HOURS
        clinicians = []
        for n in range(BOOKING_CLINICIANS):
            clinician = Clinician(name=f"Dr. Bench {n}", email=f"bench{n}@example.test")
            clinician.weekly_hours = [
                WorkingHours(weekday=day, start_time=opens, end_time=closes) for day in range(7)
            ]
            clinicians.append(clinician)
        db.session.add_all([consultation_type, *clinicians])
        db.session.commit()
        clinic = BookingClinic(
            consultation_type.id, [c.id for c in clinicians], _start_keys(CLINIC_TIMEZONE)
        )
    return clinic


def _start_keys(zone_name: str) -> list[str]:
    zone = ZoneInfo(zone_name)
    today = datetime.now(zone).date()
    first, last = BOOKING_DAY_HOURS
    keys = []
    for offset in BOOKING_DAYS:
        day = today + timedelta(days=offset)
        at = datetime.combine(day, first, tzinfo=zone)
        while at.time() < last:
            keys.append(at.astimezone(UTC).strftime("%Y%m%dT%H%MZ"))
            at += timedelta(minutes=BOOKING_MINUTES)
    random.Random(SEED).shuffle(keys)
    return keys


def settled_booking_count(database_uri: str, type_id: int, quiet_s: float = 1.0) -> int:
    """Bookings of a type once none has been added for `quiet_s` (queued requests drained)."""
    engine = create_engine(database_uri)
    query = select(func.count()).where(Booking.consultation_type_id == type_id)
    try:
        deadline = time_now() + SETTLE_LIMIT_S
        with engine.connect() as conn:
            count = conn.scalar(query)
            while time_now() < deadline:
                sleep(quiet_s)
                conn.rollback()  # a fresh snapshot for the next count
                latest = conn.scalar(query)
                if latest == count:
                    return count
                count = latest
        raise RuntimeError(f"bookings still being written after {SETTLE_LIMIT_S} s")
    finally:
        engine.dispose()
