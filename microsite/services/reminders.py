"""Reminders: one per booking and start time, queued REMINDER_BEFORE ahead; safe to repeat.

`queue_due_reminders` may run every few minutes from cron, from two machines at once: the
outbox's unique `dedupe_key` (booking id + start) makes a second reminder impossible, and a
reschedule earns the new time its own. Never for a cancelled or past booking, nor for one
booked inside the window (its confirmation has only just arrived).
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..config import duration_setting
from ..database import write_transaction
from ..extensions import db
from ..models import ACTIVE_BOOKING_SQL, Booking, OutboxMessage
from ..models.outbox import KIND_REMINDER
from . import outbox

log = logging.getLogger(__name__)


def queue_due_reminders() -> int:
    """Queue the reminders that are due now; the number queued."""
    now = clock.now()
    before = duration_setting(current_app.config["REMINDER_BEFORE"])
    already = select(OutboxMessage.id).where(
        and_(
            OutboxMessage.booking_id == Booking.id,
            OutboxMessage.kind == KIND_REMINDER,
            OutboxMessage.starts_at == Booking.starts_at,
        )
    )
    due_query = (
        select(Booking.id, Booking.created_at, Booking.starts_at)
        .where(db.text(f"booking.{ACTIVE_BOOKING_SQL}"))
        .where(Booking.starts_at > now, Booking.starts_at <= now + before)
        .where(~already.exists())
        .order_by(Booking.starts_at)
    )
    # Booked inside the window: the confirmation is its reminder (compared here, in Python,
    # because SQLite cannot subtract an interval from a stored time).
    due = [
        booking_id
        for booking_id, created_at, starts_at in db.session.execute(due_query).all()
        if created_at < starts_at - before
    ]
    queued = 0
    for booking_id in due:
        try:
            with write_transaction():
                booking = db.session.get(Booking, booking_id, populate_existing=True)
                if booking.is_active and booking.starts_at > now:
                    outbox.queue_reminder(booking)
                    queued += 1
        except IntegrityError:
            continue  # another run queued it a moment ago: that one is enough
    if queued:
        log.info("reminders queued", extra={"event": "reminders.queued", "count": queued})
        outbox.wake_sender()
    return queued
