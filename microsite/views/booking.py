"""Patients pick a consultation type, a day and a time, then book it. Works without JavaScript."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime

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
from flask_wtf.csrf import generate_csrf
from markupsafe import escape
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from .. import clock, fast_path, inputs, page_cache
from ..caching import availability_cache, schedule_cache
from ..clinic import clinic_timezone
from ..extensions import db
from ..forms import BookingForm, make_started_stamp
from ..models import MODE_VIDEO, Booking, Clinician, ConsultationType
from ..models.booking import BOOKING_CANCELLED
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
from ..templating import format_local
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
    # A hint like the picker it leads to, so kept as long as a free-slot answer (the picker's
    # own stored page lives as long): the day of the first free time, or None when none is.
    day = availability_cache().get_or_compute(
        ("first-free-day", consultation_type.id, clinician_id),
        lambda: _first_free_day(consultation_type, clinician_id),
    )
    args = {"type": consultation_type.id, "clinician": clinician_id}
    if day is not None:
        args.update(week=day.isoformat(), day=day.isoformat())
    # The same redirect for every visitor until that answer expires (fast_path keeps it).
    fast_path.mark_shareable()
    # No #anchor: the picker shows the days and the first times together (see views/picker.py).
    return redirect(url_for("booking.start", **args), code=303)


def _first_free_day(
    consultation_type: schedule_service.ConsultationTypeInfo, clinician_id: int | None
) -> date | None:
    slot = schedule_service.first_available(consultation_type, clinician_id)
    return None if slot is None else slot.start.astimezone(clinic_timezone()).date()


@bp.route("/details", methods=["GET", "POST"])
@limit_booking
def details():
    """The patient's details for a chosen time; POST books it."""
    if request.method == "GET":
        return _details_form()
    form = BookingForm()
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


@dataclass(frozen=True, slots=True)
class ConfirmedBooking:
    """What the confirmation page shows of the booking: one plain row, no ORM objects."""

    id: int
    reference: str
    starts_at: datetime
    status: str
    clinician_name: str
    duration_minutes: int
    mode: str

    @property
    def is_active(self) -> bool:
        return self.status != BOOKING_CANCELLED

    @property
    def is_video(self) -> bool:
        return self.mode == MODE_VIDEO


# Built once; the ORM's get with two joined loads cost more than the rest of the page.
_CONFIRMED_BOOKING = (
    select(
        Booking.id,
        Booking.reference,
        Booking.starts_at,
        Booking.status,
        Clinician.name,
        ConsultationType.duration_minutes,
        ConsultationType.mode,
    )
    .join(Clinician, Clinician.id == Booking.clinician_id)
    .join(ConsultationType, ConsultationType.id == Booking.consultation_type_id)
    .where(Booking.id == bindparam("booking_id"))
)


@bp.get("/confirmed")
def confirmed():
    booking_id = session.get(CONFIRMED_SESSION_KEY)
    row = None
    if isinstance(booking_id, int):
        row = db.session.connection().execute(_CONFIRMED_BOOKING, {"booking_id": booking_id})
        row = row.first()
    if row is None:
        abort(404)
    booking = ConfirmedBooking(*row)
    g.booking_id = booking.id
    return render_template("booking/confirmed.html", booking=booking)


@bp.get("/confirmed/consultation.ics")
def confirmed_ics():
    return calendar_download.booking_ics(_confirmed_booking())


# The per-visitor and per-time values of the empty form, left as markers in its stored page.
# Unguessable, so nothing a visitor sends can plant a marker in a page.
_FILL_MARK = f"fill-{secrets.token_hex(12)}-"
_FILLED = ("csrf_token", "idempotency_key", "started", "consultation_type", "slot", "when", "day")
_FILL_RE = re.compile(re.escape(_FILL_MARK) + f"({'|'.join(_FILLED)})")


@dataclass(frozen=True, slots=True)
class ChosenTime:
    """The chosen time as the form shows it (clinic-local text, and its day for links)."""

    when: str
    day: str

    @classmethod
    def of(cls, choice: booking_service.SlotChoice) -> ChosenTime:
        return cls(format_local(choice.start), format_local(choice.start, "date_iso"))


def _details_form():
    """GET: the empty form for a time that can be booked now, or other times if it can't.

    The time is checked against the bookings on every request (a time taken a moment ago gets
    "Please choose another time" and the nearest free ones). The empty form is the same page
    for every visitor and time of a type apart from a few values: it is rendered once per type
    with markers where they go (stored as long as the schedule's own reads), and each response
    fills in its own: the CSRF token and form stamp of this browser, a new idempotency key, the
    time and the nonce. The stored page never holds a token or anything a visitor typed.
    """
    type_raw = inputs.clean_text(request.args.get("type"))
    slot_raw = inputs.clean_text(request.args.get("slot"))
    consultation_type = _consultation_type_or_404(type_raw)
    error = booking_service.slot_problem(consultation_type, slot_raw)
    idempotency_key = uuid.uuid4().hex
    if error is not None:
        form = BookingForm()
        form.consultation_type.data, form.slot.data = type_raw, slot_raw
        form.idempotency_key.data = idempotency_key
        form.started.data = make_started_stamp(idempotency_key)
        return _render_details(form, error=error)

    def render() -> str:
        # No CSRF field: its token is this visitor's, filled in below like the others.
        form = BookingForm(meta={"csrf": False})
        form.consultation_type.data = _FILL_MARK + "consultation_type"
        form.slot.data = _FILL_MARK + "slot"
        form.idempotency_key.data = _FILL_MARK + "idempotency_key"
        form.started.data = _FILL_MARK + "started"
        return _details_html(
            form,
            consultation_type,
            choice=ChosenTime(_FILL_MARK + "when", _FILL_MARK + "day"),
            csrf_token=_FILL_MARK + "csrf_token",
        )

    page = page_cache.shared_html(("details", consultation_type), render, store=schedule_cache())
    chosen = ChosenTime.of(booking_service.parse_slot_key(slot_raw))
    values = {
        "csrf_token": generate_csrf(),
        "idempotency_key": idempotency_key,
        "started": make_started_stamp(idempotency_key),
        "consultation_type": type_raw,
        "slot": slot_raw,
        "when": chosen.when,
        "day": chosen.day,
    }
    return _FILL_RE.sub(lambda mark: escape(values[mark.group(1)]), page)


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
    shown = None if error or alternatives or choice is None else ChosenTime.of(choice)
    return (
        _details_html(
            form,
            consultation_type,
            choice=shown,
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


def _details_html(
    form: BookingForm,
    consultation_type,
    *,
    choice: ChosenTime | None,
    csrf_token: str = "",
    heading: str = "Your details",
    **context,
) -> str:
    """booking/details.html; `csrf_token` given: that value instead of the form's own field."""
    return render_template(
        "booking/details.html",
        form=form,
        consultation_type=consultation_type,
        choice=choice,
        csrf_token=csrf_token,
        heading=heading,
        **{
            "near_key": "",
            "failed": False,
            "problem": "",
            "taken": False,
            "details_kept": False,
            "alternatives": [],
            **context,
        },
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
