"""Admins change the schedule: clinicians, consultation types, weekly hours, closures, caps.

A change that would leave booked consultations outside the clinician's hours, or under a
closure, is refused with those bookings (`StrandedBookingsError`) unless the admin confirmed
it with the list shown. Every change writes an audit row and clears this process's slot
caches, so the patient picker shows it at once (other processes within SLOT_CACHE_SECONDS).

A change that can turn a bookable time unbookable (hours, closures, cap, deactivation) first
takes the schedule locks of the clinicians it affects, the same locks a booking holds while it
re-checks (`lock_clinician_schedules`): a booking in flight commits before the change reads the
bookings it would strand, and a booking after it reads the changed schedule (bookings re-read
it under the lock, never from the cache), so none lands in a just-closed time unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy import delete, select

from .. import clock
from ..caching import availability_cache, schedule_cache
from ..clinic import clinic_timezone
from ..database import lock_clinician_schedules, write_transaction
from ..extensions import db
from ..models import BOOKING_CANCELLED, Booking, Clinician, Closure, ConsultationType, WorkingHours
from .audit import add_audit
from .errors import BookingError


class ScheduleError(BookingError):
    """A schedule change that can't be made as asked; the message says why."""

    status_code = 422


class StrandedBookingsError(ScheduleError):
    """The change would leave these booked consultations outside the schedule."""

    status_code = 409

    def __init__(self, bookings: Sequence[Booking]) -> None:
        count = len(bookings)
        super().__init__(
            f"This change affects {count} booked consultation{'' if count == 1 else 's'}. "
            "They stay booked: contact the patients, or confirm to apply the change anyway."
        )
        self.bookings = list(bookings)


@dataclass(frozen=True)
class HoursRange:
    weekday: int  # Monday = 0
    start: time
    end: time


def _changed() -> None:
    availability_cache().clear()
    schedule_cache().clear()


def _lock_schedules(clinician_id: int | None) -> None:
    """Lock one clinician's schedule, or every clinician's for a clinic-wide change."""
    if clinician_id is None:
        lock_clinician_schedules(db.session.scalars(select(Clinician.id)))
    else:
        lock_clinician_schedules([clinician_id])


def _future_bookings(clinician_id: int | None) -> list[Booking]:
    query = select(Booking).where(
        Booking.status != BOOKING_CANCELLED, Booking.ends_at > clock.now()
    )
    if clinician_id is not None:
        query = query.where(Booking.clinician_id == clinician_id)
    return list(db.session.scalars(query.order_by(Booking.starts_at)))


def _guard(stranded: list[Booking], confirmed: bool) -> str:
    if stranded and not confirmed:
        raise StrandedBookingsError(stranded)
    return f", {len(stranded)} bookings affected (confirmed)" if stranded else ""


def save_clinician(
    clinician_id: int | None,
    *,
    name: str,
    email: str,
    is_active: bool,
    daily_cap: int | None,
    display_order: int,
    actor_account_id: int,
    confirmed: bool = False,
) -> Clinician:
    """Create or edit a clinician. Deactivating one with booked consultations asks first."""
    with write_transaction():
        if clinician_id is None:
            clinician = Clinician(weekly_hours=[])
            db.session.add(clinician)
            note = ""
        else:
            _lock_schedules(clinician_id)  # the cap and the active flag are booking rules
            clinician = db.session.get(Clinician, clinician_id)
            if clinician is None:
                raise ScheduleError("No such clinician.")
            stranding = clinician.is_active and not is_active
            note = _guard(_future_bookings(clinician.id) if stranding else [], confirmed)
        clinician.name, clinician.email = name, email
        clinician.is_active, clinician.daily_cap = is_active, daily_cap
        clinician.display_order = display_order
        db.session.flush()
        action = (
            "schedule.clinician_added" if clinician_id is None else "schedule.clinician_changed"
        )
        add_audit(actor_account_id, action, detail=f"clinician {clinician.id}{note}")
    _changed()
    return clinician


def _outside_hours(booking: Booking, ranges: Sequence[HoursRange]) -> bool:
    tz = clinic_timezone()
    start, end = booking.starts_at.astimezone(tz), booking.ends_at.astimezone(tz)
    if start.date() != end.date() and end.time() != time(0):
        return True
    end_time = end.time() if start.date() == end.date() else time(23, 59, 59)
    return not any(
        r.weekday == start.weekday() and r.start <= start.time() and end_time <= r.end
        for r in ranges
    )


def set_weekly_hours(
    clinician_id: int,
    ranges: Sequence[HoursRange],
    *,
    actor_account_id: int,
    confirmed: bool = False,
) -> list[WorkingHours]:
    """Replace a clinician's weekly hours (several ranges on one day make breaks)."""
    ordered = sorted(ranges, key=lambda r: (r.weekday, r.start))
    for first, second in zip(ordered, ordered[1:], strict=False):
        if first.weekday == second.weekday and second.start < first.end:
            raise ScheduleError("Two ranges on the same day overlap.")
    if any(r.start >= r.end for r in ordered):
        raise ScheduleError("Each range must end after it starts.")
    with write_transaction():
        _lock_schedules(clinician_id)
        clinician = db.session.get(Clinician, clinician_id)
        if clinician is None:
            raise ScheduleError("No such clinician.")
        stranded = [b for b in _future_bookings(clinician.id) if _outside_hours(b, ordered)]
        note = _guard(stranded, confirmed)
        db.session.execute(delete(WorkingHours).where(WorkingHours.clinician_id == clinician.id))
        rows = [
            WorkingHours(
                clinician_id=clinician.id, weekday=r.weekday, start_time=r.start, end_time=r.end
            )
            for r in ordered
        ]
        db.session.add_all(rows)
        add_audit(
            actor_account_id,
            "schedule.hours_changed",
            detail=f"clinician {clinician.id}, {len(rows)} ranges{note}",
        )
    _changed()
    return rows


def add_closure(
    clinician_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
    *,
    reason: str,
    actor_account_id: int,
    confirmed: bool = False,
) -> Closure:
    """Close the clinic (clinician_id None) or one clinician for a span of time."""
    if starts_at >= ends_at:
        raise ScheduleError("A closure must end after it starts.")
    with write_transaction():
        _lock_schedules(clinician_id)
        if clinician_id is not None and db.session.get(Clinician, clinician_id) is None:
            raise ScheduleError("No such clinician.")
        stranded = [
            b
            for b in _future_bookings(clinician_id)
            if b.starts_at < ends_at and b.ends_at > starts_at
        ]
        note = _guard(stranded, confirmed)
        closure = Closure(
            clinician_id=clinician_id, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
        db.session.add(closure)
        db.session.flush()
        who = "clinic" if clinician_id is None else f"clinician {clinician_id}"
        add_audit(
            actor_account_id, "schedule.closure_added", detail=f"closure {closure.id}, {who}{note}"
        )
    _changed()
    return closure


def remove_closure(closure_id: int, *, actor_account_id: int) -> None:
    """Reopen: removing a closure strands nothing."""
    with write_transaction():
        closure = db.session.get(Closure, closure_id)
        if closure is None:
            raise ScheduleError("No such closure.")
        db.session.delete(closure)
        add_audit(actor_account_id, "schedule.closure_removed", detail=f"closure {closure_id}")
    _changed()


TYPE_FIELDS = (
    "name",
    "slug",
    "mode",
    "description",
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "min_notice_minutes",
    "horizon_days",
    "slot_interval_minutes",
    "is_active",
    "display_order",
)


def save_consultation_type(
    type_id: int | None, values: dict, *, actor_account_id: int
) -> ConsultationType:
    """Create or edit a consultation type. Booked consultations keep the length they had."""
    with write_transaction():
        taken = db.session.scalar(
            select(ConsultationType.id).where(
                ConsultationType.slug == values["slug"], ConsultationType.id != (type_id or 0)
            )
        )
        if taken is not None:
            raise ScheduleError("Another consultation type has that short name (slug).")
        if type_id is None:
            consultation_type = ConsultationType()
        else:
            consultation_type = db.session.get(ConsultationType, type_id)
            if consultation_type is None:
                raise ScheduleError("No such consultation type.")
        for name in TYPE_FIELDS:
            setattr(consultation_type, name, values[name])
        db.session.add(consultation_type)
        db.session.flush()
        action = "schedule.type_added" if type_id is None else "schedule.type_changed"
        add_audit(actor_account_id, action, detail=f"type {consultation_type.id}")
    _changed()
    return consultation_type
