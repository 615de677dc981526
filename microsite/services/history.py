"""Recording what happens to a booking; called inside the service's own write transaction."""

from __future__ import annotations

from ..extensions import db
from ..models import Booking, BookingEvent


def record_event(booking: Booking, kind: str, actor: str, detail: str = "") -> BookingEvent:
    """Add one history row for the booking to the current transaction (the caller commits)."""
    event = BookingEvent(booking_id=booking.id, kind=kind, actor=actor, detail=detail[:200])
    db.session.add(event)
    return event


def booking_history(booking_id: int) -> list[BookingEvent]:
    """The booking's history, oldest first."""
    return list(
        db.session.scalars(
            db.select(BookingEvent)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.at, BookingEvent.id)
        )
    )
