"""Shared fixtures: a migrated database (SQLite or PostgreSQL), app, client, frozen clock.

Set MICROSITE_TEST_DATABASE_URL to a PostgreSQL server URL (an admin database such as
postgresql+psycopg://postgres@127.0.0.1:5432/postgres): the suite then creates a throwaway
database for the run, migrates it, and drops it afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import pytest
from flask import g
from flask_migrate import upgrade
from tests_support import (
    APPEND_ONLY_TABLES,
    MONDAY_8AM_EST,
    PG_ADMIN_URL,
    create_pg_database,
    drop_pg_database,
    empty_append_only_table,
)

from microsite import clock, create_app
from microsite.extensions import db
from microsite.models import Booking, Clinician, ConsultationType, WorkingHours


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """One migrated database for the whole run; tests empty its tables after themselves."""
    if PG_ADMIN_URL:
        url, name = create_pg_database(PG_ADMIN_URL)
    else:
        url, name = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}", None
    app = create_app(base_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield url
    if name:
        drop_pg_database(PG_ADMIN_URL, name)


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


def base_config(database_url: str, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SERVER_NAME": None,
        "BOOKING_MIN_FILL_SECONDS": 0,
        # Tests insert bookings behind the app's back; test_availability_cache covers caching.
        "SLOT_CACHE_SECONDS": 0,
        # No sender thread unless a test asks for one (tests/test_outbox.py does).
        "MAIL_SEND_IN_BACKGROUND": False,
        # The test client's Host is "localhost"; live servers are asked as 127.0.0.1.
        "TRUSTED_HOSTS": ["localhost", "127.0.0.1"],
        # Abuse limits off and no per-patient limit (tests book one patient many times);
        # tests/test_abuse_limits.py turns them on for itself.
        "RATELIMIT_ENABLED": False,
        "MAX_UPCOMING_PER_PATIENT": 0,
        # ... and clinicians, hours and types too; test_speed_caches covers that cache.
        "SCHEDULE_CACHE_SECONDS": 0,
    }
    config.update(overrides)
    return config


@pytest.fixture
def app_config(database_url) -> dict:
    """Override keys in a test with `app_config.update(...)` before using `app`."""
    return base_config(database_url)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)

    # The fixture keeps one app context open for the test's own database access, and Flask
    # reuses it for every request, so `g` (CSRF token, CSP nonce, request id) would leak from
    # one request to the next, even between two patients' clients. Real requests each get a
    # fresh `g`; give the test requests one too.
    @app.teardown_request
    def _fresh_g(_error):
        vars(g).clear()

    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            if table.name in APPEND_ONLY_TABLES:
                empty_append_only_table(conn, table.name)
            else:
                conn.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


class FrozenClock:
    """Stands in for `microsite.clock.now`; moves only when a test moves it."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def __call__(self) -> datetime:
        return self.instant

    def set(self, instant: datetime) -> None:
        self.instant = instant

    def advance(self, delta: timedelta) -> None:
        self.instant += delta


@pytest.fixture
def frozen_clock(monkeypatch) -> FrozenClock:
    fake = FrozenClock(MONDAY_8AM_EST)
    monkeypatch.setattr(clock, "now", fake)
    return fake


# --- factories ---------------------------------------------------------------------------------


@pytest.fixture
def make_clinician(app):
    def make(**overrides) -> Clinician:
        fields = {
            "name": "Dr. Test Clinician",
            "email": "clinician@example.test",
            "daily_cap": None,
        }
        fields.update(overrides)
        hours = fields.pop("hours", [(weekday, time(9), time(17)) for weekday in range(5)])
        clinician = Clinician(**fields)
        clinician.weekly_hours = [
            WorkingHours(weekday=w, start_time=start, end_time=end) for w, start, end in hours
        ]
        db.session.add(clinician)
        db.session.commit()
        return clinician

    return make


@pytest.fixture
def make_consultation_type(app):
    def make(**overrides) -> ConsultationType:
        fields = {
            "slug": f"type-{uuid.uuid4().hex[:6]}",
            "name": "Initial consultation — in person",
            "mode": "in_person",
            "duration_minutes": 60,
            "slot_interval_minutes": 30,
            "min_notice_minutes": 12 * 60,
            "horizon_days": 60,
        }
        fields.update(overrides)
        consultation_type = ConsultationType(**fields)
        db.session.add(consultation_type)
        db.session.commit()
        return consultation_type

    return make


@pytest.fixture
def make_booking(app):
    """Insert a booking directly (bypassing the service), e.g. to fill a clinician's day."""

    def make(clinician, consultation_type, starts_at: datetime, **overrides) -> Booking:
        fields = {
            "uid": f"{uuid.uuid4()}@test",
            "reference": uuid.uuid4().hex[:6].upper(),
            "clinician_id": clinician.id,
            "consultation_type_id": consultation_type.id,
            "starts_at": starts_at,
            "ends_at": starts_at + consultation_type.duration,
            "patient_name": "Pat Example",
            "patient_email": "pat@example.test",
            "patient_phone": "+12025550143",
            "patient_birth_date": date(1980, 1, 2),
        }
        fields.update(overrides)
        booking = Booking(**fields)
        db.session.add(booking)
        db.session.commit()
        return booking

    return make
