"""The schedule and its bookings: clinicians, consultation types, hours, closures, bookings.

The overlap guarantee itself lives in the migrations (PostgreSQL exclusion constraint,
SQLite triggers over the buffered span, 0006), because it is DDL that the ORM cannot express on
both databases.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import clock
from ..database import UTCDateTime
from ..extensions import db

BOOKING_CONFIRMED = "confirmed"
BOOKING_CANCELLED = "cancelled"
# Set by staff after the start; both still hold the clinician's time (see ACTIVE_BOOKING_SQL).
BOOKING_ATTENDED = "attended"
BOOKING_NO_SHOW = "no_show"
BOOKING_STATUSES = (BOOKING_CONFIRMED, BOOKING_CANCELLED, BOOKING_ATTENDED, BOOKING_NO_SHOW)
# Every status but "cancelled" holds the clinician's time (a no-show still used the hour).
ACTIVE_BOOKING_SQL = "status <> 'cancelled'"

MODE_IN_PERSON = "in_person"
MODE_VIDEO = "video"


class Clinician(db.Model):
    __tablename__ = "clinician"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Most consultations this clinician takes on one local day; None means no cap.
    daily_cap: Mapped[int | None]
    display_order: Mapped[int] = mapped_column(default=0)

    weekly_hours: Mapped[list[WorkingHours]] = relationship(
        back_populates="clinician", cascade="all, delete-orphan", order_by="WorkingHours.weekday"
    )


class ConsultationType(db.Model):
    __tablename__ = "consultation_type"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="positive_duration"),
        CheckConstraint("slot_interval_minutes > 0", name="positive_interval"),
        CheckConstraint(f"mode IN ('{MODE_IN_PERSON}', '{MODE_VIDEO}')", name="known_mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int]
    buffer_before_minutes: Mapped[int] = mapped_column(default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(default=0)
    min_notice_minutes: Mapped[int] = mapped_column(default=0)
    horizon_days: Mapped[int] = mapped_column(default=60)
    slot_interval_minutes: Mapped[int] = mapped_column(default=30)
    is_active: Mapped[bool] = mapped_column(default=True)
    display_order: Mapped[int] = mapped_column(default=0)

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def is_video(self) -> bool:
        return self.mode == MODE_VIDEO


class WorkingHours(db.Model):
    """One range of a clinician's weekly hours, in the clinic's local wall-clock time.

    Several rows on one weekday make breaks (09:00-12:00 and 13:00-17:00).
    """

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_time < end_time", name="start_before_end"),
        # Every booking reads its clinician's hours under the write lock (migration 0008).
        Index("ix_working_hours_clinician_id", "clinician_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinician.id", ondelete="CASCADE"))
    weekday: Mapped[int]  # Monday = 0, as date.weekday()
    start_time: Mapped[time]
    end_time: Mapped[time]

    clinician: Mapped[Clinician] = relationship(back_populates="weekly_hours")


class Closure(db.Model):
    """A span when the clinic (clinician_id NULL) or one clinician takes no consultations."""

    __tablename__ = "closure"
    __table_args__ = (CheckConstraint("starts_at < ends_at", name="start_before_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinician.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(200), default="")


class Booking(db.Model):
    """A consultation. Never deleted: cancelled by status, so its UID and history survive."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint("starts_at < ends_at", name="start_before_end"),
        # The buffered span holds the appointment, so the database's refusal of overlapping
        # buffered spans also refuses overlapping appointments.
        CheckConstraint(
            "blocked_starts_at <= starts_at AND ends_at <= blocked_ends_at",
            name="buffered_span_holds_appointment",
        ),
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in BOOKING_STATUSES)})", name="known_status"
        ),
        UniqueConstraint("idempotency_key"),
        # Identical starts are refused on every database; overlaps by the migration's constraint.
        Index(
            "uq_booking_active_clinician_start",
            "clinician_id",
            "starts_at",
            unique=True,
            sqlite_where=text(ACTIVE_BOOKING_SQL),
            postgresql_where=text(ACTIVE_BOOKING_SQL),
        ),
        Index("ix_booking_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The calendar UID, kept forever; reschedules raise `sequence`, never change `uid`.
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    sequence: Mapped[int] = mapped_column(default=0)
    # Short code read out on the phone; no 0/O or 1/I.
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=BOOKING_CONFIRMED)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinician.id"))
    consultation_type_id: Mapped[int] = mapped_column(ForeignKey("consultation_type.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The time this booking keeps from others: the appointment widened by its type's buffers
    # as they were when it was booked. Filled in on flush (see `_fill_blocked_span`).
    blocked_starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    patient_name: Mapped[str] = mapped_column(String(120))
    patient_email: Mapped[str] = mapped_column(String(254))
    patient_phone: Mapped[str] = mapped_column(String(20))  # E.164
    patient_birth_date: Mapped[date]
    patient_note: Mapped[str] = mapped_column(Text, default="")
    # From the booking form; a resent POST finds the booking it already made.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=lambda: clock.now(), onupdate=lambda: clock.now()
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the patient's details were erased (retention or a request); time and UID stay.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    clinician: Mapped[Clinician] = relationship()
    consultation_type: Mapped[ConsultationType] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status != BOOKING_CANCELLED


_TYPE_BUFFERS = select(
    ConsultationType.buffer_before_minutes, ConsultationType.buffer_after_minutes
)


def set_blocked_span(booking: Booking, before: timedelta, after: timedelta) -> None:
    """Hold the appointment plus these buffers (the booking service knows them already)."""
    booking.blocked_starts_at = booking.starts_at - before
    booking.blocked_ends_at = booking.ends_at + after


@event.listens_for(Booking, "before_insert")
@event.listens_for(Booking, "before_update")
def _fill_blocked_span(_mapper, connection, booking: Booking) -> None:
    """Every ORM writer (services, commands, fixtures) keeps the buffered span in step.

    A new booking without a span, or one whose time or type changed without a new span, gets
    its consultation type's buffers read here, so no caller can forget them.
    """
    state = inspect(booking)
    span_given = booking.blocked_starts_at is not None and (
        not state.persistent
        or state.attrs.blocked_starts_at.history.has_changes()
        or state.attrs.blocked_ends_at.history.has_changes()
    )
    moved = any(
        state.attrs[name].history.has_changes()
        for name in ("starts_at", "ends_at", "consultation_type_id")
    )
    if span_given or (state.persistent and not moved):
        return
    before, after = connection.execute(
        _TYPE_BUFFERS.where(ConsultationType.id == booking.consultation_type_id)
    ).one()
    set_blocked_span(booking, timedelta(minutes=before), timedelta(minutes=after))
