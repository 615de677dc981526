"""The audit trail: who did what to which booking, and when. Append-only.

The database refuses UPDATE and DELETE on this table (triggers, see migration 0005); the code
only ever inserts, through `services.audit`. `detail` holds short facts chosen by the code
("status attended", "2026-12-01..2026-12-07"), never patient data.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..database import UTCDateTime
from ..extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_booking_id", "booking_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    # None: a command run on the server (flask staff ...), not a signed-in person.
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("staff_account.id"))
    action: Mapped[str] = mapped_column(String(60))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    detail: Mapped[str] = mapped_column(String(200), default="")
