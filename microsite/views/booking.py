"""Patients pick a consultation type, a day and a time, then book it. Works without JavaScript."""

from __future__ import annotations

import uuid
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.orm import joinedload

from .. import clock, ics, page_cache
from ..caching import availability_cache
from ..clinic import clinic_timezone
from ..extensions import db
from ..forms import BookingForm, make_started_stamp
from ..models import Booking
from ..services import booking as booking_service
from ..services import calendar_events
from ..services import schedule as schedule_service
from ..services.errors import BookingError, SlotTakenError, UnknownConsultationTypeError
from . import picker

bp = Blueprint("booking", __name__, url_prefix="/book")

CONFIRMED_SESSION_KEY = "confirmed_booking_id"
ALTERNATIVES_SHOWN = 6


@bp.get("/")
def start():
    """Step 1 (type) and steps 2-3 (day, time) of the picker, driven by query parameters.

    Both pages are the same for every visitor, so each is rendered once and reused (with a
    fresh nonce): the type list until a type changes, the picker for as long as a free-slot
    answer may be (`SLOT_CACHE_SECONDS`; this process forgets both when it books or cancels).
    """
    type_id = request.args.get("type", type=int)
    if type_id is None:
        types = schedule_service.active_consultation_types()
        return page_cache.shared_html(
            ("types", tuple(types)),
            lambda: render_template("booking/choose_type.html", types=types),
        )
    clinician_id = request.args.get("clinician", type=int)
    week = _parse_date(request.args.get("week"))
    day = _parse_date(request.args.get("day"))

    def render() -> str:
        try:
            consultation_type = schedule_service.consultation_type_info(type_id)
        except UnknownConsultationTypeError:
            abort(404)  # raised out of the render: nothing is stored
        view = picker.build(consultation_type, clinician_id=clinician_id, week=week, day=day)
        types = schedule_service.active_consultation_types()
        return render_template("booking/pick.html", view=view, types=types)

    # The stored page lives no longer than a free-slot answer, so a changed type or schedule
    # shows after SLOT_CACHE_SECONDS at most; the key holds only what the URL and day choose.
    today = clock.now().astimezone(clinic_timezone()).date()
    key = ("picker", type_id, clinician_id, week, day, today)
    return page_cache.shared_html(key, render, store=availability_cache())


@bp.get("/first-available")
def first_available():
    """Jump to the day of the earliest free time."""
    type_id = request.args.get("type", type=int)
    clinician_id = request.args.get("clinician", type=int)
    try:
        consultation_type = schedule_service.consultation_type_info(type_id)
    except UnknownConsultationTypeError:
        abort(404)
    slot = schedule_service.first_available(consultation_type, clinician_id)
    args = {"type": consultation_type.id, "clinician": clinician_id}
    if slot is not None:
        day = slot.start.astimezone(clinic_timezone()).date()
        args.update(week=day.isoformat(), day=day.isoformat())
    return redirect(url_for("booking.start", **args, _anchor="times"), code=303)


@bp.route("/details", methods=["GET", "POST"])
def details():
    """The patient's details for a chosen time; POST books it."""
    form = BookingForm()
    if request.method == "GET":
        form.consultation_type.data = request.args.get("type", "")
        form.slot.data = request.args.get("slot", "")
        form.idempotency_key.data = uuid.uuid4().hex
        form.started.data = make_started_stamp()
        return _render_details(form)

    if not form.validate_on_submit():
        return _render_details(form, status=422)
    if form.looks_like_a_bot():
        form.started.data = make_started_stamp()
        return _render_details(
            form,
            status=422,
            problem="Please check your details and press “Book this consultation” again.",
        )
    patient = booking_service.PatientDetails(
        name=form.full_name.data,
        email=form.email.data,
        phone_e164=form.phone_e164,
        birth_date=form.birth_date.data,
        note=form.note.data or "",
    )
    try:
        booking = booking_service.book_slot(
            consultation_type_id=_int_or_zero(form.consultation_type.data),
            key=form.slot.data,
            patient=patient,
            idempotency_key=form.idempotency_key.data,
        )
    except UnknownConsultationTypeError:
        abort(404)
    except BookingError as error:
        return _render_details(form, error=error)
    session[CONFIRMED_SESSION_KEY] = booking.id
    return redirect(url_for("booking.confirmed"), code=303)


@bp.get("/confirmed")
def confirmed():
    booking = _confirmed_booking()
    return render_template("booking/confirmed.html", booking=booking)


@bp.get("/confirmed/consultation.ics")
def confirmed_ics():
    booking = _confirmed_booking()
    body = ics.build_download(
        calendar_events.booking_event(booking),
        now=clock.now(),
        prodid=current_app.config["ICS_PRODID"],
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": 'attachment; filename="consultation.ics"'},
    )


def _confirmed_booking() -> Booking:
    booking_id = session.get(CONFIRMED_SESSION_KEY)
    # One query, not three: the page shows the booking's clinician and consultation type.
    loads = (joinedload(Booking.clinician), joinedload(Booking.consultation_type))
    booking = db.session.get(Booking, booking_id, options=loads) if booking_id else None
    if booking is None:
        abort(404)
    return booking


def _render_details(
    form: BookingForm, *, status: int = 200, error: BookingError | None = None, problem: str = ""
):
    """The details form for the chosen time, or with other times when that one can't be had."""
    try:
        consultation_type = schedule_service.consultation_type_info(
            _int_or_zero(form.consultation_type.data)
        )
    except UnknownConsultationTypeError:
        abort(404)
    choice = booking_service.parse_slot_key(form.slot.data)
    if request.method == "GET":
        error = booking_service.slot_problem(consultation_type, form.slot.data)
    alternatives = []
    if error is not None:
        status, problem = error.status_code, str(error)
        alternatives = picker.alternatives_near(consultation_type, choice, ALTERNATIVES_SHOWN)
    return (
        render_template(
            "booking/details.html",
            form=form,
            consultation_type=consultation_type,
            choice=None if error else choice,
            problem=problem,
            taken=isinstance(error, SlotTakenError),
            alternatives=alternatives,
        ),
        status,
    )


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int_or_zero(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else 0
