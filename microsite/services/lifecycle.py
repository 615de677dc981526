"""A booking's life after the form: cancel and reschedule, each in one write transaction.

Each change keeps the booking's UID, raises its SEQUENCE, adds a history row and queues its
emails in the same transaction, so calendars always receive a change that outranks every copy
they hold. A reschedule asks the same engine as a new booking, and the same database
constraint refuses an overlap: losing a race for the new time leaves the old booking as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..caching import availability_cache
from ..config import duration_setting
from ..database import write_transaction
from ..extensions import db
from ..models import BOOKING_CANCELLED, Booking
from ..models.history import ACTOR_PATIENT, EVENT_CANCELLED, EVENT_RESCHEDULED
from . import outbox
from . import schedule as schedule_service
from .errors import BookingError, BookingNotFoundError, SlotNotBookableError, SlotTakenError
from .history import record_event
from .slots import SlotRequest, not_offered, parse_slot_key

log = logging.getLogger(__name__)


class TooLateToChangeError(BookingError):
    """A patient tried to cancel or move a booking inside CANCEL_CUTOFF (HTTP 409)."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__(
            "It's too close to your consultation to change it online. "
            f"Please call us on {current_app.config['CLINIC_PHONE']}."
        )


class CurrentTimeError(SlotNotBookableError):
    """The time asked for is the one the booking already holds (HTTP 422, like any time the
    picker never offered: the reschedule picker leaves the current time out)."""

    def __init__(self) -> None:
        super().__init__(
            "That is the consultation's current time. Please choose another time.",
            reason="current_time",
        )


class BookingNotActiveError(BookingError):
    """The booking is cancelled; there is nothing left to move (HTTP 409)."""

    status_code = 409

    def __init__(self) -> None:
        super().__init__("This consultation has been cancelled.")


def change_deadline(booking: Booking) -> datetime:
    """Patients may cancel or move a booking online until this instant (CANCEL_CUTOFF)."""
    return booking.starts_at - duration_setting(current_app.config["CANCEL_CUTOFF"])


def patient_can_change(booking: Booking, now: datetime | None = None) -> bool:
    return booking.is_active and (now or clock.now()) < change_deadline(booking)


def _locked_booking(booking_id: int) -> Booking:
    # FOR UPDATE on PostgreSQL (two staff cancelling at once change it once); SQLite's write
    # transaction already excludes every other writer.
    booking = db.session.get(Booking, booking_id, with_for_update=True, populate_existing=True)
    if booking is None:
        raise BookingNotFoundError()
    return booking


# Called inside the change's own transaction (e.g. the console's audit row, so the change and
# its audit commit together or not at all); only when something changed.
OnChange = Callable[[Booking], None]


def cancel_booking(
    booking_id: int, *, actor: str, reason: str = "", on_change: OnChange | None = None
) -> Booking:
    """Cancel by status (the row, its UID and history stay); frees the time at once.

    SEQUENCE + 1, a `cancelled` history row and the CANCEL emails to the patient, the
    clinician and the clinic mailbox, all in one transaction. Cancelling twice changes nothing
    more. Patients (actor "patient") may cancel only until CANCEL_CUTOFF before the start.
    """
    changed = False
    with write_transaction():
        booking = _locked_booking(booking_id)
        if booking.is_active:
            if actor == ACTOR_PATIENT and not patient_can_change(booking):
                raise TooLateToChangeError()
            booking.status = BOOKING_CANCELLED
            booking.cancelled_at = clock.now()
            booking.sequence += 1  # the CANCEL must outrank every invite sent
            record_event(booking, EVENT_CANCELLED, actor, detail=reason)
            outbox.queue_cancellation(booking)
            if on_change is not None:
                on_change(booking)
            changed = True
    if changed:
        availability_cache().clear()
        log.info(
            "booking cancelled",
            extra={"event": "booking.cancelled", "booking_id": booking.id, "actor": actor},
        )
        outbox.wake_sender()
    return booking


def reschedule_booking(
    booking_id: int, *, key: str, actor: str, on_change: OnChange | None = None
) -> Booking:
    """Move a booking to the slot `key` names, in one transaction: the old time is freed as
    the new one is taken; same UID, SEQUENCE + 1, a `rescheduled` history row whose detail is
    the old start, and REQUEST emails to all three.

    Raises SlotTakenError / SlotNotBookableError exactly like `book_slot`; on either the
    booking is left as it was. Patients may move a booking only until CANCEL_CUTOFF.
    """
    choice = parse_slot_key(key)
    if choice is None:
        raise not_offered()
    current = db.session.get(Booking, booking_id)
    if current is None:
        raise BookingNotFoundError()
    # As in book_slot: the schedule is read before the write lock, the bookings under it.
    request = SlotRequest.prepare(current.consultation_type_id, choice)
    try:
        with write_transaction():
            booking = _locked_booking(booking_id)
            if not booking.is_active:
                raise BookingNotActiveError()
            if actor == ACTOR_PATIENT and not patient_can_change(booking):
                raise TooLateToChangeError()
            if schedule_service.is_current_time(booking, choice.start, choice.clinician_id):
                # A resent form, or the time it holds already: nothing to change, nothing to
                # send. Before the engine: with "any" clinician it could pick another one.
                return booking
            old_start, old_end, old_clinician = (
                booking.starts_at,
                booking.ends_at,
                booking.clinician_id,
            )
            # The booking's own time and buffers don't stand in its way; the row's update
            # passes the database guard too, which compares a booking with the others only.
            new_clinician = request.free_clinician(moving=schedule_service.booked_of(booking))
            booking.clinician_id = new_clinician
            booking.starts_at = choice.start
            booking.ends_at = choice.start + request.rules.duration
            booking.sequence += 1
            db.session.flush()  # the overlap constraint speaks here
            record_event(booking, EVENT_RESCHEDULED, actor, detail=f"from {_iso(old_start)}")
            outbox.queue_update(
                booking,
                previous_start=old_start,
                previous_end=old_end,
                previous_clinician_id=old_clinician,
            )
            if on_change is not None:
                on_change(booking)
    except IntegrityError:
        log.info("reschedule lost the race", extra={"event": "booking.slot_taken"})
        raise SlotTakenError(choice.start, choice.clinician_id) from None
    availability_cache().clear()
    log.info(
        "booking rescheduled",
        extra={"event": "booking.rescheduled", "booking_id": booking.id, "actor": actor},
    )
    outbox.wake_sender()
    return booking


def reschedule_problem(booking: Booking, key: str) -> BookingError | None:
    """Why the booking can't move to the slot `key` names right now, or None when it can."""
    choice = parse_slot_key(key)
    if choice is None:
        return not_offered()
    if not booking.is_active:
        return BookingNotActiveError()
    if schedule_service.is_current_time(booking, choice.start, choice.clinician_id):
        return CurrentTimeError()
    try:
        SlotRequest.prepare(booking.consultation_type_id, choice).free_clinician(
            schedule_service.booked_of(booking), lock=False
        )
    except BookingError as error:
        return error
    return None


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
