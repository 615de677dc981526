"""The audit trail: append-only, a row per view, export and change, no patient data."""

from __future__ import annotations

import ast
import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing
from tests_support import MONDAY_8AM_EST

from microsite.extensions import db
from microsite.models import AuditEvent
from microsite.services.audit import record_audit

MICROSITE = Path(__file__).resolve().parent.parent / "microsite"


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def audit_rows() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET action = 'nothing.happened'",
        "UPDATE audit_event SET detail = '' WHERE id = :id",
        "DELETE FROM audit_event",
        "DELETE FROM audit_event WHERE id = :id",
    ],
)
def test_the_database_refuses_to_change_or_delete_audit_rows(app, statement):
    record_audit(None, "test.row", detail="kept")
    row_id = audit_rows()[0].id
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement), {"id": row_id})
    assert [(r.action, r.detail) for r in audit_rows()] == [("test.row", "kept")]


def test_truncate_is_refused_on_postgresql(app, is_postgres):
    if not is_postgres:
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has none")
    record_audit(None, "test.row")
    with pytest.raises(DatabaseError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_event"))
    assert len(audit_rows()) == 1


def test_only_the_audit_service_writes_audit_rows():
    """No route or command touches the table except through `services/audit.py`, which adds."""
    users = []
    for path in MICROSITE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        if "AuditEvent" in names:
            users.append(path.relative_to(MICROSITE).as_posix())
    assert sorted(users) == ["models/__init__.py", "services/audit.py"]
    source = (MICROSITE / "services" / "audit.py").read_text(encoding="utf-8")
    assert "delete(" not in source
    assert "update(" not in source


@pytest.fixture
def booking(make_clinician, make_consultation_type, make_booking):
    return make_booking(
        make_clinician(),
        make_consultation_type(),
        MONDAY_8AM_EST - timedelta(hours=2),
        patient_name="Secret Name",
        patient_email="secret@example.test",
        patient_phone="+12025550199",
        patient_note="private words",
    )


def test_views_exports_and_changes_each_write_one_row(client, frozen_clock, booking):
    staff = create_staff(role="admin")
    quick_sign_in(client, staff)
    before = len(audit_rows())
    client.get(f"/staff/bookings/{booking.id}")
    client.get(f"/staff/bookings/{booking.id}/consultation.ics")
    client.get("/staff/export/?date_from=2026-11-29&date_to=2026-11-30")
    post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"status": "attended"},
        to=f"/staff/bookings/{booking.id}/attendance",
    )
    post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"body": "called back"},
        to=f"/staff/bookings/{booking.id}/notes",
    )
    client.get("/staff/day/2026-11-30/sheet")
    new = audit_rows()[before:]
    actions = [(r.action, r.booking_id) for r in new]
    # Each POST redirects to the detail page, which is itself a view of the booking.
    assert actions == [
        ("booking.viewed", booking.id),
        ("booking.ics_downloaded", booking.id),
        ("bookings.exported", None),
        ("booking.viewed", booking.id),
        ("booking.attendance", booking.id),
        ("booking.viewed", booking.id),
        ("booking.note_added", booking.id),
        ("daysheet.viewed", None),
    ]
    assert all(r.actor_account_id == staff.id for r in new)
    assert new[2].detail == "2026-11-29..2026-11-30, 1 rows"
    assert new[4].detail == "confirmed -> attended"


def test_no_patient_data_in_any_audit_row(client, frozen_clock, booking):
    quick_sign_in(client, create_staff(role="admin"))
    client.get(f"/staff/bookings/{booking.id}")
    post_form(client, "/staff/bookings/", {"q": "Secret Name"})
    post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"body": "private staff words"},
        to=f"/staff/bookings/{booking.id}/notes",
    )
    client.get("/staff/export/?date_from=2026-11-29&date_to=2026-11-30")
    everything = " ".join(f"{r.action} {r.detail}" for r in audit_rows())
    for secret in ("Secret", "secret@", "5550199", "private", "1980"):
        assert secret not in everything
    assert "searched" in everything


def test_admins_filter_and_export_the_audit_trail(client, frozen_clock, booking):
    admin = create_staff(role="admin")
    record_audit(None, "account.created", detail="account 99")
    frozen_clock.advance(timedelta(days=1))
    quick_sign_in(client, admin)
    client.get(f"/staff/bookings/{booking.id}")
    page = client.get(f"/staff/audit/?booking={booking.id}")
    assert page.status_code == 200
    assert "<td>booking.viewed</td>" in page.text
    assert "<td>account.created</td>" not in page.text
    by_cli = client.get("/staff/audit/?actor=cli&action=account.created").text
    assert "<td>account 99</td>" in by_cli
    assert "<td>booking.viewed</td>" not in by_cli
    by_day = client.get("/staff/audit/?date_from=2026-11-30&date_to=2026-11-30").text
    assert "<td>account 99</td>" in by_day
    assert "<td>booking.viewed</td>" not in by_day
    assert client.get("/staff/audit/?date_from=yesterday").status_code == 422

    export = client.get(f"/staff/audit/export.csv?actor={admin.id}")
    assert export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.data.decode("utf-8-sig"))))
    assert rows[0] == ["When", "Who", "Account id", "Action", "Booking id", "Detail"]
    assert {r[1] for r in rows[1:]} == {"Dana Desk"}
    assert ["booking.viewed", str(booking.id)] in [[r[3], r[4]] for r in rows[1:]]
    assert audit_rows()[-1].action == "audit.exported"
