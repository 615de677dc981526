"""The outbox for front desk and admin: emails that gave up, each with Retry (POST, audited)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ...extensions import db
from ...models import OutboxMessage
from ...models.staff import ROLE_ADMIN, ROLE_FRONTDESK
from ...services import outbox as outbox_service
from ...services import staff_actions
from ...services.audit import record_audit
from ...staff_forms import PostForm
from .access import current_staff, roles

bp = Blueprint("outbox", __name__, url_prefix="/outbox")


@bp.get("/")
@roles(ROLE_ADMIN, ROLE_FRONTDESK)
def failed():
    messages = staff_actions.failed_messages()
    record_audit(current_staff().id, "outbox.viewed", detail=f"{len(messages)} failed")
    return render_template(
        "staff/outbox.html",
        messages=messages,
        bookings=staff_actions.bookings_by_id(m.booking_id for m in messages),
        summary=outbox_service.health_summary(),
        retry_form=PostForm(),
    )


@bp.post("/<int:message_id>/retry")
@roles(ROLE_ADMIN, ROLE_FRONTDESK)
def retry(message_id: int):
    if db.session.get(OutboxMessage, message_id) is None:
        abort(404)
    if not PostForm().validate_on_submit():
        abort(400)
    if staff_actions.retry(message_id, account_id=current_staff().id) is None:
        flash("That email had not failed (it may have been retried already).", "ok")
    else:
        flash("The email is queued to be sent again.", "ok")
    return redirect(url_for("staff.outbox.failed"), code=303)
