"""The patient's manage link: see, cancel or move a booking, and get its calendar file again.

The token in the URL is the patient's key, so these pages are never cached, send no
referrer, and nothing here logs the path or the token (the booking id is logged instead).
Every change is a POST with a CSRF token. Flask-WTF's HTTPS referrer check is not applied
here: these pages send no referrer on purpose, so the check would refuse every form; the
form's own token, the unguessable token in the URL and a same-origin check stand in for it.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)

from .. import clock, inputs
from ..extensions import csrf
from ..forms import ManageCancelForm, ManageRescheduleForm
from ..models import Booking
from ..ratelimits import limit_manage
from ..services import booking as booking_service
from ..services import lifecycle, manage_links
from ..services.errors import BookingError, SlotTakenError
from . import calendar_download, picker

bp = Blueprint("manage", __name__, url_prefix="/manage")
csrf.exempt(bp)  # the forms check their own tokens (see the module docstring)

ALTERNATIVES_SHOWN = 6


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    # Set here, not by default: the app's default is same-origin, and the URL holds a key.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.before_request
def _same_origin_posts() -> None:
    if request.method != "POST":
        return
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        abort(403)
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        abort(403)


def _booking_or_404(token: str) -> Booking:
    booking = manage_links.booking_for_token(token)
    if booking is None:
        abort(404)
    return booking


def _gone(booking: Booking):
    return render_template("manage/gone.html", booking=booking), 410


def _is_over(booking: Booking) -> bool:
    return booking.ends_at <= clock.now()


def _live_booking(token: str) -> tuple[Booking, object | None]:
    """The booking, or the 410 page once it is cancelled or its time has passed."""
    booking = _booking_or_404(token)
    if not booking.is_active or _is_over(booking):
        return booking, _gone(booking)
    return booking, None


@bp.get("/<token>")
def show(token: str):
    booking, gone = _live_booking(token)
    if gone:
        return gone
    return _render_show(booking, token, done=request.args.get("done", ""))


@bp.get("/<token>/consultation.ics")
def download(token: str):
    booking, gone = _live_booking(token)
    if gone:
        return gone
    return calendar_download.booking_ics(booking)


@bp.post("/<token>/cancel")
@limit_manage
def cancel(token: str):
    booking, gone = _live_booking(token)
    if gone:
        return gone
    form = ManageCancelForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        lifecycle.cancel_booking(booking.id, actor="patient", reason="by the patient online")
    except BookingError as error:
        return _show_problem(booking, token, error)
    return redirect(url_for("manage.show", token=token), code=303)


@bp.get("/<token>/reschedule")
def reschedule(token: str):
    booking, gone = _live_booking(token)
    if gone:
        return gone
    if not lifecycle.patient_can_change(booking):
        return redirect(url_for("manage.show", token=token), code=303)
    # No parameter: the booking's own clinician; an empty one: "any clinician".
    clinician_arg = request.args.get("clinician")
    clinician_id = booking.clinician_id if clinician_arg is None else inputs.parse_id(clinician_arg)
    view = picker.build(
        booking.consultation_type,
        clinician_id=clinician_id,
        week=picker.parse_day(request.args.get("week"), booking.consultation_type),
        day=picker.parse_day(request.args.get("day"), booking.consultation_type),
        links=_reschedule_links(token),
        moving=booking,
    )
    return render_template("manage/reschedule.html", view=view, booking=booking, token=token)


@bp.route("/<token>/reschedule/confirm", methods=["GET", "POST"])
@limit_manage
def confirm_reschedule(token: str):
    booking, gone = _live_booking(token)
    if gone:
        return gone
    form = ManageRescheduleForm()
    if request.method == "GET":
        form.slot.data = request.args.get("slot", "")
        error = lifecycle.reschedule_problem(booking, form.slot.data)
        if error is None and not lifecycle.patient_can_change(booking):
            error = lifecycle.TooLateToChangeError()
        return _render_confirm(booking, token, form, error)
    if not form.validate_on_submit():
        abort(400)
    try:
        lifecycle.reschedule_booking(booking.id, key=form.slot.data, actor="patient")
    except BookingError as error:
        return _render_confirm(_booking_or_404(token), token, form, error)
    return redirect(url_for("manage.show", token=token, done="moved"), code=303)


def _render_confirm(booking: Booking, token: str, form, error: BookingError | None):
    choice = booking_service.parse_slot_key(form.slot.data)
    alternatives = []
    status = 200
    if error is not None:
        status = error.status_code
        alternatives = picker.reschedule_alternatives(
            booking, choice, ALTERNATIVES_SHOWN, _reschedule_links(token).choose
        )
    return (
        render_template(
            "manage/confirm_reschedule.html",
            booking=booking,
            token=token,
            form=form,
            choice=None if error else choice,
            problem=str(error) if error else "",
            taken=isinstance(error, SlotTakenError),
            alternatives=alternatives,
        ),
        status,
    )


def _render_show(booking: Booking, token: str, *, done: str = "", problem: str = "") -> str:
    return render_template(
        "manage/show.html",
        booking=booking,
        token=token,
        can_change=lifecycle.patient_can_change(booking),
        deadline=lifecycle.change_deadline(booking),
        cancel_form=ManageCancelForm(),
        problem=problem,
        done=done,
    )


def _show_problem(booking: Booking, token: str, error: BookingError):
    return _render_show(booking, token, problem=str(error)), error.status_code


def _reschedule_links(token: str) -> picker.PickerLinks:
    return picker.reschedule_links("manage.reschedule", "manage.confirm_reschedule", token=token)
