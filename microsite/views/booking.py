"""Patients pick a consultation type, a day and a time, then book it. Works without JavaScript."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.orm import joinedload

from .. import clock, inputs, page_cache
from ..caching import availability_cache
from ..clinic import clinic_timezone
from ..extensions import db
from ..forms import BookingForm, make_started_stamp
from ..models import Booking
from ..ratelimits import limit_booking
from ..services import booking as booking_service
from ..services import schedule as schedule_service
from ..services.errors import (
    BookingError,
    FormAlreadyUsedError,
    SlotTakenError,
    TooManyUpcomingError,
    UnknownConsultationTypeError,
)
from . import calendar_download, picker

bp = Blueprint("booking", __name__, url_prefix="/book")

CONFIRMED_SESSION_KEY = "confirmed_booking_id"
ALTERNATIVES_SHOWN = 6
RECHECK_HEADING = "Please check your details"
CHOOSE_A_TIME = "Choose one of the times."
# What the patient types (not the hidden fields): "your details are kept" only if there were any.
PATIENT_FIELDS = ("full_name", "email", "phone", "birth_date", "note")


@bp.get("/")
def start():
    """Step 1 (type) and steps 2-3 (day, time) of the picker, driven by query parameters.

    Both pages are the same for every visitor, so each is rendered once and reused (with a
    fresh nonce): the type list until a type changes, the picker for as long as a free-slot
    answer may be (`SLOT_CACHE_SECONDS`; this process forgets both when it books or cancels).
    """
    if not request.args.get("type", "").strip():
        types = schedule_service.active_consultation_types()
        return page_cache.shared_html(
            ("types", tuple(types)),
            lambda: render_template("booking/choose_type.html", types=types),
        )
    consultation_type = _consultation_type_or_404(request.args.get("type"))
    clinician_id = inputs.parse_id(request.args.get("clinician"))
    week = picker.parse_day(request.args.get("week"), consultation_type)
    day = picker.parse_day(request.args.get("day"), consultation_type)

    def render() -> str:
        view = picker.build(consultation_type, clinician_id=clinician_id, week=week, day=day)
        types = schedule_service.active_consultation_types()
        return render_template("booking/pick.html", view=view, types=types)

    # The stored page lives no longer than a free-slot answer, so a changed type or schedule
    # shows after SLOT_CACHE_SECONDS at most; the key holds only what the URL and day choose.
    today = clock.now().astimezone(clinic_timezone()).date()
    key = ("picker", consultation_type.id, clinician_id, week, day, today)
    return page_cache.shared_html(key, render, store=availability_cache())


@bp.get("/first-available")
def first_available():
    """Jump to the day of the earliest free time."""
    consultation_type = _consultation_type_or_404(request.args.get("type"))
    clinician_id = inputs.parse_id(request.args.get("clinician"))
    if clinician_id not in schedule_service.clinician_names():
        clinician_id = None
    slot = schedule_service.first_available(consultation_type, clinician_id)
    args = {"type": consultation_type.id, "clinician": clinician_id}
    if slot is not None:
        day = slot.start.astimezone(clinic_timezone()).date()
        args.update(week=day.isoformat(), day=day.isoformat())
    # No #anchor: the picker shows the days and the first times together (see views/picker.py).
    return redirect(url_for("booking.start", **args), code=303)


@bp.route("/details", methods=["GET", "POST"])
@limit_booking
def details():
    """The patient's details for a chosen time; POST books it."""
    form = BookingForm()
    if request.method == "GET":
        form.consultation_type.data = inputs.clean_text(request.args.get("type"))
        form.slot.data = inputs.clean_text(request.args.get("slot"))
        form.idempotency_key.data = uuid.uuid4().hex
        form.started.data = make_started_stamp(form.idempotency_key.data)
        return _render_details(form)

    if not form.validate_on_submit():
        return _render_details(form, status=422)
    if form.looks_like_a_bot():
        # Usually a person whose browser filled the form in at once: the time is still theirs
        # to book, so say what to do, not "choose another time". A fresh stamp lets them.
        form.started.data = make_started_stamp(form.idempotency_key.data)
        return _render_details(
            form,
            status=422,
            problem="Please check your details and press “Book this consultation” again.",
            heading=RECHECK_HEADING,
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
            consultation_type_id=inputs.parse_id(form.consultation_type.data) or 0,
            key=form.slot.data,
            patient=patient,
            idempotency_key=form.idempotency_key.data,
        )
    except UnknownConsultationTypeError:
        abort(404)
    except TooManyUpcomingError as error:
        return render_template("booking/already_booked.html", message=str(error)), 409
    except FormAlreadyUsedError as error:
        return render_template("booking/form_used.html", message=str(error)), 422
    except BookingError as error:
        return _render_details(form, error=error)
    g.booking_id = booking.id  # the request's log line names it (see microsite/logs.py)
    session[CONFIRMED_SESSION_KEY] = booking.id
    return redirect(url_for("booking.confirmed"), code=303)


@bp.get("/confirmed")
def confirmed():
    booking = _confirmed_booking()
    return render_template("booking/confirmed.html", booking=booking)


@bp.get("/confirmed/consultation.ics")
def confirmed_ics():
    return calendar_download.booking_ics(_confirmed_booking())


def _confirmed_booking() -> Booking:
    booking_id = session.get(CONFIRMED_SESSION_KEY)
    # One query, not three: the page shows the booking's clinician and consultation type.
    loads = (joinedload(Booking.clinician), joinedload(Booking.consultation_type))
    booking = db.session.get(Booking, booking_id, options=loads) if booking_id else None
    if booking is None:
        abort(404)
    g.booking_id = booking.id
    return booking


def _render_details(
    form: BookingForm,
    *,
    status: int = 200,
    error: BookingError | None = None,
    problem: str = "",
    heading: str = "",
):
    """The details form for the chosen time, or with other times when that one can't be had.

    The h1 names the situation: the patient's details, a time just taken, a time that cannot
    be booked, or a form to check and send again. Any failure puts "Error:" first in the title.
    """
    consultation_type = _consultation_type_or_404(form.consultation_type.data)
    choice = booking_service.parse_slot_key(form.slot.data)
    if request.method == "GET":
        error = booking_service.slot_problem(consultation_type, form.slot.data)
    alternatives = []
    near = choice
    if error is None and request.method == "POST" and not form.slot.data:
        # "Book" pressed on the list of other times without choosing one: list them again,
        # around the time first asked for, and point at the list.
        near = booking_service.parse_slot_key(request.form.get("near", ""))
        form.slot.errors = [CHOOSE_A_TIME]
        alternatives = picker.alternatives_near(consultation_type, near, ALTERNATIVES_SHOWN)
        heading = heading or "Please choose a time"
    if error is not None:
        status, problem = error.status_code, str(error)
        alternatives = picker.alternatives_near(consultation_type, choice, ALTERNATIVES_SHOWN)
    taken = isinstance(error, SlotTakenError)
    if not heading:
        heading = (
            "That time was just taken"
            if taken
            else "Please choose another time"
            if error is not None
            else "Your details"
        )
    typed = request.method == "POST" and any(getattr(form, name).data for name in PATIENT_FIELDS)
    return (
        render_template(
            "booking/details.html",
            form=form,
            consultation_type=consultation_type,
            choice=None if error or alternatives else choice,
            # The time first asked for, kept through "Book" pressed with no time chosen.
            near_key=(form.slot.data or request.form.get("near", "")) if near else "",
            heading=heading,
            failed=status >= 400,
            problem=problem,
            taken=taken,
            details_kept=typed,
            alternatives=alternatives,
        ),
        status,
    )


def _consultation_type_or_404(raw: str | None):
    """The (cached, plain) consultation type a parameter names, or a 404 page."""
    type_id = inputs.parse_id(raw)
    if type_id is None:
        abort(404)
    try:
        return schedule_service.consultation_type_info(type_id)
    except UnknownConsultationTypeError:
        abort(404)
