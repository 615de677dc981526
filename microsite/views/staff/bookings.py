"""The booking list (filters and search), a booking's detail, attendance, notes, its .ics."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from sqlalchemy import select

from ... import clock
from ...clinic import clinic_timezone
from ...extensions import db
from ...models import BOOKING_STATUSES, ConsultationType, StaffAccount
from ...models.history import ACTOR_CLI, ACTOR_PATIENT, ACTOR_SYSTEM
from ...services import calendar_events, outbox, staff_bookings
from ...services import schedule as schedule_service
from ...services.audit import record_audit, record_bookings_shown
from ...services.errors import BookingError
from ...services.history import booking_history
from ...staff_forms import AttendanceForm, BookingSearchForm, NoteForm, choices
from .. import calendar_download
from .access import current_staff, visible_booking, visible_clinician_ids

bp = Blueprint("bookings", __name__, url_prefix="/bookings")

STATUS_LABELS = {
    "confirmed": "Booked",
    "cancelled": "Cancelled",
    "attended": "Attended",
    "no_show": "No-show",
}


def _search_form() -> BookingSearchForm:
    form = BookingSearchForm()
    visible = visible_clinician_ids(current_staff())
    clinicians = [
        (str(cid), name)
        for cid, name in schedule_service.clinician_names().items()
        if visible is None or cid in visible
    ]
    form.clinician.choices = choices([("", "All clinicians"), *clinicians])
    types = db.session.scalars(select(ConsultationType).order_by(ConsultationType.display_order))
    form.consultation_type.choices = choices(
        [("", "All types")] + [(str(t.id), t.name) for t in types]
    )
    form.status.choices = choices(
        [("", "Any status")] + [(s, STATUS_LABELS[s]) for s in BOOKING_STATUSES]
    )
    return form


def _filters(form: BookingSearchForm) -> staff_bookings.BookingFilters:
    tz = clinic_timezone()
    since = until = None
    if form.date_from.data:
        since, _ = schedule_service.local_day_bounds(form.date_from.data, 1, tz)
    if form.date_to.data:
        _, until = schedule_service.local_day_bounds(form.date_to.data, 1, tz)
    return staff_bookings.BookingFilters(
        since=since,
        until=until,
        clinician_id=int(form.clinician.data) if form.clinician.data else None,
        consultation_type_id=(
            int(form.consultation_type.data) if form.consultation_type.data else None
        ),
        status=form.status.data or "",
        text=form.q.data or "",
    )


@bp.route("/", methods=["GET", "POST"])
def list_bookings():
    """By POST, so a searched name never lands in a URL, a log or the browser's history."""
    form = _search_form()
    status = 200
    if form.is_submitted() and not form.validate():
        status = 422
        filters = staff_bookings.BookingFilters()
    elif form.is_submitted():
        filters = _filters(form)
    else:
        # Opening the list: upcoming bookings from today on.
        today = clock.now().astimezone(clinic_timezone()).date()
        form.date_from.data = today
        filters = _filters(form)
    page = staff_bookings.search_bookings(
        filters,
        visible_clinician_ids(current_staff()),
        page=form.page.data or 1,
        page_size=current_app.config["STAFF_PAGE_SIZE"],
    )
    # One row per booking on the page; the search terms are not recorded (no patient data).
    record_bookings_shown(
        current_staff().id,
        "bookings.listed",
        (b.id for b in page.items),
        detail=f"page {page.number}, {page.total} found" + (", searched" if filters.text else ""),
    )
    return render_template(
        "staff/bookings/list.html", form=form, page=page, status_labels=STATUS_LABELS
    ), status


def actor_label(actor: str, names: dict[int, str]) -> str:
    """Who did it, for a person: the patient, a named staff member, a command, the system."""
    if actor == ACTOR_PATIENT:
        return "Patient"
    if actor == ACTOR_CLI:
        return "Command line"
    if actor == ACTOR_SYSTEM:
        return "System"
    kind, _, account_id = actor.partition(":")
    if kind == "staff" and account_id.isdigit():
        return f"Staff: {names.get(int(account_id), f'account {account_id}')}"
    return actor


def _staff_names() -> dict[int, str]:
    return dict(db.session.execute(select(StaffAccount.id, StaffAccount.name)).all())


@bp.get("/<int:booking_id>")
def detail(booking_id: int):
    booking = visible_booking(booking_id)
    record_audit(current_staff().id, "booking.viewed", booking.id)
    names = _staff_names()
    history = [(event, actor_label(event.actor, names)) for event in booking_history(booking.id)]
    return render_template(
        "staff/bookings/detail.html",
        booking=booking,
        history=history,
        notes=staff_bookings.notes_for(booking.id),
        note_form=NoteForm(),
        attendance_form=AttendanceForm(),
        can_mark=booking.is_active and booking.starts_at <= clock.now(),
        status_labels=STATUS_LABELS,
        day=booking.starts_at.astimezone(clinic_timezone()).date(),
        ends_minutes=(booking.ends_at - booking.starts_at) // timedelta(minutes=1),
        messages=outbox.messages_for_booking(booking.id),
    )


@bp.post("/<int:booking_id>/attendance")
def attendance(booking_id: int):
    booking = visible_booking(booking_id)
    form = AttendanceForm()
    if form.validate_on_submit():
        try:
            staff_bookings.mark_attendance(
                booking.id, form.status.data, actor_account_id=current_staff().id
            )
        except BookingError as error:
            flash(str(error), "error")
        else:
            flash(f"Marked: {STATUS_LABELS.get(form.status.data, form.status.data)}.", "ok")
    return redirect(url_for("staff.bookings.detail", booking_id=booking_id), code=303)


@bp.post("/<int:booking_id>/notes")
def add_note(booking_id: int):
    booking = visible_booking(booking_id)
    form = NoteForm()
    if form.validate_on_submit():
        staff_bookings.add_note(booking.id, form.body.data, author_id=current_staff().id)
        flash("Note added.", "ok")
    else:
        flash(form.body.errors[0] if form.body.errors else "The note was not saved.", "error")
    return redirect(url_for("staff.bookings.detail", booking_id=booking_id, _anchor="notes"), 303)


@bp.get("/<int:booking_id>/consultation.ics")
def download_ics(booking_id: int):
    booking = visible_booking(booking_id)
    response = calendar_download.booking_ics(
        booking, filename=f"{booking.reference}.ics", audience=calendar_events.AUDIENCE_STAFF
    )
    record_audit(current_staff().id, "booking.ics_downloaded", booking.id)
    return response
