"""Reads the schedule from the database into the pure engine's inputs, and asks the engine."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import selectinload

from .. import clock, scheduling
from ..clinic import clinic_timezone
from ..extensions import db
from ..models import ACTIVE_BOOKING_SQL, Booking, Clinician, Closure, ConsultationType
from .errors import UnknownConsultationTypeError

# Bookings this far either side of a window can still block it through buffers and DST shifts.
BOOKED_MARGIN = timedelta(days=2)


def active_consultation_types() -> list[ConsultationType]:
    query = select(ConsultationType).where(ConsultationType.is_active)
    return list(db.session.scalars(query.order_by(ConsultationType.display_order)))


def get_consultation_type(type_id: int | None) -> ConsultationType:
    consultation_type = db.session.get(ConsultationType, type_id) if type_id else None
    if consultation_type is None or not consultation_type.is_active:
        raise UnknownConsultationTypeError()
    return consultation_type


def active_clinicians() -> list[Clinician]:
    query = (
        select(Clinician)
        .where(Clinician.is_active)
        .order_by(Clinician.display_order, Clinician.id)
        .options(selectinload(Clinician.weekly_hours))  # one query for every clinician's hours
    )
    return list(db.session.scalars(query))


def rules_for(consultation_type: ConsultationType) -> scheduling.ConsultationRules:
    return scheduling.ConsultationRules(
        duration=timedelta(minutes=consultation_type.duration_minutes),
        slot_interval=timedelta(minutes=consultation_type.slot_interval_minutes),
        min_notice=timedelta(minutes=consultation_type.min_notice_minutes),
        horizon=timedelta(days=consultation_type.horizon_days),
        buffer_before=timedelta(minutes=consultation_type.buffer_before_minutes),
        buffer_after=timedelta(minutes=consultation_type.buffer_after_minutes),
    )


def load_schedule(now: datetime) -> scheduling.Schedule:
    """Active clinicians, their weekly hours and the closures that have not ended yet."""
    closures = db.session.scalars(select(Closure).where(Closure.ends_at > now)).all()
    clinicians = []
    for clinician in active_clinicians():
        clinicians.append(
            scheduling.ClinicianSchedule(
                clinician_id=clinician.id,
                weekly_hours=tuple(
                    scheduling.WeeklyRange(h.weekday, h.start_time, h.end_time)
                    for h in clinician.weekly_hours
                ),
                closures=tuple(
                    scheduling.Span(c.starts_at, c.ends_at)
                    for c in closures
                    if c.clinician_id == clinician.id
                ),
                daily_cap=clinician.daily_cap,
            )
        )
    return scheduling.Schedule(
        timezone=clinic_timezone(),
        clinicians=tuple(clinicians),
        clinic_closures=tuple(
            scheduling.Span(c.starts_at, c.ends_at) for c in closures if c.clinician_id is None
        ),
    )


def load_booked(
    window_start: datetime, window_end: datetime, clinician_ids: Collection[int] | None = None
) -> list[scheduling.Booked]:
    """Active bookings near the window, each with its own consultation type's buffers."""
    query = (
        select(
            Booking.clinician_id,
            Booking.starts_at,
            Booking.ends_at,
            ConsultationType.buffer_before_minutes,
            ConsultationType.buffer_after_minutes,
        )
        .join(ConsultationType, Booking.consultation_type_id == ConsultationType.id)
        .where(text(f"booking.{ACTIVE_BOOKING_SQL}"))
        .where(Booking.starts_at < window_end + BOOKED_MARGIN)
        .where(Booking.ends_at > window_start - BOOKED_MARGIN)
    )
    if clinician_ids is not None:
        query = query.where(Booking.clinician_id.in_(list(clinician_ids)))
    return [
        scheduling.Booked(
            clinician_id=row.clinician_id,
            start=row.starts_at,
            end=row.ends_at,
            buffer_before=timedelta(minutes=row.buffer_before_minutes),
            buffer_after=timedelta(minutes=row.buffer_after_minutes),
        )
        for row in db.session.execute(query)
    ]


def local_day_bounds(start_date: date, days: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants bounding clinic-local days [start_date, start_date + days)."""
    start = datetime.combine(start_date, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(start_date + timedelta(days=days), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def free_slots(
    consultation_type: ConsultationType,
    start_date: date,
    days: int,
    clinician_id: int | None = None,
) -> list[scheduling.Slot]:
    """Free slots for a type over clinic-local days; one per time when any clinician will do."""
    now = clock.now()
    schedule = load_schedule(now)
    window = local_day_bounds(start_date, days, schedule.timezone)
    clinician_ids = None if clinician_id is None else [clinician_id]
    booked = load_booked(*window, clinician_ids)
    slots = scheduling.free_slots(
        schedule,
        rules_for(consultation_type),
        booked,
        now=now,
        start_date=start_date,
        days=days,
        clinician_ids=clinician_ids,
    )
    if clinician_id is None:
        slots = scheduling.one_per_start(slots, booked, schedule.timezone)
    return slots


def first_available(
    consultation_type: ConsultationType, clinician_id: int | None = None
) -> scheduling.Slot | None:
    now = clock.now()
    schedule = load_schedule(now)
    rules = rules_for(consultation_type)
    clinician_ids = None if clinician_id is None else [clinician_id]
    booked = load_booked(now, now + rules.horizon, clinician_ids)
    return scheduling.first_available(schedule, rules, booked, now=now, clinician_ids=clinician_ids)
