"""What staff read and change about bookings: search, day ranges, attendance, internal notes.

Reads are filtered by who may see what (`clinician_ids`: None = every clinician). Each change
writes its history row, its audit row and the change itself in one write transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import joinedload

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..models import (
    BOOKING_ATTENDED,
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_NO_SHOW,
    Booking,
    StaffNote,
)
from ..models.history import (
    EVENT_ATTENDANCE_CLEARED,
    EVENT_ATTENDED,
    EVENT_NO_SHOW,
    staff_actor,
)
from .audit import add_audit
from .errors import BookingError, BookingNotFoundError
from .history import record_event

ATTENDANCE_EVENTS = {
    BOOKING_ATTENDED: EVENT_ATTENDED,
    BOOKING_NO_SHOW: EVENT_NO_SHOW,
    BOOKING_CONFIRMED: EVENT_ATTENDANCE_CLEARED,
}


class AttendanceError(BookingError):
    status_code = 409


@dataclass(frozen=True)
class BookingFilters:
    since: datetime | None = None
    until: datetime | None = None
    clinician_id: int | None = None
    consultation_type_id: int | None = None
    status: str = ""
    text: str = ""


@dataclass
class Page:
    items: list[Booking]
    total: int
    number: int
    size: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        self.pages = max(1, math.ceil(self.total / self.size))


def _visible(query: Select, clinician_ids: Sequence[int] | None) -> Select:
    if clinician_ids is None:
        return query
    return query.where(Booking.clinician_id.in_(list(clinician_ids)))


def _search_terms(query: Select, text: str) -> Select:
    """Name or email (contains, any case), reference (exact), phone (its digits, contained)."""
    text = text.strip()
    if not text:
        return query
    like = f"%{text.lower().replace('%', '').replace('_', '')}%"
    conditions = [
        func.lower(Booking.patient_name).like(like),
        func.lower(Booking.patient_email).like(like),
        Booking.reference == text.upper(),
    ]
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 4:
        conditions.append(Booking.patient_phone.like(f"%{digits}%"))
    return query.where(or_(*conditions))


def search_bookings(
    filters: BookingFilters, clinician_ids: Sequence[int] | None, *, page: int, page_size: int
) -> Page:
    """One page of matching bookings, by start time."""
    query = _visible(select(Booking), clinician_ids)
    if filters.since is not None:
        query = query.where(Booking.starts_at >= filters.since)
    if filters.until is not None:
        query = query.where(Booking.starts_at < filters.until)
    if filters.clinician_id is not None:
        query = query.where(Booking.clinician_id == filters.clinician_id)
    if filters.consultation_type_id is not None:
        query = query.where(Booking.consultation_type_id == filters.consultation_type_id)
    if filters.status:
        query = query.where(Booking.status == filters.status)
    query = _search_terms(query, filters.text)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 1), pages)
    items = db.session.scalars(
        query.options(joinedload(Booking.clinician), joinedload(Booking.consultation_type))
        .order_by(Booking.starts_at, Booking.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return Page(list(items), total, page, page_size)


def bookings_between(
    since: datetime,
    until: datetime,
    clinician_ids: Sequence[int] | None,
    *,
    include_cancelled: bool = True,
) -> list[Booking]:
    """Bookings that overlap [since, until), by start time."""
    query = _visible(
        select(Booking).where(Booking.starts_at < until, Booking.ends_at > since), clinician_ids
    )
    if not include_cancelled:
        query = query.where(Booking.status != BOOKING_CANCELLED)
    query = query.options(joinedload(Booking.clinician), joinedload(Booking.consultation_type))
    return list(db.session.scalars(query.order_by(Booking.starts_at, Booking.id)))


def mark_attendance(booking_id: int, status: str, *, actor_account_id: int) -> Booking:
    """Mark a booking attended or no-show (or clear the mark) once its time has begun."""
    if status not in ATTENDANCE_EVENTS:
        raise AttendanceError("Choose attended, no-show or not yet marked.")
    with write_transaction():
        booking = db.session.get(Booking, booking_id)
        if booking is None:
            raise BookingNotFoundError()
        if booking.status == BOOKING_CANCELLED:
            raise AttendanceError("A cancelled booking can't be marked attended or no-show.")
        if booking.starts_at > clock.now():
            raise AttendanceError("Attendance can be marked once the consultation has begun.")
        if booking.status != status:
            previous = booking.status
            booking.status = status
            record_event(booking, ATTENDANCE_EVENTS[status], staff_actor(actor_account_id))
            add_audit(
                actor_account_id,
                "booking.attendance",
                booking.id,
                detail=f"{previous} -> {status}",
            )
    return booking


def add_note(booking_id: int, body: str, *, author_id: int) -> StaffNote:
    """An internal note on the booking; the audit row says a note was added, not what it says."""
    with write_transaction():
        booking = db.session.get(Booking, booking_id)
        if booking is None:
            raise BookingNotFoundError()
        note = StaffNote(booking_id=booking.id, author_id=author_id, body=body)
        db.session.add(note)
        db.session.flush()
        add_audit(author_id, "booking.note_added", booking.id, detail=f"note {note.id}")
    return note


def notes_for(booking_id: int) -> list[StaffNote]:
    query = (
        select(StaffNote)
        .options(joinedload(StaffNote.author))
        .where(StaffNote.booking_id == booking_id)
        .order_by(StaffNote.created_at, StaffNote.id)
    )
    return list(db.session.scalars(query))


def day_range_label(first: date, last: date) -> str:
    """An audit detail for a range of days (dates only, nothing about a patient)."""
    return f"{first.isoformat()}..{last.isoformat()}"
