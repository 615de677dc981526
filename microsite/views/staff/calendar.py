"""The day and week calendar grids and the printable day sheet, in the clinic's time zone."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, redirect, render_template, url_for

from ... import clock, staff_grid
from ...clinic import clinic_timezone
from ...services import schedule as schedule_service
from ...services import staff_bookings
from ...services.audit import record_bookings_shown
from .access import current_staff, visible_clinician_ids

bp = Blueprint("calendar", __name__)


def _today() -> date:
    return clock.now().astimezone(clinic_timezone()).date()


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        abort(404)


def _entries(bookings, column_of) -> list[staff_grid.Entry]:
    return [
        staff_grid.Entry(b.id, b.starts_at, b.ends_at, column_of(b))
        for b in bookings
        if b.is_active
    ]


@bp.get("/")
def today():
    return redirect(url_for("staff.calendar.day", day=_today().isoformat()), code=303)


@bp.get("/week/<day>")
def week(day: str):
    days = staff_grid.week_days(_parse_day(day))
    tz = clinic_timezone()
    since, until = schedule_service.local_day_bounds(days[0], 7, tz)
    bookings = staff_bookings.bookings_between(since, until, visible_clinician_ids(current_staff()))
    by_id = {b.id: b for b in bookings}
    grid = staff_grid.build_grid(
        _entries(bookings, lambda b: b.starts_at.astimezone(tz).date()), days, tz=tz
    )
    record_bookings_shown(current_staff().id, "calendar.week", by_id, detail=days[0].isoformat())
    return render_template(
        "staff/calendar/week.html",
        days=days,
        grid=grid,
        bookings=by_id,
        cancelled=[b for b in bookings if not b.is_active],
        previous=(days[0] - timedelta(days=7)).isoformat(),
        following=(days[0] + timedelta(days=7)).isoformat(),
        today=_today(),
    )


def _day_bookings(the_day: date):
    since, until = schedule_service.local_day_bounds(the_day, 1, clinic_timezone())
    return staff_bookings.bookings_between(since, until, visible_clinician_ids(current_staff()))


@bp.get("/day/<day>")
def day(day: str):
    the_day = _parse_day(day)
    tz = clinic_timezone()
    bookings = _day_bookings(the_day)
    visible = visible_clinician_ids(current_staff())
    clinicians = {
        cid: name
        for cid, name in schedule_service.clinician_names().items()
        if visible is None or cid in visible
    }
    for booking in bookings:  # an inactive clinician's booking still needs its column
        clinicians.setdefault(booking.clinician_id, booking.clinician.name)
    grid = staff_grid.build_grid(
        _entries(bookings, lambda b: b.clinician_id),
        list(clinicians),
        tz=tz,
        day_of=lambda _entry: the_day,
    )
    record_bookings_shown(
        current_staff().id, "calendar.day", (b.id for b in bookings), detail=the_day.isoformat()
    )
    return render_template(
        "staff/calendar/day.html",
        the_day=the_day,
        grid=grid,
        clinicians=clinicians,
        bookings={b.id: b for b in bookings},
        cancelled=[b for b in bookings if not b.is_active],
        previous=(the_day - timedelta(days=1)).isoformat(),
        following=(the_day + timedelta(days=1)).isoformat(),
        today=_today(),
    )


@bp.get("/day/<day>/sheet")
def day_sheet(day: str):
    """A printable list of the day's consultations (a print stylesheet; no buttons printed)."""
    the_day = _parse_day(day)
    bookings = [b for b in _day_bookings(the_day) if b.is_active]
    record_bookings_shown(
        current_staff().id, "daysheet.viewed", (b.id for b in bookings), detail=the_day.isoformat()
    )
    return render_template("staff/calendar/day_sheet.html", the_day=the_day, bookings=bookings)
