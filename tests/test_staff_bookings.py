"""The console's booking pages: calendar grids, list and search, detail, attendance, notes,
the .ics download, the CSV export and the day sheet; patient markup is text everywhere."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from icalendar import Calendar
from staff_support import create_staff, post_form, quick_sign_in, use_fast_hashing
from tests_support import MONDAY_8AM_EST

from microsite.csv_export import safe_cell
from microsite.extensions import db
from microsite.models import Booking, BookingEvent
from microsite.services.booking import cancel_booking
from microsite.services.schedule import load_booked

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def desk(client, frozen_clock):
    account = create_staff(name="Dana Desk")
    quick_sign_in(client, account)
    return account


@pytest.fixture
def clinician(make_clinician):
    return make_clinician(name="Dr Okafor", email="okafor@clinic.test")


@pytest.fixture
def kind(make_consultation_type):
    return make_consultation_type(name="Initial consultation — video", mode="video")


def entry_classes(html: str, name: str) -> str:
    """The class list of the grid entry showing this patient name."""
    for match in re.finditer(r'<li class="(entry [^"]+)">(.*?)</li>', html, re.S):
        if name in match.group(2):
            return match.group(1)
    raise AssertionError(f"{name} not in the grid")


def column_of(html: str, name: str) -> str:
    for match in re.finditer(r'<ol class="cal-col" aria-label="([^"]+)">(.*?)</ol>', html, re.S):
        if name in match.group(2):
            return match.group(1)
    raise AssertionError(f"{name} not in any column")


@pytest.mark.parametrize(
    ("week", "before", "after"),
    [
        # Spring forward on Sunday 8 March 2026: 9:00 EST is 14:00 UTC, 9:00 EDT is 13:00 UTC.
        ("2026-03-08", datetime(2026, 3, 6, 14, tzinfo=UTC), datetime(2026, 3, 8, 13, tzinfo=UTC)),
        # Fall back on Sunday 1 November 2026: 9:00 EDT is 13:00 UTC, 9:00 EST is 14:00 UTC.
        (
            "2026-11-01",
            datetime(2026, 10, 30, 13, tzinfo=UTC),
            datetime(2026, 11, 1, 14, tzinfo=UTC),
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_week_grid_draws_nine_oclock_at_nine_across_a_dst_change(
    client, desk, clinician, kind, make_booking, week, before, after
):
    make_booking(clinician, kind, before, patient_name="Before Change")
    make_booking(clinician, kind, after, patient_name="After Change")
    page = client.get(f"/staff/week/{week}")
    assert page.status_code == 200
    first, second = (
        entry_classes(page.text, "Before Change"),
        entry_classes(page.text, "After Change"),
    )
    nine = "r9 "  # 7:00 is row 1; 9:00 is row 9
    assert first.startswith(f"entry {nine}")
    assert second.startswith(f"entry {nine}")
    assert page.text.count("9:00–10:00 AM") == 2
    assert column_of(page.text, "Before Change") == (
        "Fri 6" if week.startswith("2026-03") else "Fri 30"
    )
    assert column_of(page.text, "After Change") == (
        "Sun 8" if week.startswith("2026-03") else "Sun 1"
    )
    assert "style=" not in page.text  # placement by classes: the CSP allows no inline styles


def test_day_grid_has_a_column_per_clinician(
    client, desk, clinician, kind, make_clinician, make_booking
):
    other = make_clinician(name="Dr Reyes", email="reyes@clinic.test", display_order=1)
    make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2), patient_name="Pat One")
    make_booking(other, kind, MONDAY_8AM_EST + timedelta(hours=2), patient_name="Pat Two")
    page = client.get("/staff/day/2026-11-30")
    assert column_of(page.text, "Pat One") == "Dr Okafor"
    assert column_of(page.text, "Pat Two") == "Dr Reyes"
    assert entry_classes(page.text, "Pat One").startswith("entry r13 s4 ")  # 10:00, an hour


def test_cancelled_bookings_leave_the_grid_and_are_listed_below(
    client, desk, clinician, kind, make_booking
):
    booking = make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=3))
    cancel_booking(booking.reference)
    page = client.get("/staff/day/2026-11-30").text
    assert '<li class="entry' not in page
    assert "<h2>Cancelled</h2>" in page
    assert f"/staff/bookings/{booking.id}" in page


def test_list_filters_search_and_pages(app, client, desk, clinician, kind, make_booking):
    app.config["STAFF_PAGE_SIZE"] = 2
    start = MONDAY_8AM_EST + timedelta(days=1)
    for n in range(5):
        make_booking(
            clinician,
            kind,
            start + timedelta(hours=n),
            patient_name=f"Patient {n}",
            patient_email=f"p{n}@example.test",
            patient_phone=f"+1202555010{n}",
        )
    special = make_booking(
        clinician,
        kind,
        start + timedelta(days=1),
        patient_name="Zoë Ünique",
        reference="QX7KPM",
        patient_phone="+12075550188",
    )
    first = client.get("/staff/bookings/")
    assert "6 bookings" in first.text
    assert "page 1 of 3" in first.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', first.text).group(1)
    third = client.post("/staff/bookings/", data={"csrf_token": token, "page": "3"})
    assert "page 3 of 3" in third.text
    assert "Zoë Ünique" in third.text
    for term in ("zoë", "qx7kpm", "5550188", "207) 555-0188"):
        found = post_form(client, "/staff/bookings/", {"q": term})
        assert "1 booking" in found.text, term
        assert "Zoë Ünique" in found.text, term
    by_email = post_form(client, "/staff/bookings/", {"q": "p3@example"})
    assert "Patient 3" in by_email.text
    assert "1 booking" in by_email.text
    by_day = post_form(
        client, "/staff/bookings/", {"date_from": "2026-12-02", "date_to": "2026-12-02"}
    )
    assert "1 booking" in by_day.text
    cancel_booking(special.reference)
    cancelled = post_form(client, "/staff/bookings/", {"status": "cancelled"})
    assert "1 booking" in cancelled.text
    assert "Zoë Ünique" in cancelled.text


def test_search_never_puts_patient_data_in_a_url(client, desk, clinician, kind, make_booking):
    make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(days=1), patient_name="Hidden Name")
    page = client.get("/staff/bookings/")
    assert re.search(r'<form method="post" action="/staff/bookings/"', page.text)
    assert 'method="get"' not in page.text.split('class="filters"')[0][-200:]
    for href in re.findall(r'href="([^"]+)"', page.text):
        assert "Hidden" not in href


def test_list_rejects_unknown_filter_values(client, desk):
    response = post_form(client, "/staff/bookings/", {"status": "deleted"})
    assert response.status_code == 422


def test_detail_shows_contact_note_and_history_by_whom(
    client, desk, clinician, kind, make_booking, frozen_clock
):
    booking = make_booking(
        clinician,
        kind,
        MONDAY_8AM_EST - timedelta(hours=1),
        patient_note="Prefers mornings",
        patient_birth_date=date(1979, 5, 17),
    )
    db.session.add(
        BookingEvent(
            booking_id=booking.id,
            kind="created",
            actor="patient",
            at=MONDAY_8AM_EST - timedelta(days=3),
        )
    )
    db.session.commit()
    post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"status": "attended"},
        to=f"/staff/bookings/{booking.id}/attendance",
    )
    page = client.get(f"/staff/bookings/{booking.id}").text
    for shown in (
        "Pat Example",
        "pat@example.test",
        "+12025550143",
        "May 17, 1979",
        "Prefers mornings",
        "Dr Okafor",
        booking.reference,
    ):
        assert shown in page
    history = page.split('id="history-heading"')[1].split("</ol>")[0]
    assert re.search(r"Created</strong> — .* — Patient", history)
    assert re.search(r"Attended</strong> — .* — Staff: Dana Desk", history)


def test_attendance_marks_write_history_and_still_hold_the_time(
    client, desk, clinician, kind, make_booking
):
    start = MONDAY_8AM_EST - timedelta(hours=1)
    booking = make_booking(clinician, kind, start)
    for status in ("no_show", "attended", "confirmed"):
        response = post_form(
            client,
            f"/staff/bookings/{booking.id}",
            {"status": status},
            to=f"/staff/bookings/{booking.id}/attendance",
        )
        assert response.status_code == 303
        db.session.expire_all()
        assert db.session.get(Booking, booking.id).status == status
        booked = load_booked(start, start + timedelta(hours=1), [clinician.id])
        assert len(booked) == 1  # the clinician's time stays taken
    assert list(
        db.session.execute(
            db.select(BookingEvent.kind, BookingEvent.actor)
            .where(BookingEvent.booking_id == booking.id)
            .order_by(BookingEvent.id)
        )
    ) == [
        ("no_show", f"staff:{desk.id}"),
        ("attended", f"staff:{desk.id}"),
        ("attendance_cleared", f"staff:{desk.id}"),
    ]


def test_attendance_waits_for_the_start_and_never_touches_a_cancelled_booking(
    client, desk, clinician, kind, make_booking
):
    future = make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2))
    page = client.get(f"/staff/bookings/{future.id}").text
    assert "once the consultation has begun" in page
    assert "Mark attended" not in page
    refused = post_form(
        client,
        f"/staff/bookings/{future.id}",
        {"status": "attended"},
        to=f"/staff/bookings/{future.id}/attendance",
    )
    assert refused.status_code == 303
    assert "once the consultation has begun" in client.get(f"/staff/bookings/{future.id}").text
    past = make_booking(clinician, kind, MONDAY_8AM_EST - timedelta(hours=3))
    cancel_booking(past.reference)
    post_form(
        client,
        f"/staff/bookings/{past.id}",
        {"status": "attended"},
        to=f"/staff/bookings/{past.id}/attendance",
    )
    db.session.expire_all()
    assert db.session.get(Booking, future.id).status == "confirmed"
    assert db.session.get(Booking, past.id).status == "cancelled"


def test_internal_notes_are_kept_with_their_author(client, desk, clinician, kind, make_booking):
    booking = make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2))
    post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"body": "Called to confirm <b>parking</b>"},
        to=f"/staff/bookings/{booking.id}/notes",
    )
    empty = post_form(
        client,
        f"/staff/bookings/{booking.id}",
        {"body": "   "},
        to=f"/staff/bookings/{booking.id}/notes",
    )
    assert empty.status_code == 303
    page = client.get(f"/staff/bookings/{booking.id}").text
    assert "Called to confirm &lt;b&gt;parking&lt;/b&gt;" in page
    assert "Dana Desk ·" in page
    assert "Write the note first." in page
    assert page.count('class="card staff-note"') == 1


def test_the_ics_download_is_the_bookings_event(client, desk, clinician, kind, make_booking):
    booking = make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2))
    response = client.get(f"/staff/bookings/{booking.id}/consultation.ics")
    assert response.mimetype == "text/calendar"
    event = Calendar.from_ical(response.data).walk("VEVENT")[0]
    assert str(event["UID"]) == booking.uid
    assert event.decoded("DTSTART") == booking.starts_at
    assert "Pat Example" not in response.data.decode()  # no name in a calendar file


def test_csv_export_neutralises_formulas_and_opens_in_excel(
    client, desk, clinician, kind, make_booking
):
    start = MONDAY_8AM_EST + timedelta(hours=2)
    make_booking(
        clinician,
        kind,
        start,
        patient_name='=HYPERLINK("http://evil")',
        patient_note="@SUM(A1)\nsecond line",
    )
    make_booking(
        clinician, kind, start + timedelta(hours=1), patient_name="José Ñúñez", patient_note="-2+3"
    )
    make_booking(clinician, kind, start + timedelta(days=3), patient_name="Outside Range")
    response = client.get("/staff/export/?date_from=2026-11-30&date_to=2026-12-01")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert (
        'filename="bookings-2026-11-30..2026-12-01.csv"' in response.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Reference", "Status", "Starts (clinic time)"]
    assert len(rows) == 3
    assert rows[1][6] == '\'=HYPERLINK("http://evil")'
    assert rows[1][10] == "'@SUM(A1)\nsecond line"
    assert rows[2][6] == "José Ñúñez"
    assert rows[2][10] == "'-2+3"
    assert rows[1][8] == "'+12025550143"  # a phone number starts with +, so it is quoted too
    assert rows[1][2] == "2026-11-30 10:00 EST"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_export_form_refuses_bad_ranges(client, desk):
    assert client.get("/staff/export/").status_code == 200
    assert client.get("/staff/export/?date_from=2026-12-02&date_to=2026-12-01").status_code == 422
    assert client.get("/staff/export/?date_from=2025-01-01&date_to=2026-12-01").status_code == 422
    assert client.get("/staff/export/?date_from=nope&date_to=2026-12-01").status_code == 422


def test_day_sheet_lists_the_day_for_print(client, desk, clinician, kind, make_booking):
    make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2), patient_note="Wheelchair")
    cancelled = make_booking(
        clinician, kind, MONDAY_8AM_EST + timedelta(hours=4), patient_name="Gone Away"
    )
    cancel_booking(cancelled.reference)
    page = client.get("/staff/day/2026-11-30/sheet").text
    assert "1 consultation " in page
    assert "Wheelchair" in page
    assert "Gone Away" not in page
    assert "10:00 AM–11:00 AM" in page
    css = client.get("/static/css/staff.css").text
    assert "@media print" in css
    assert ".staff-header" in css.split("@media print")[1]


@pytest.mark.parametrize(
    "url",
    [
        "/staff/day/2026-11-30",
        "/staff/week/2026-11-30",
        "/staff/day/2026-11-30/sheet",
        "/staff/bookings/{id}",
    ],
)
def test_patient_markup_is_shown_as_text(client, desk, clinician, kind, make_booking, url):
    booking = make_booking(
        clinician,
        kind,
        MONDAY_8AM_EST + timedelta(hours=2),
        patient_name=XSS[:120],
        patient_note=XSS,
    )
    page = client.get(url.format(id=booking.id))
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text


def test_patient_markup_in_the_list_and_the_csv(client, desk, clinician, kind, make_booking):
    make_booking(clinician, kind, MONDAY_8AM_EST + timedelta(hours=2), patient_name=XSS[:120])
    listed = client.get("/staff/bookings/").text
    assert "<script>alert" not in listed
    assert "&lt;script&gt;" in listed
    exported = client.get("/staff/export/?date_from=2026-11-30&date_to=2026-11-30")
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[1][6] == XSS[:120]  # kept exactly (CSV is data, not markup), never executed


def test_staff_pages_keep_the_csp_and_load_nothing_from_elsewhere(client, desk):
    page = client.get("/staff/week/2026-11-30")
    policy = page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "script-src 'self' 'nonce-" in policy
    assert "<script" not in page.text
    for ref in re.findall(r'(?:href|src)="([^"]+)"', page.text):
        assert ref.startswith(("/", "#", "mailto:", "tel:")), ref
