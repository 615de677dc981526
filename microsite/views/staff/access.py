"""Who may open a staff page: the guard every /staff/ request passes, and booking visibility.

Staff state lives under one key of Flask's session (`SESSION_KEY`), beside the patients' own
keys, which it never reads or clears.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, g, redirect, request, session, url_for

from ...extensions import db
from ...models import Booking, StaffAccount
from ...models.staff import ROLE_CLINICIAN
from ...services import staff_auth

SESSION_KEY = "staff_session_token"
OPEN_ENDPOINTS = frozenset({"staff.auth.login"})
# Open between the password and the second factor.
SECOND_FACTOR_ENDPOINTS = frozenset(
    {"staff.auth.second_factor", "staff.auth.enrol", "staff.auth.recovery", "staff.auth.logout"}
)


def roles(*allowed: str) -> Callable:
    """Limit a staff view to these roles; the guard answers 403 to the others."""

    def mark(view: Callable) -> Callable:
        view.staff_roles = frozenset(allowed)
        return view

    return mark


def guard():
    """Before every staff request: a live session, the second factor passed, the right role."""
    endpoint = request.endpoint or ""
    if endpoint in OPEN_ENDPOINTS:
        return None
    record = staff_auth.load_session(session.get(SESSION_KEY))
    if record is None:
        session.pop(SESSION_KEY, None)
        return redirect(url_for("staff.auth.login"), code=303)
    if not record.mfa_passed and endpoint not in SECOND_FACTOR_ENDPOINTS:
        return redirect(url_for("staff.auth.second_factor"), code=303)
    g.staff_session = record
    g.staff = record.account
    allowed = getattr(current_app.view_functions.get(endpoint), "staff_roles", None)
    if allowed is not None and g.staff.role not in allowed:
        abort(403)
    return None


def current_staff() -> StaffAccount:
    return g.staff


def can_see(account: StaffAccount, booking: Booking) -> bool:
    if account.role != ROLE_CLINICIAN or current_app.config["STAFF_CLINICIANS_SEE_ALL"]:
        return True
    return account.clinician_id is not None and booking.clinician_id == account.clinician_id


def visible_clinician_ids(account: StaffAccount) -> list[int] | None:
    """None: every clinician's bookings; otherwise only these clinicians'."""
    if account.role != ROLE_CLINICIAN or current_app.config["STAFF_CLINICIANS_SEE_ALL"]:
        return None
    return [account.clinician_id] if account.clinician_id is not None else []


def visible_booking(booking_id: int) -> Booking:
    """The booking, or 404 when it doesn't exist or isn't this account's to see."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not can_see(current_staff(), booking):
        abort(404)
    return booking
