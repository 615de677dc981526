"""Booking actions in the console: cancel with a reason, reschedule with the patients' picker,
and a booking made for a patient who phoned. All through services/staff_actions, which goes
through the lifecycle and booking services (the same engine and database guarantee).

Who may act: whoever may see the booking (views/staff/access.visible_booking: front desk and
admin all, a clinician their own); new bookings for callers are for front desk and admin.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ... import inputs
from ...models import Booking, ConsultationType
from ...models.staff import ROLE_ADMIN, ROLE_FRONTDESK
from ...services import booking as booking_service
from ...services import lifecycle, staff_actions
from ...services import schedule as schedule_service
from ...services.errors import (
    BookingError,
    FormAlreadyUsedError,
    SlotTakenError,
    TooManyUpcomingError,
    UnknownConsultationTypeError,
)
from ...staff_action_forms import CancelForm, StaffBookingForm, StaffRescheduleForm
from .. import picker
from .access import current_staff, roles, visible_booking

bp = Blueprint("actions", __name__, url_prefix="/bookings")

ALTERNATIVES_SHOWN = 6


def _detail(booking_id: int):
    return redirect(url_for("staff.bookings.detail", booking_id=booking_id), code=303)


# --- cancel -----------------------------------------------------------------------------------


@bp.route("/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel(booking_id: int):
    booking = visible_booking(booking_id)
    if not booking.is_active:
        flash("This booking is already cancelled.", "ok")
        return _detail(booking.id)
    form = CancelForm()
    if form.validate_on_submit():
        staff_actions.cancel(
            booking.id, form.reason.data, account_id=current_staff().id, note=form.note.data or ""
        )
        flash("Cancelled. The patient, the clinician and the clinic mailbox are emailed.", "ok")
        return _detail(booking.id)
    status = 422 if form.is_submitted() else 200
    return render_template("staff/actions/cancel.html", booking=booking, form=form), status


# --- reschedule -------------------------------------------------------------------------------


def _reschedule_links(booking_id: int) -> picker.PickerLinks:
    return picker.reschedule_links(
        "staff.actions.reschedule", "staff.actions.confirm_reschedule", booking_id=booking_id
    )


def _picker(
    consultation_type: ConsultationType,
    default_clinician: int | None,
    links,
    moving: Booking | None = None,
):
    # No parameter: the default clinician; an empty one: "any clinician".
    raw = request.args.get("clinician")
    clinician_id = default_clinician if raw is None else inputs.parse_id(raw)
    return picker.build(
        consultation_type,
        clinician_id=clinician_id,
        week=picker.parse_day(request.args.get("week"), consultation_type),
        day=picker.parse_day(request.args.get("day"), consultation_type),
        links=links,
        moving=moving,
    )


@bp.get("/<int:booking_id>/reschedule")
def reschedule(booking_id: int):
    booking = visible_booking(booking_id)
    if not booking.is_active:
        flash("A cancelled booking can't be moved.", "error")
        return _detail(booking.id)
    view = _picker(
        booking.consultation_type,
        booking.clinician_id,
        _reschedule_links(booking.id),
        moving=booking,
    )
    return render_template("staff/actions/reschedule.html", view=view, booking=booking)


@bp.route("/<int:booking_id>/reschedule/confirm", methods=["GET", "POST"])
def confirm_reschedule(booking_id: int):
    booking = visible_booking(booking_id)
    form = StaffRescheduleForm()
    if request.method == "GET":
        form.slot.data = inputs.clean_text(request.args.get("slot"))
        return _render_confirm(booking, form, lifecycle.reschedule_problem(booking, form.slot.data))
    if not form.validate_on_submit():
        abort(400)
    try:
        staff_actions.reschedule(booking.id, form.slot.data, account_id=current_staff().id)
    except BookingError as error:
        return _render_confirm(visible_booking(booking_id), form, error)
    flash("Moved. The patient, the clinician and the clinic mailbox are emailed.", "ok")
    return _detail(booking.id)


def _render_confirm(booking: Booking, form: StaffRescheduleForm, error: BookingError | None):
    choice = booking_service.parse_slot_key(form.slot.data)
    alternatives = []
    if error is not None:
        alternatives = picker.reschedule_alternatives(
            booking, choice, ALTERNATIVES_SHOWN, _reschedule_links(booking.id).choose
        )
    page = render_template(
        "staff/actions/confirm_reschedule.html",
        booking=booking,
        form=form,
        choice=None if error else choice,
        problem=str(error) if error else "",
        taken=isinstance(error, SlotTakenError),
        alternatives=alternatives,
        clinicians=schedule_service.clinician_names(),
    )
    return page, (error.status_code if error else 200)


# --- a booking for a caller -------------------------------------------------------------------


def _new_links(consultation_type: ConsultationType) -> picker.PickerLinks:
    return picker.PickerLinks(
        page=lambda clinician_id, **args: url_for(
            "staff.actions.new_booking",
            type=consultation_type.id,
            clinician="" if clinician_id is None else clinician_id,
            **args,
        ),
        choose=lambda key: url_for(
            "staff.actions.new_booking_details", type=consultation_type.id, slot=key
        ),
        filter_action=url_for("staff.actions.new_booking"),
    )


def _type_or_404(raw: str | None) -> ConsultationType:
    try:
        return schedule_service.get_consultation_type(inputs.parse_id(raw))
    except UnknownConsultationTypeError:
        abort(404)


@bp.get("/new")
@roles(ROLE_ADMIN, ROLE_FRONTDESK)
def new_booking():
    """Choose the type, then a time in the patients' own picker."""
    types = schedule_service.active_consultation_types()
    if not request.args.get("type", "").strip():
        return render_template("staff/actions/new_type.html", types=types)
    consultation_type = _type_or_404(request.args.get("type"))
    view = _picker(consultation_type, None, _new_links(consultation_type))
    return render_template("staff/actions/new_pick.html", view=view, types=types)


@bp.route("/new/details", methods=["GET", "POST"])
@roles(ROLE_ADMIN, ROLE_FRONTDESK)
def new_booking_details():
    form = StaffBookingForm()
    if request.method == "GET":
        form.consultation_type.data = inputs.clean_text(request.args.get("type"))
        form.slot.data = inputs.clean_text(request.args.get("slot"))
        form.idempotency_key.data = uuid.uuid4().hex
        consultation_type = _type_or_404(form.consultation_type.data)
        return _render_details(
            form, consultation_type, booking_service.slot_problem(consultation_type, form.slot.data)
        )
    consultation_type = _type_or_404(form.consultation_type.data)
    if not form.validate_on_submit():
        return _render_details(form, consultation_type, None, status=422)
    patient = booking_service.PatientDetails(
        name=form.full_name.data,
        email=form.email.data,
        phone_e164=form.phone_e164,
        birth_date=form.birth_date.data,
        note=form.note.data or "",
    )
    try:
        booking = staff_actions.book_for_caller(
            consultation_type_id=consultation_type.id,
            key=form.slot.data,
            patient=patient,
            idempotency_key=form.idempotency_key.data,
            account_id=current_staff().id,
            override_upcoming_limit=bool(form.override_upcoming_limit.data),
        )
    except FormAlreadyUsedError as error:
        return _render_details(form, consultation_type, error, status=422, keep_choice=True)
    except TooManyUpcomingError as error:
        return _render_details(form, consultation_type, error, keep_choice=True)
    except BookingError as error:
        return _render_details(form, consultation_type, error)
    flash(
        f"Booked {booking.reference}. The patient is emailed the confirmation and their link.",
        "ok",
    )
    return _detail(booking.id)


def _render_details(
    form: StaffBookingForm,
    consultation_type: ConsultationType,
    error: BookingError | None,
    *,
    status: int | None = None,
    keep_choice: bool = False,
):
    """The caller's details for the chosen time; when the time can't be had, the nearest
    free times instead (the details typed so far are kept)."""
    choice = booking_service.parse_slot_key(form.slot.data)
    alternatives = []
    if error is not None and not keep_choice:
        alternatives = picker.alternatives_near(
            consultation_type, choice, ALTERNATIVES_SHOWN, _new_links(consultation_type).choose
        )
    page = render_template(
        "staff/actions/new_details.html",
        form=form,
        consultation_type=consultation_type,
        choice=choice if (error is None or keep_choice) else None,
        problem=str(error) if error else "",
        taken=isinstance(error, SlotTakenError),
        too_many=isinstance(error, TooManyUpcomingError),
        alternatives=alternatives,
    )
    if status is None:
        status = error.status_code if error is not None else 200
    return page, status
