"""A booking's history: one row per thing that happened to it, and who did it.

Append-only by convention (services only add rows). `detail` is for short, non-patient facts
("from 2026-12-01T14:00Z", a cancellation reason chosen by staff); never a name or contact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..database import UTCDateTime
from ..extensions import db

# What happened. The console adds attendance and notes; the lifecycle adds the rest.
EVENT_CREATED = "created"
EVENT_RESCHEDULED = "rescheduled"
EVENT_CANCELLED = "cancelled"
EVENT_ATTENDED = "attended"
EVENT_NO_SHOW = "no_show"
# Staff corrected an attendance mark back to "confirmed" (booked, not yet marked).
EVENT_ATTENDANCE_CLEARED = "attendance_cleared"
# The patient's details were erased (retention purge or the patient's request); detail says which.
EVENT_ERASED = "erased"

# Who did it: "patient", "cli", "system", or "staff:<account id>".
ACTOR_PATIENT = "patient"
ACTOR_CLI = "cli"
ACTOR_SYSTEM = "system"


def staff_actor(account_id: int) -> str:
    return f"staff:{account_id}"


class BookingEvent(db.Model):
    __tablename__ = "booking_event"
    __table_args__ = (Index("ix_booking_event_booking_id", "booking_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"))
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    detail: Mapped[str] = mapped_column(String(200), default="")
