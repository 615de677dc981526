"""A patient's rights over what we hold: a copy of it (access) and its erasure.

Bookings are found by the email address the patient gave, compared without case. An erasure
never takes a clinician's time away silently: upcoming bookings are refused unless the caller
asks for them to be cancelled first, through the same service a cancellation always uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..models import Booking
from ..models.history import ACTOR_CLI
from . import outbox
from .audit import add_audit
from .booking import cancel_booking
from .history import booking_history
from .retention import REASON_PATIENT_REQUEST, erase_patient_details

log = logging.getLogger(__name__)


class UpcomingBookingsError(RuntimeError):
    """The patient still has bookings to come; erasing them would leave the clinician waiting."""

    def __init__(self, references: list[str]) -> None:
        self.references = references
        super().__init__(
            f"{len(references)} upcoming booking(s) ({', '.join(references)}) would be erased "
            "while still booked. Nothing was erased. Cancel them first, or pass "
            "--include-upcoming to cancel them and erase everything."
        )


@dataclass(frozen=True)
class ErasureResult:
    erased: list[str]  # references
    cancelled: list[str]


def bookings_for_email(email: str) -> list[Booking]:
    """Every booking that still holds this address, oldest appointment first."""
    return list(
        db.session.scalars(
            select(Booking)
            .where(func.lower(Booking.patient_email) == email.strip().lower())
            .where(Booking.erased_at.is_(None))
            .order_by(Booking.starts_at, Booking.id)
        )
    )


def is_upcoming(booking: Booking, now: datetime) -> bool:
    """Still holding a clinician's time that has not yet passed."""
    return booking.is_active and booking.ends_at > now


def export_patient(email: str) -> dict[str, Any]:
    """Everything held for this address, as plain JSON-ready data (for an access request)."""
    bookings = bookings_for_email(email)
    export = {
        "email": email.strip(),
        "exported_at": _iso(clock.now()),
        "clinic_timezone": current_app.config["CLINIC_TIMEZONE"],
        "bookings": [_booking_record(booking) for booking in bookings],
    }
    db.session.rollback()
    with write_transaction():
        for booking_id in (record["id"] for record in export["bookings"]):
            add_audit(None, "patient.exported", booking_id=booking_id)
    log.info("patient data exported", extra={"event": "patient.exported", "count": len(bookings)})
    return export


def erase_patient(email: str, *, include_upcoming: bool = False) -> ErasureResult:
    """Erase the patient details of every booking held for this address (see module rule)."""
    now = clock.now()
    bookings = bookings_for_email(email)
    upcoming = [b.reference for b in bookings if is_upcoming(b, now)]
    ids = [b.id for b in bookings]
    db.session.rollback()
    if upcoming and not include_upcoming:
        raise UpcomingBookingsError(upcoming)
    for reference in upcoming:
        # Through the lifecycle, so the clinician's calendar gets its CANCEL (queued here, sent
        # after; staff emails carry no patient details, so erasing below does not stop it).
        cancel_booking(reference, actor=ACTOR_CLI)
    erased = []
    with write_transaction():
        for booking in db.session.scalars(
            select(Booking).where(Booking.id.in_(ids)).order_by(Booking.starts_at)
        ):
            if booking.erased_at is None and not is_upcoming(booking, clock.now()):
                erase_patient_details(booking, actor=ACTOR_CLI, reason=REASON_PATIENT_REQUEST)
                erased.append(booking.reference)
    log.info(
        "patient data erased",
        extra={"event": "patient.erased", "count": len(erased), "cancelled": len(upcoming)},
    )
    return ErasureResult(erased=erased, cancelled=upcoming)


def _booking_record(booking: Booking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "reference": booking.reference,
        "uid": booking.uid,
        "status": booking.status,
        "starts_at": _iso(booking.starts_at),
        "ends_at": _iso(booking.ends_at),
        "clinician": booking.clinician.name,
        "consultation_type": booking.consultation_type.name,
        "patient": {
            "name": booking.patient_name,
            "email": booking.patient_email,
            "phone": booking.patient_phone,
            "birth_date": booking.patient_birth_date.isoformat(),
            "note": booking.patient_note,
        },
        "created_at": _iso(booking.created_at),
        "updated_at": _iso(booking.updated_at),
        "cancelled_at": _iso(booking.cancelled_at),
        "history": [
            {"at": _iso(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail}
            for e in booking_history(booking.id)
        ],
        "emails": [
            {
                "kind": m.kind,
                "recipient": m.recipient_role,
                "status": m.status,
                "created_at": _iso(m.created_at),
                "sent_at": _iso(m.sent_at),
            }
            for m in outbox.messages_for_booking(booking.id)
        ],
    }


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat().replace("+00:00", "Z")
