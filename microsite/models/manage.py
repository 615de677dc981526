"""Patients' manage links: only a SHA-256 of each random token is stored, never the token.

Every patient email carries a fresh token (the plain token exists only in that email), and
every token of a booking opens the same booking, so the link in the first confirmation keeps
working after a reschedule or a reminder. A link dies with its booking: once it is cancelled
or its time has passed the page answers 410.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..database import UTCDateTime
from ..extensions import db


class ManageLink(db.Model):
    __tablename__ = "manage_link"
    __table_args__ = (Index("ix_manage_link_booking_id", "booking_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
