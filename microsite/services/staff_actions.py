"""What staff change from the console: cancel, reschedule, book for a caller, retry an email,
renew or revoke a calendar feed. Always through the services the public flow uses.

The rule: each change goes through the lifecycle, booking, outbox or feeds service (the same
engine and the same database guarantee as a patient), the history row names the staff member
(`staff:<id>`), and one audit row is added by a hook the service runs inside the change's own
transaction, so the change and its audit row commit together or not at all. No audit or
history detail holds patient data: a cancellation reason is a code from a fixed list, and
anything typed goes to the staff note table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Booking, OutboxMessage
from ..models.feeds import FeedToken
from ..models.history import staff_actor
from ..models.outbox import STATUS_FAILED, STATUS_SKIPPED
from . import booking as booking_service
from . import feeds, lifecycle, outbox, staff_bookings
from .audit import add_audit

# Why staff cancelled: the code goes to the audit row, the words to the booking's history.
# A fixed list, so neither can ever hold what a patient said; details go in a staff note.
CANCEL_REASONS = {
    "patient_request": "Patient asked to cancel",
    "clinician_unavailable": "Clinician unavailable",
    "clinic_closed": "Clinic closed",
    "booked_in_error": "Booked in error",
    "other": "Other reason (see the note)",
}
FAILED_MESSAGES_SHOWN = 200


def cancel(booking_id: int, reason: str, *, account_id: int, note: str = "") -> Booking:
    """Cancel for staff: the cancellations go out, the history says who and why (a code from
    CANCEL_REASONS), the audit row commits with the change. A note is kept as a staff note."""
    if reason not in CANCEL_REASONS:
        raise ValueError(f"unknown cancellation reason {reason!r}")
    booking = lifecycle.cancel_booking(
        booking_id,
        actor=staff_actor(account_id),
        reason=CANCEL_REASONS[reason],
        on_change=lambda b: add_audit(account_id, "booking.cancelled", b.id, detail=reason),
    )
    if note:
        staff_bookings.add_note(booking.id, note, author_id=account_id)
    return booking


def reschedule(booking_id: int, key: str, *, account_id: int) -> Booking:
    """Move a booking for staff (no patient cutoff; the same engine and constraint)."""

    def audit(booking: Booking) -> None:
        add_audit(account_id, "booking.rescheduled", booking.id, detail=f"to {key}")

    return lifecycle.reschedule_booking(
        booking_id, key=key, actor=staff_actor(account_id), on_change=audit
    )


def book_for_caller(
    *,
    consultation_type_id: int,
    key: str,
    patient: booking_service.PatientDetails,
    idempotency_key: str,
    account_id: int,
    override_upcoming_limit: bool,
) -> Booking:
    """A booking staff make for a patient who phoned; the patient gets the usual emails."""

    def audit(booking: Booking) -> None:
        detail = "limit overridden" if override_upcoming_limit else ""
        add_audit(account_id, "booking.created", booking.id, detail=detail)

    return booking_service.book_slot(
        consultation_type_id=consultation_type_id,
        key=key,
        patient=patient,
        idempotency_key=idempotency_key,
        actor=staff_actor(account_id),
        override_upcoming_limit=override_upcoming_limit,
        on_created=audit,
    )


def failed_messages(limit: int = FAILED_MESSAGES_SHOWN) -> list[OutboxMessage]:
    """Emails that gave up, newest first, with their bookings loaded (for the outbox page)."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == STATUS_FAILED)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
        .execution_options(populate_existing=True)  # senders update rows behind the ORM
    )
    return list(db.session.scalars(query))


def bookings_by_id(ids) -> dict[int, Booking]:
    query = (
        select(Booking)
        .options(joinedload(Booking.clinician))
        .where(Booking.id.in_(sorted(set(ids))))
    )
    return {b.id: b for b in db.session.scalars(query)}


def retry(message_id: int, *, account_id: int) -> OutboxMessage | None:
    """A failed message becomes due again now; the audit row names the message and booking.
    None when the message had not failed (already retried, sent meanwhile): nothing done."""
    current = db.session.get(OutboxMessage, message_id, populate_existing=True)
    if current is None:
        raise LookupError(f"no outbox message {message_id}")
    if current.status not in (STATUS_FAILED, STATUS_SKIPPED):
        return None

    def audit(message: OutboxMessage) -> None:
        add_audit(account_id, "outbox.retried", message.booking_id, detail=f"message {message.id}")

    return outbox.retry_message(message_id, on_change=audit)


def _owner(clinician_id: int | None) -> str:
    return "clinic" if clinician_id is None else f"clinician {clinician_id}"


def renew_feed(clinician_id: int | None, *, account_id: int) -> str:
    """A new feed token (the old link stops working); the plain token, to show once."""
    return feeds.create_feed(
        clinician_id,
        on_change=lambda: add_audit(account_id, "feed.renewed", detail=_owner(clinician_id)),
    )


def revoke_feed(clinician_id: int | None, *, account_id: int) -> bool:
    return feeds.revoke_feed(
        clinician_id,
        on_change=lambda: add_audit(account_id, "feed.revoked", detail=_owner(clinician_id)),
    )


def live_feeds() -> dict[int | None, datetime]:
    """Owner (clinician id, None for the clinic) -> when its working feed was made."""
    rows = db.session.execute(
        select(FeedToken.clinician_id, FeedToken.created_at).where(FeedToken.revoked_at.is_(None))
    ).all()
    return dict(rows)
