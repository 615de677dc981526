"""Reads the schedule from the database into the pure engine's inputs, and asks the engine."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, Result, bindparam, select, text

from .. import clock, scheduling
from ..caching import availability_cache, schedule_cache
from ..clinic import clinic_timezone
from ..database import UTCDateTime
from ..extensions import db
from ..models import (
    ACTIVE_BOOKING_SQL,
    MODE_VIDEO,
    Booking,
    Clinician,
    Closure,
    ConsultationType,
    WorkingHours,
)
from .errors import UnknownConsultationTypeError

# Bookings this far either side of a window can still block it through buffers and DST shifts.
BOOKED_MARGIN = timedelta(days=2)


def _rows(statement: Executable, params: dict | None = None) -> Result:
    """Plain rows of a prebuilt statement, on the session's connection and transaction.

    Core execution, not `Session.execute`: these reads want tuples, and the ORM's result
    machinery cost more than the query itself (0.74 against 0.45 ms for the bookings read).
    """
    return db.session.connection().execute(statement, params or {})


@dataclass(frozen=True, slots=True)
class ConsultationTypeInfo:
    """A consultation type as the pages and the engine read it: plain values, safe to share.

    The same attribute names as the model, so templates take either; changes go through
    the model.
    """

    id: int
    slug: str
    name: str
    mode: str
    description: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    horizon_days: int
    slot_interval_minutes: int
    is_active: bool
    display_order: int

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def is_video(self) -> bool:
        return self.mode == MODE_VIDEO


_TYPE_COLUMNS = tuple(
    getattr(ConsultationType, name) for name in ConsultationTypeInfo.__dataclass_fields__
)
# Built once: building a statement costs more than running it on SQLite.
_ACTIVE_TYPES = (
    select(*_TYPE_COLUMNS)
    .where(ConsultationType.is_active)
    .order_by(ConsultationType.display_order, ConsultationType.id)
)
_ACTIVE_TYPE = select(*_TYPE_COLUMNS).where(
    ConsultationType.is_active, ConsultationType.id == bindparam("type_id")
)
_CLINICIAN_NAMES = (
    select(Clinician.id, Clinician.name)
    .where(Clinician.is_active)
    .order_by(Clinician.display_order, Clinician.id)
)


def active_consultation_types() -> list[ConsultationTypeInfo]:
    """The types patients can book, in display order (cached briefly, like the schedule)."""
    return schedule_cache().get_or_compute(
        ("active-types",),
        lambda: [ConsultationTypeInfo(*row) for row in _rows(_ACTIVE_TYPES)],
    )


def get_consultation_type(type_id: int | None) -> ConsultationType:
    consultation_type = db.session.get(ConsultationType, type_id) if type_id else None
    if consultation_type is None or not consultation_type.is_active:
        raise UnknownConsultationTypeError()
    return consultation_type


def consultation_type_info(type_id: int | None) -> ConsultationTypeInfo:
    """An active consultation type's values, for reading (cached briefly, like the schedule).

    Raises UnknownConsultationTypeError for an unknown or inactive id, never cached.
    """
    if not type_id:
        raise UnknownConsultationTypeError()
    return schedule_cache().get_or_compute(("type", type_id), lambda: _read_type(type_id))


def _read_type(type_id: int) -> ConsultationTypeInfo:
    row = _rows(_ACTIVE_TYPE, {"type_id": type_id}).first()
    if row is None:
        raise UnknownConsultationTypeError()
    return ConsultationTypeInfo(*row)


def clinician_names() -> dict[int, str]:
    """Names of the clinicians who take bookings, by id, in display order (cached briefly)."""
    return schedule_cache().get_or_compute(
        ("clinician-names",),
        lambda: {clinician_id: name for clinician_id, name in _rows(_CLINICIAN_NAMES)},
    )


def rules_for(
    consultation_type: ConsultationType | ConsultationTypeInfo,
) -> scheduling.ConsultationRules:
    return scheduling.ConsultationRules(
        duration=timedelta(minutes=consultation_type.duration_minutes),
        slot_interval=timedelta(minutes=consultation_type.slot_interval_minutes),
        min_notice=timedelta(minutes=consultation_type.min_notice_minutes),
        horizon=timedelta(days=consultation_type.horizon_days),
        buffer_before=timedelta(minutes=consultation_type.buffer_before_minutes),
        buffer_after=timedelta(minutes=consultation_type.buffer_after_minutes),
    )


def consultation_rules(type_id: int) -> scheduling.ConsultationRules:
    """The engine's rules for an active consultation type (cached briefly: read per booking)."""
    return schedule_cache().get_or_compute(
        ("rules", type_id), lambda: rules_for(consultation_type_info(type_id))
    )


def load_schedule(
    now: datetime, clinician_ids: Collection[int] | None = None
) -> scheduling.Schedule:
    """Active clinicians (only these ids, if given), their weekly hours and open closures.

    Read on every slot list and every booking, so cached briefly (see `caching`).
    """
    key = ("schedule", None if clinician_ids is None else tuple(sorted(clinician_ids)))
    return schedule_cache().get_or_compute(key, lambda: _read_schedule(now, clinician_ids))


def current_schedule(
    now: datetime, clinician_ids: Collection[int], around: tuple[datetime, datetime]
) -> scheduling.Schedule:
    """These clinicians' schedule as committed now, never from the cache: for the re-check
    inside a booking's write transaction, after their schedule locks are held, so a closure,
    an hours change, a lower cap or a deactivation committed a moment ago (in any process)
    is what the booking is judged by. Only closures near `around` (the slot, BOOKED_MARGIN
    either side: its whole local day) are read, to keep the time under the write lock short."""
    since, until = around
    return _read_schedule(now, clinician_ids, (since - BOOKED_MARGIN, until + BOOKED_MARGIN))


_HOURS = (
    select(
        Clinician.id,
        Clinician.daily_cap,
        WorkingHours.weekday,
        WorkingHours.start_time,
        WorkingHours.end_time,
    )
    .outerjoin(WorkingHours, WorkingHours.clinician_id == Clinician.id)
    .where(Clinician.is_active)
    .order_by(Clinician.display_order, Clinician.id)
)
_HOURS_OF = _HOURS.where(Clinician.id.in_(bindparam("clinician_ids", expanding=True)))
# One clinician (every booking of a chosen clinician, under the write lock): `=`, because an
# expanding IN is rendered anew on every execution.
_HOURS_OF_ONE = _HOURS.where(Clinician.id == bindparam("clinician_id"))
_OPEN_CLOSURES = select(Closure.clinician_id, Closure.starts_at, Closure.ends_at).where(
    Closure.ends_at > bindparam("now", type_=UTCDateTime())
)
_CLOSURES_BETWEEN = _OPEN_CLOSURES.where(
    Closure.ends_at > bindparam("since", type_=UTCDateTime()),
    Closure.starts_at < bindparam("until", type_=UTCDateTime()),
)


def _read_schedule(
    now: datetime,
    clinician_ids: Collection[int] | None,
    closures_between: tuple[datetime, datetime] | None = None,
) -> scheduling.Schedule:
    """The schedule as plain rows, not ORM objects: one query for hours, one for closures
    (every open one, or only those overlapping `closures_between`)."""
    if clinician_ids is None:
        hours_rows = _rows(_HOURS)
    elif len(clinician_ids) == 1:
        hours_rows = _rows(_HOURS_OF_ONE, {"clinician_id": next(iter(clinician_ids))})
    else:
        hours_rows = _rows(_HOURS_OF, {"clinician_ids": list(clinician_ids)})
    caps: dict[int, int | None] = {}
    hours: dict[int, list[scheduling.WeeklyRange]] = {}
    for clinician_id, cap, weekday, start, end in hours_rows:
        caps[clinician_id] = cap
        ranges = hours.setdefault(clinician_id, [])
        if weekday is not None:
            ranges.append(scheduling.WeeklyRange(weekday, start, end))
    closures: dict[int | None, list[scheduling.Span]] = {}
    if closures_between is None:
        closure_rows = _rows(_OPEN_CLOSURES, {"now": now})
    else:
        since, until = closures_between
        closure_rows = _rows(_CLOSURES_BETWEEN, {"now": now, "since": since, "until": until})
    for clinician_id, starts_at, ends_at in closure_rows:
        closures.setdefault(clinician_id, []).append(scheduling.Span(starts_at, ends_at))
    return scheduling.Schedule(
        timezone=clinic_timezone(),
        clinicians=tuple(
            scheduling.ClinicianSchedule(
                clinician_id=clinician_id,
                weekly_hours=tuple(ranges),
                closures=tuple(closures.get(clinician_id, ())),
                daily_cap=caps[clinician_id],
            )
            for clinician_id, ranges in hours.items()
        ),
        clinic_closures=tuple(closures.get(None, ())),
    )


# Built once: bookings are read under the write lock on every booking, and rebuilding the
# expression each time cost more than running it. Each booking's buffers are the ones stored
# with it (its buffered span), the same span the database guard compares.
_ACTIVE_BOOKINGS_BETWEEN = (
    select(
        Booking.clinician_id,
        Booking.starts_at,
        Booking.ends_at,
        Booking.blocked_starts_at,
        Booking.blocked_ends_at,
    )
    .where(text(f"booking.{ACTIVE_BOOKING_SQL}"))
    .where(Booking.starts_at < bindparam("until", type_=UTCDateTime()))
    .where(Booking.ends_at > bindparam("since", type_=UTCDateTime()))
)
_OF_CLINICIANS = _ACTIVE_BOOKINGS_BETWEEN.where(
    Booking.clinician_id.in_(bindparam("clinician_ids", expanding=True))
)
_OF_CLINICIAN = _ACTIVE_BOOKINGS_BETWEEN.where(Booking.clinician_id == bindparam("clinician_id"))


def load_booked(
    window_start: datetime, window_end: datetime, clinician_ids: Collection[int] | None = None
) -> list[scheduling.Booked]:
    """Active bookings near the window (BOOKED_MARGIN either side), each with its buffers.

    The margin matters: a booking outside the window still blocks it through its buffers, and
    the daily cap counts every booking of the window's local days.
    """
    params = {"since": window_start - BOOKED_MARGIN, "until": window_end + BOOKED_MARGIN}
    query = _ACTIVE_BOOKINGS_BETWEEN
    if clinician_ids is not None and len(clinician_ids) == 1:
        query, params["clinician_id"] = _OF_CLINICIAN, next(iter(clinician_ids))
    elif clinician_ids is not None:
        query, params["clinician_ids"] = _OF_CLINICIANS, list(clinician_ids)
    return [
        scheduling.Booked(
            clinician_id=clinician_id,
            start=starts_at,
            end=ends_at,
            buffer_before=starts_at - blocked_from,
            buffer_after=blocked_to - ends_at,
        )
        for clinician_id, starts_at, ends_at, blocked_from, blocked_to in _rows(query, params)
    ]


def booked_around_day(
    start: datetime, tz: ZoneInfo, clinician_ids: Collection[int]
) -> tuple[scheduling.Booked, ...]:
    """`load_booked` for the clinic-local day of `start`, kept as long as a free-slot answer.

    For read-only checks of a chosen time (the details form, a reschedule's confirmation page):
    a hint like the slot lists, shared by everyone looking at that day, forgotten by this
    process as soon as it books, moves or cancels; the booking itself re-reads the bookings
    under the write lock. The window is the whole day, so it covers any time on it.
    """
    day = start.astimezone(tz).date()
    since, until = local_day_bounds(day, 1, tz)
    key = ("booked-around-day", day, tuple(sorted(clinician_ids)))
    return availability_cache().get_or_compute(
        key, lambda: tuple(load_booked(since, until, clinician_ids))
    )


def local_day_bounds(start_date: date, days: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants bounding clinic-local days [start_date, start_date + days)."""
    start = datetime.combine(start_date, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(start_date + timedelta(days=days), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def booked_of(booking: Booking) -> scheduling.Booked:
    """A stored booking as the engine sees it: its times, clinician and buffered span."""
    return scheduling.Booked(
        clinician_id=booking.clinician_id,
        start=booking.starts_at,
        end=booking.ends_at,
        buffer_before=booking.starts_at - booking.blocked_starts_at,
        buffer_after=booking.blocked_ends_at - booking.ends_at,
    )


def free_slots(
    consultation_type: ConsultationType | ConsultationTypeInfo,
    start_date: date,
    days: int,
    clinician_id: int | None = None,
    *,
    moving: Booking | None = None,
) -> list[scheduling.Slot]:
    """Free slots for a type over clinic-local days; one per time when any clinician will do.

    `moving`: the free times for rescheduling this booking. Its own time and buffers block
    nothing (the move frees them in the same transaction), and the time it already holds is
    not offered as a new one: its own clinician at its own start, or, for "any clinician",
    its start at all (that key could resolve back to its own clinician). The same time with
    another chosen clinician is a real change and stays. Never cached: only the reschedule
    pages ask with `moving`, and a patient booking anew must never see this answer.
    """
    now = clock.now()
    clinician_ids = None if clinician_id is None else [clinician_id]
    schedule = load_schedule(now, clinician_ids)
    window = local_day_bounds(start_date, days, schedule.timezone)
    booked = load_booked(*window, clinician_ids)
    held = None if moving is None else booked_of(moving)
    slots = scheduling.free_slots(
        schedule,
        rules_for(consultation_type),
        booked,
        now=now,
        start_date=start_date,
        days=days,
        clinician_ids=clinician_ids,
        moving=held,
    )
    if clinician_id is None:
        slots = scheduling.one_per_start(slots, booked, schedule.timezone, moving=held)
    if moving is not None:
        slots = [slot for slot in slots if not is_current_time(moving, slot.start, clinician_id)]
    return slots


def is_current_time(booking: Booking, start: datetime, clinician_id: int | None) -> bool:
    """Whether moving the booking to `start` with `clinician_id` (None: any clinician) names
    the time it already holds, so the move would change nothing."""
    return start == booking.starts_at and clinician_id in (None, booking.clinician_id)


def first_available(
    consultation_type: ConsultationType | ConsultationTypeInfo,
    clinician_id: int | None = None,
    *,
    moving: Booking | None = None,
) -> scheduling.Slot | None:
    """The earliest free slot; with `moving`, as that booking's reschedule sees it: it blocks
    nothing, and its own current time is not a new time, so it is skipped (a picker opened on
    the week of that time alone would show no time at all)."""
    now = clock.now()
    clinician_ids = None if clinician_id is None else [clinician_id]
    schedule = load_schedule(now, clinician_ids)
    rules = rules_for(consultation_type)
    booked = load_booked(now, now + rules.horizon, clinician_ids)
    return scheduling.first_available(
        schedule,
        rules,
        booked,
        now=now,
        clinician_ids=clinician_ids,
        moving=None if moving is None else booked_of(moving),
        skip=None
        if moving is None
        else lambda slot: is_current_time(moving, slot.start, clinician_id),
    )
