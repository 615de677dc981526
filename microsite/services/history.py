"""Recording what happens to a booking; called inside the service's own write transaction."""

from __future__ import annotations

from sqlalchemy import insert

from .. import clock
from ..extensions import db
from ..models import Booking, BookingEvent

# Built once: a plain INSERT on the session's connection, not an ORM object for the unit of
# work to flush (a booking writes this row under the write lock).
_INSERT_EVENT = insert(BookingEvent.__table__)


def record_event(booking: Booking, kind: str, actor: str, detail: str = "") -> None:
    """Write one history row for the booking in the current transaction (the caller commits)."""
    row = {"booking_id": booking.id, "kind": kind, "actor": actor, "detail": detail[:200]}
    db.session.connection().execute(_INSERT_EVENT, {**row, "at": clock.now()})


def booking_history(booking_id: int) -> list[BookingEvent]:
    """The booking's history, oldest first."""
    return list(
        db.session.scalars(
            db.select(BookingEvent)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.at, BookingEvent.id)
        )
    )
