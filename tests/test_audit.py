"""The audit trail: append-only, a row per view, export and change, no patient data."""

from __future__ import annotations

import ast
import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DatabaseError
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing
from tests_support import MONDAY_8AM_EST, csrf_token

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
        ("bookings.exported", booking.id),
        ("booking.viewed", booking.id),
        ("booking.attendance", booking.id),
        ("booking.viewed", booking.id),
        ("booking.note_added", booking.id),
        ("daysheet.viewed", booking.id),
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


# --- which bookings a page showed ----------------------------------------------------------


@pytest.fixture
def three_bookings(make_clinician, make_consultation_type, make_booking):
    """Two bookings on Monday 30 November, one on Wednesday 2 December (another day)."""
    clinician, kind = make_clinician(), make_consultation_type()
    monday = [make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=h)) for h in (2, 4)]
    wednesday = make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(days=2, hours=2))
    return monday, wednesday


MONDAY = {"date_from": "2026-11-30", "date_to": "2026-11-30"}
# (action, method, URL, form): the pages and exports that show many bookings at once.
MONDAY_PAGES = [
    ("calendar.day", "GET", "/staff/day/2026-11-30", None),
    ("daysheet.viewed", "GET", "/staff/day/2026-11-30/sheet", None),
    ("bookings.exported", "GET", "/staff/export/", MONDAY),
    ("bookings.listed", "POST", "/staff/bookings/", MONDAY),
]


@pytest.mark.parametrize(
    ("action", "method", "url", "form"), MONDAY_PAGES, ids=[p[0] for p in MONDAY_PAGES]
)
def test_a_page_of_bookings_audits_each_booking_it_showed(
    client, frozen_clock, three_bookings, action, method, url, form
):
    """ "Who saw patient X's booking?" must be answerable for lists, grids, sheets and CSVs."""
    (first, second), wednesday = three_bookings
    quick_sign_in(client, create_staff(role="admin"))
    if method == "POST":
        form = {**form, "csrf_token": csrf_token(client.get(url).text)}
    before = len(audit_rows())
    response = client.open(
        url, method=method, **({"data": form} if method == "POST" else {"query_string": form})
    )
    assert response.status_code == 200
    new = audit_rows()[before:]
    assert [r.action for r in new] == [action, action]
    assert sorted(r.booking_id for r in new) == sorted([first.id, second.id])
    assert wednesday.id not in {r.booking_id for r in new}


def test_the_week_view_audits_every_booking_of_the_week(client, frozen_clock, three_bookings):
    (first, second), wednesday = three_bookings
    quick_sign_in(client, create_staff(role="admin"))
    assert client.get("/staff/week/2026-11-30").status_code == 200
    shown = {r.booking_id for r in audit_rows() if r.action == "calendar.week"}
    assert shown == {first.id, second.id, wednesday.id}


def test_an_empty_page_is_still_audited_once(client, frozen_clock, three_bookings):
    quick_sign_in(client, create_staff(role="admin"))
    client.get("/staff/day/2026-12-25")
    rows = [r for r in audit_rows() if r.action == "calendar.day"]
    assert [(r.booking_id, r.detail) for r in rows] == [(None, "2026-12-25")]


def test_a_page_of_bookings_writes_its_audit_in_one_statement(
    app, client, frozen_clock, three_bookings
):
    quick_sign_in(client, create_staff(role="admin"))
    inserts = []

    def count(_conn, _cursor, statement, _params, _context, _executemany):
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/staff/week/2026-11-30")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    assert len([r for r in audit_rows() if r.action == "calendar.week"]) == 3


def test_the_admins_audit_filter_and_export_find_who_saw_a_booking(
    client, frozen_clock, three_bookings
):
    (first, _second), wednesday = three_bookings
    desk = create_staff(name="Dana Desk", email="desk@clinic.test", role="frontdesk")
    quick_sign_in(client, desk)
    client.get("/staff/day/2026-11-30")
    client.get("/staff/export/?date_from=2026-11-30&date_to=2026-11-30")
    admin = create_staff(name="Ada Admin", email="ada@clinic.test", role="admin")
    quick_sign_in(client, admin)
    page = client.get(f"/staff/audit/?booking={first.id}").text
    assert "<td>calendar.day</td>" in page
    assert "<td>bookings.exported</td>" in page
    assert "Dana Desk" in page
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(f"/staff/audit/export.csv?booking={first.id}").data.decode("utf-8-sig")
            )
        )
    )
    assert {(r[1], r[3], r[4]) for r in rows[1:]} == {
        ("Dana Desk", "calendar.day", str(first.id)),
        ("Dana Desk", "bookings.exported", str(first.id)),
    }
    nobody = client.get(f"/staff/audit/?booking={wednesday.id}").text
    assert "<td>calendar.day</td>" not in nobody
