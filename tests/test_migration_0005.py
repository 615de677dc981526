"""Migration 0005 on a database with bookings: statuses widen, the overlap guard survives."""

from __future__ import annotations

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from tests_support import throwaway_database

from microsite import create_app
from microsite.extensions import db

CLINICIAN = (
    "INSERT INTO clinician (id, name, email, is_active, display_order) "
    "VALUES (1, 'C', 'c@x', true, 0)"
)
TYPE = (
    "INSERT INTO consultation_type (id, slug, name, mode, description, duration_minutes, "
    "buffer_before_minutes, buffer_after_minutes, min_notice_minutes, horizon_days, "
    "slot_interval_minutes, is_active, display_order) "
    "VALUES (1, 't', 'T', 'video', '', 60, 0, 0, 0, 60, 30, true, 0)"
)
BOOKING = (
    "INSERT INTO booking (id, uid, sequence, reference, status, clinician_id, "
    "consultation_type_id, starts_at, ends_at, patient_name, patient_email, patient_phone, "
    "patient_birth_date, patient_note, created_at, updated_at) VALUES "
    "(:id, :uid, 0, :ref, :status, 1, 1, :start, :end, 'P', 'p@x', '+1', '1980-01-01', '', "
    "'2026-11-01 00:00:00', '2026-11-01 00:00:00')"
)


def insert_booking(conn, booking_id, start, end, status="confirmed"):
    conn.execute(
        text(BOOKING),
        {
            "id": booking_id,
            "uid": f"u{booking_id}",
            "ref": f"R{booking_id}",
            "status": status,
            "start": start,
            "end": end,
        },
    )


def test_upgrade_keeps_bookings_their_history_and_the_overlap_guard(database_url):
    with throwaway_database(database_url) as url:
        app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade(revision="0002")
            with db.engine.begin() as conn:
                conn.execute(text(CLINICIAN))
                conn.execute(text(TYPE))
                insert_booking(conn, 1, "2026-12-01 14:00:00", "2026-12-01 15:00:00")
                conn.execute(
                    text(
                        "INSERT INTO booking_event (booking_id, kind, actor, at, detail) "
                        "VALUES (1, 'created', 'patient', '2026-11-01 00:00:00', '')"
                    )
                )
            upgrade(revision="0005")
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE booking SET status = 'attended' WHERE id = 1"))
                assert conn.execute(text("SELECT count(*) FROM booking_event")).scalar() == 1
            # An attended booking still holds the time: an overlap is refused.
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                insert_booking(conn, 2, "2026-12-01 14:30:00", "2026-12-01 15:30:00")
            with pytest.raises(IntegrityError), db.engine.begin() as conn:
                insert_booking(conn, 3, "2026-12-01 16:00:00", "2026-12-01 17:00:00", "lost")
            downgrade(revision="0002")
            with db.engine.begin() as conn:
                status = conn.execute(text("SELECT status FROM booking WHERE id = 1")).scalar()
            assert status == "confirmed"
            db.engine.dispose()
