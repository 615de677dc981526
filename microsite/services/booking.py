"""Booking use-cases: the engine decides what is bookable, the database guarantees no overlap."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from sqlalchemy import bindparam, func, insert, inspect, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from .. import clock
from ..caching import availability_cache
from ..database import lock_patients, write_transaction
from ..extensions import db
from ..models import ACTIVE_BOOKING_SQL, Booking
from ..models.booking import BOOKING_CONFIRMED
from ..models.history import ACTOR_CLI, ACTOR_PATIENT, EVENT_CREATED
from . import outbox
from .errors import (
    BookingNotFoundError,
    FormAlreadyUsedError,
    SlotTakenError,
    TooManyUpcomingError,
)
from .history import record_event
from .slots import SlotChoice, SlotRequest, not_offered, parse_slot_key
from .slots import slot_key as slot_key  # the pages, the console and the tests name slots here
from .slots import slot_problem as slot_problem

log = logging.getLogger(__name__)

# Read aloud on the phone: no 0/O, no 1/I/L.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 6
REFERENCE_ATTEMPTS = 5


@dataclass(frozen=True)
class PatientDetails:
    name: str
    email: str
    phone_e164: str
    birth_date: date
    note: str = ""


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


# Built once: probed under the write lock on every booking.
_BOOKING_ID_BY_IDEMPOTENCY_KEY = select(Booking.id).where(
    Booking.idempotency_key == bindparam("key")
)


def find_by_idempotency_key(idempotency_key: str) -> Booking | None:
    # Probe with a bare id first: almost every booking is new, and this runs under the lock;
    # on the session's Core connection (same transaction), without the ORM's result machinery.
    probe = db.session.connection().execute(
        _BOOKING_ID_BY_IDEMPOTENCY_KEY, {"key": idempotency_key}
    )
    booking_id = probe.scalar()
    return None if booking_id is None else db.session.get(Booking, booking_id)


# Built once: one Core INSERT under the write lock, not the ORM's unit of work (which, with
# its history row, cost about a sixth of a booking). Every column is given, so no default runs.
_INSERT_BOOKING = insert(Booking.__table__)


def _insert_booking(row: dict) -> Booking:
    """Insert the row in the current transaction; the booking it made (not yet in the session)."""
    now = clock.now()
    values = {**row, "created_at": now, "updated_at": now}
    result = db.session.connection().execute(_INSERT_BOOKING, values)
    return Booking(id=result.inserted_primary_key[0], **values)


def _as_loaded(booking: Booking) -> Booking:
    """The inserted booking as if loaded from its row: in the session, relationships lazy."""
    if inspect(booking).key is None:
        make_transient_to_detached(booking)  # every column is set: nothing left to load
        db.session.add(booking)
    return booking


def _forget(booking: Booking | None) -> None:
    """After a rollback: the booking's row is gone, so it must not stay in the session (the
    ORM expunges a flushed object the same way; SQLite may hand its id to the next row)."""
    if booking is not None and inspect(booking).session is not None:
        db.session.expunge(booking)


def book_slot(
    *,
    consultation_type_id: int,
    key: str,
    patient: PatientDetails,
    idempotency_key: str,
    actor: str = ACTOR_PATIENT,
    override_upcoming_limit: bool = False,
    on_created: Callable[[Booking], None] | None = None,
) -> Booking:
    """Book the slot a key names for a patient, or raise a BookingError.

    The same idempotency key with the same slot and details always yields the same booking
    (double clicks, resent POSTs); with anything different it raises FormAlreadyUsedError.
    Inside one write transaction, with the clinicians' schedules locked (PostgreSQL), the engine
    re-checks the slot against every committed booking; the database constraint refuses
    whatever overlap slips past anyway. A patient (same email or phone) may hold at most
    MAX_UPCOMING_PER_PATIENT upcoming consultations (TooManyUpcomingError) unless
    `override_upcoming_limit` (staff booking for a caller who really needs another).
    `on_created` runs inside the booking's transaction (the console's audit row); not for a
    resent form that returns the booking it already made.
    """
    choice = parse_slot_key(key)
    if choice is None:
        raise not_offered()
    # Nothing is read before the write lock but the cached rules (and, for "any clinician",
    # the cached list of clinicians); under the lock the candidates' schedule is read fresh,
    # then the bookings re-checked.
    request = SlotRequest.prepare(consultation_type_id, choice)
    rules = request.rules
    ends_at = choice.start + rules.duration
    row = {
        "uid": f"{uuid.uuid4()}@{current_app.config['CLINIC_DOMAIN']}",
        "sequence": 0,
        "status": BOOKING_CONFIRMED,
        "consultation_type_id": request.consultation_type_id,
        "starts_at": choice.start,
        "ends_at": ends_at,
        # The buffered span the database guard compares (as `set_blocked_span` sets it).
        "blocked_starts_at": choice.start - rules.buffer_before,
        "blocked_ends_at": ends_at + rules.buffer_after,
        "patient_name": patient.name,
        "patient_email": patient.email,
        "patient_phone": patient.phone_e164,
        "patient_birth_date": patient.birth_date,
        "patient_note": patient.note,
        "idempotency_key": idempotency_key,
        "cancelled_at": None,
        "erased_at": None,
    }
    upcoming_limit = None if override_upcoming_limit else _upcoming_limit()
    for _attempt in range(REFERENCE_ATTEMPTS):
        # Drawn, not looked up: the unique constraint catches the one-in-a-billion repeat,
        # and checking first would cost a query under the write lock on every booking.
        row["reference"] = new_reference()
        booking = None
        try:
            with write_transaction():
                existing = find_by_idempotency_key(idempotency_key)
                if existing is not None:
                    return _same_request_or_refuse(existing, row, choice)
                if upcoming_limit is not None:
                    _refuse_too_many_upcoming(patient, upcoming_limit, request.now)
                row["clinician_id"] = request.free_clinician()
                booking = _insert_booking(row)
                record_event(booking, EVENT_CREATED, actor)
                # The emails commit with the booking or not at all; they are sent afterwards.
                outbox.queue_new_booking(booking)
                if on_created is not None:
                    on_created(_as_loaded(booking))
            break
        except (IntegrityError, SlotTakenError):
            _forget(booking)
            # Someone won the race: another patient, or this same form sent twice at once
            # (its twin committed while we checked). Only the first is the patient's problem.
            existing = find_by_idempotency_key(idempotency_key)
            if existing is not None:
                return _same_request_or_refuse(existing, row, choice)
            if _reference_taken(row["reference"]):
                continue
            log.info(
                "slot taken",
                extra={
                    "event": "booking.slot_taken",
                    "consultation_type_id": request.consultation_type_id,
                    "slot_start": choice.start.isoformat(),
                },
            )
            raise SlotTakenError(choice.start, choice.clinician_id) from None
        except BaseException:
            _forget(booking)
            raise
    else:
        raise RuntimeError("could not draw an unused booking reference")
    booking_id = booking.id
    booking = _as_loaded(booking)
    availability_cache().clear()
    log.info(
        "booking created",
        extra={
            "event": "booking.created",
            "booking_id": booking_id,
            "consultation_type_id": request.consultation_type_id,
            "actor": actor,
        },
    )
    outbox.wake_sender()
    return booking


def cancel_booking(
    reference: str, *, actor: str = ACTOR_CLI, on_change: Callable[[Booking], None] | None = None
) -> Booking:
    """Cancel a booking by its reference (the CLI's way in); see `lifecycle.cancel_booking`.

    Cancelling twice is harmless. Raises BookingNotFoundError for an unknown reference.
    `on_change` runs inside the cancellation's transaction (the command's audit row).
    """
    from . import lifecycle  # lifecycle builds on this module

    booking_id = db.session.scalar(
        select(Booking.id).where(Booking.reference == reference.strip().upper())
    )
    if booking_id is None:
        raise BookingNotFoundError()
    return lifecycle.cancel_booking(booking_id, actor=actor, on_change=on_change)


def _reference_taken(reference: str) -> bool:
    return bool(db.session.scalar(select(func.count()).where(Booking.reference == reference)))


def _upcoming_limit() -> int | None:
    limit = current_app.config.get("MAX_UPCOMING_PER_PATIENT")
    return None if limit is None or int(limit) <= 0 else int(limit)


def _refuse_too_many_upcoming(patient: PatientDetails, limit: int, now: datetime) -> None:
    """At most `limit` upcoming active consultations per email address and per phone number."""
    email = patient.email.strip().lower()
    lock_patients([f"email:{email}", f"phone:{patient.phone_e164}"])
    upcoming = db.session.scalar(
        select(func.count())
        .select_from(Booking)
        .where(text(f"booking.{ACTIVE_BOOKING_SQL}"))
        .where(Booking.starts_at > now)
        .where(
            or_(
                func.lower(Booking.patient_email) == email,
                Booking.patient_phone == patient.phone_e164,
            )
        )
    )
    if upcoming >= limit:
        raise TooManyUpcomingError(limit)


def _same_request_or_refuse(existing: Booking, new: dict, choice: SlotChoice) -> Booking:
    """A resent form gets its booking; the same form changed afterwards gets a clear refusal."""
    same = (
        existing.consultation_type_id == new["consultation_type_id"]
        and existing.starts_at == new["starts_at"]
        and (choice.clinician_id is None or existing.clinician_id == choice.clinician_id)
        and existing.patient_name == new["patient_name"]
        and existing.patient_email == new["patient_email"]
        and existing.patient_phone == new["patient_phone"]
        and existing.patient_birth_date == new["patient_birth_date"]
        and (existing.patient_note or "") == (new["patient_note"] or "")
    )
    if not same:
        raise FormAlreadyUsedError()
    return existing
