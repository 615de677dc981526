"""Pure slot engine: no Flask, no database, no clock.

Weekly hours are wall-clock times in the clinic's zone; they become instants here, once per
local day. Inside, an instant is a timedelta since the Unix epoch: exact, whatever zone the
caller's aware datetime was in, and its arithmetic and comparisons run in C (converting to
int microseconds would cost more than everything else).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from operator import attrgetter, itemgetter
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_first = itemgetter(0)
_start = attrgetter("start")


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    """One range of a clinician's weekly hours; several on one weekday make breaks.

    `start` and `end` are wall-clock times in the clinic's zone on `weekday` (Monday = 0).
    A range with `end <= start` offers nothing; a weekday outside 0..6 is a ValueError.
    """

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Span:
    """A closure [start, end): aware datetimes, half-open, so touching it is fine."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ClinicianSchedule:
    clinician_id: int
    weekly_hours: tuple[WeeklyRange, ...]
    closures: tuple[Span, ...] = ()
    daily_cap: int | None = None  # most consultations on one clinic-local day


@dataclass(frozen=True, slots=True)
class Schedule:
    timezone: ZoneInfo
    clinicians: tuple[ClinicianSchedule, ...]  # active clinicians only, in preference order
    clinic_closures: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsultationRules:
    """One consultation type's rules. Durations, notice and horizon are real elapsed time."""

    duration: timedelta
    slot_interval: timedelta  # grid step of start times within each working range
    min_notice: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=60)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True)
class Booked:
    """An existing active booking, with its own consultation type's buffers."""

    clinician_id: int
    start: datetime
    end: datetime
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)


@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """A bookable appointment [start, end) with one clinician."""

    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    clinician_id: int


class Unbookable(Enum):
    """Why a requested start cannot be booked, in the order `check_slot` tests them."""

    PAST = "past"
    TOO_SOON = "too_soon"
    TOO_FAR = "too_far"
    NOT_OFFERED = "not_offered"
    TAKEN = "taken"


def free_slots(
    schedule: Schedule,
    rules: ConsultationRules,
    booked: Iterable[Booked],
    *,
    now: datetime,
    start_date: date,
    days: int,
    clinician_ids: Collection[int] | None = None,
    moving: Booked | None = None,
) -> list[Slot]:
    """Every bookable slot whose clinic-local start date is in [start_date, start_date + days).

    A slot starts on a range's wall-clock grid (range.start + k * slot_interval), lasts
    `duration` of real time and ends by the range's end, so it never straddles a break. Wall
    times in a DST gap are skipped; a repeated wall time is offered once, at its first
    occurrence. The appointment may not overlap a closure; its buffered interval may not overlap
    a same-clinician booking's buffered interval; it starts at or after now + min_notice and
    at or before now + horizon; and the clinician has fewer than daily_cap bookings that day.
    `clinician_ids` None means every clinician in the schedule. Sorted by (start, clinician_id).

    `moving` is the booking being rescheduled: a move frees its old time in the same
    transaction that takes the new one, so it blocks nothing (its buffers neither) and counts
    toward no daily cap. Its own time stays in the answer when free; not offering it again is
    the caller's choice (see services/schedule.free_slots).
    """
    booked = without(booked, moving)
    days_iter = _free_by_day(schedule, rules, booked, now, start_date, days, clinician_ids)
    return [slot for day in days_iter for slot in day]


def without(booked: Iterable[Booked], moving: Booked | None) -> Iterable[Booked]:
    """`booked` less the booking `moving` (matched by clinician and instants, whatever zone).

    One active booking per clinician and start can exist (the database refuses an overlap),
    so clinician, start and end name it; its buffers may be read differently and don't count.
    """
    if moving is None:
        return booked
    same = (moving.clinician_id, _at(moving.start), _at(moving.end))
    return [b for b in booked if (b.clinician_id, _at(b.start), _at(b.end)) != same]


def check_slot(
    schedule: Schedule,
    rules: ConsultationRules,
    booked: Iterable[Booked],
    *,
    now: datetime,
    clinician_id: int,
    start: datetime,
    moving: Booked | None = None,
) -> Unbookable | None:
    """None when this exact slot is bookable, else the first reason in `Unbookable` order.

    Agrees with `free_slots` by construction: past the time checks it asks `free_slots` for
    the start's clinic-local day with the bookings (bookable when present) and, only when
    absent, without them (NOT_OFFERED when absent then too, else TAKEN). Bookable first:
    a booking runs this under the database's write lock, and almost every request is free.
    `moving`: the booking being rescheduled, which blocks nothing (see `free_slots`).
    """
    booked = without(booked, moving)
    now_at, at = _at(now), _at(start)
    _validate(rules)
    if at < now_at:
        return Unbookable.PAST
    if at < now_at + rules.min_notice:
        return Unbookable.TOO_SOON
    if at > now_at + rules.horizon:
        return Unbookable.TOO_FAR
    day = _local_date(start, schedule.timezone)

    def offered(bookings: Iterable[Booked]) -> bool:
        slots = free_slots(
            schedule,
            rules,
            bookings,
            now=now,
            start_date=day,
            days=1,
            clinician_ids=(clinician_id,),
        )
        return any(slot.start - _EPOCH == at for slot in slots)

    if offered(booked):
        return None
    return Unbookable.TAKEN if offered(()) else Unbookable.NOT_OFFERED


def first_available(
    schedule: Schedule,
    rules: ConsultationRules,
    booked: Iterable[Booked],
    *,
    now: datetime,
    clinician_ids: Collection[int] | None = None,
    moving: Booked | None = None,
    skip: Callable[[Slot], bool] | None = None,
) -> Slot | None:
    """The earliest bookable slot between now and now + horizon (lowest clinician_id on ties).

    `moving`: the booking being rescheduled, which blocks nothing (see `free_slots`).
    `skip`: slots not to return (a reschedule skips the time the booking already holds).
    """
    booked = without(booked, moving)
    tz = schedule.timezone
    first = _local_date(now, tz)
    # The horizon is real elapsed time, so add it in UTC (aware + timedelta is wall-clock).
    days = (_local_date(_EPOCH + _at(now) + rules.horizon, tz) - first).days + 1
    # Day by day, so a full calendar does not build slots it will not return.
    for day in _free_by_day(schedule, rules, booked, now, first, max(days, 0), clinician_ids):
        for slot in day:
            if skip is None or not skip(slot):
                return slot
    return None


def one_per_start(
    slots: Sequence[Slot],
    booked: Iterable[Booked],
    timezone: ZoneInfo,
    moving: Booked | None = None,
) -> list[Slot]:
    """For "any clinician": one slot per start instant, sorted by start.

    Each start goes to the clinician with the fewest bookings on that clinic-local day, so work
    spreads evenly; ties go to the slot that comes first in `slots` (for `free_slots` output,
    the lower clinician_id; for a caller's own list, its preference order). `moving`, the
    booking being rescheduled, is not counted: it leaves its day.
    """
    booked = without(booked, moving)
    wanted = {slot.clinician_id for slot in slots}
    load = Counter(
        (b.clinician_id, _local_date(b.start, timezone)) for b in booked if b.clinician_id in wanted
    )
    best: dict[timedelta, tuple[int, Slot]] = {}
    for slot in slots:
        key = _at(slot.start)  # an instant, not a datetime: one start in two zones must meet
        count = load[(slot.clinician_id, _local_date(slot.start, timezone))]
        if key not in best or count < best[key][0]:
            best[key] = (count, slot)
    return [best[key][1] for key in sorted(best)]


def _free_by_day(
    schedule: Schedule,
    rules: ConsultationRules,
    booked: Iterable[Booked],
    now: datetime,
    start_date: date,
    days: int,
    clinician_ids: Collection[int] | None,
) -> Iterator[list[Slot]]:
    """The free slots of each clinic-local day in turn, each day sorted by (start, clinician)."""
    now_at = _at(now)
    _validate(rules)
    if days < 0:
        raise ValueError("days must not be negative")
    earliest = max(now_at, now_at + rules.min_notice)
    latest = now_at + rules.horizon
    tz, dur = schedule.timezone, rules.duration
    window = _days(tz, start_date, days)
    wanted: dict[int, ClinicianSchedule] = {}
    for c in schedule.clinicians:
        if clinician_ids is None or c.clinician_id in clinician_ids:
            wanted.setdefault(c.clinician_id, c)
    blocks, counts = _index_booked(booked, wanted, window, rules)
    clinic_closed = _closure_blocks(schedule.clinic_closures, dur)
    prepared = []
    for cid, c in sorted(wanted.items()):  # by id, so a stable sort by start breaks ties by id
        # Closures and bookings both become open intervals of forbidden start instants.
        los, his = _merge(clinic_closed + _closure_blocks(c.closures, dur) + blocks[cid])
        hours = _hours(tuple(c.weekly_hours), dur, rules.slot_interval)
        prepared.append((cid, hours, los, his, c.daily_cap, counts.get(cid)))
    for i in range(days):
        if window.starts[i + 1] <= earliest or window.starts[i] > latest:
            yield []
            continue
        found: list[Slot] = []
        for cid, hours, los, his, cap, tally in prepared:
            if cap is not None and tally[i] >= cap:
                continue
            for at in hours.starts(tz, window, i):
                # Merged intervals are disjoint: only the last one opening before `at` can hold it.
                j = bisect_left(los, at) - 1
                if earliest <= at <= latest and (j < 0 or his[j] <= at):
                    found.append(Slot(_EPOCH + at, _EPOCH + at + dur, cid))
        # Each clinician's starts ascend; no (start, id) tuples: fewer objects for the GC.
        found.sort(key=_start)
        yield found


# Both are pure functions of hashable, immutable inputs and read-only once built; a slot list
# for the same week and hours (every picker and API request) reuses them instead of redoing
# the zone arithmetic: about a third of a 7-day, 2-clinician answer.
@lru_cache(maxsize=1024)
def _days(tz: ZoneInfo, first: date, n: int) -> _Days:
    return _Days(tz, first, n)


@lru_cache(maxsize=1024)
def _hours(weekly: tuple[WeeklyRange, ...], dur: timedelta, step: timedelta) -> _Hours:
    return _Hours(weekly, dur, step)


class _Days:
    """Clinic-local days [first, first + n): when each begins, and which have no DST change."""

    __slots__ = ("first", "starts", "steady")

    def __init__(self, tz: ZoneInfo, first: date, n: int) -> None:
        self.first = first
        days = [first + timedelta(i) for i in range(n + 1)]
        self.starts = [datetime.combine(d, time(0), tzinfo=tz) - _EPOCH for d in days]
        epoch_days = first.toordinal() - _EPOCH_ORDINAL
        offsets = [timedelta(epoch_days + i) - s for i, s in enumerate(self.starts)]
        # Same offset at both midnights: no transition inside the day (no zone has had two in
        # one day), so wall clock -> UTC is one addition instead of a zoneinfo call per slot.
        self.steady = [offsets[i] == offsets[i + 1] for i in range(n)]


class _Hours:
    """One clinician's weekly ranges as offsets from local midnight, for one grid."""

    __slots__ = ("ranges", "steady_offsets", "step", "dur")

    def __init__(self, weekly: Iterable[WeeklyRange], dur: timedelta, step: timedelta) -> None:
        self.dur, self.step = dur, step
        self.ranges: list[list[tuple[timedelta, timedelta, time]]] = [[] for _ in range(7)]
        for r in weekly:
            if not 0 <= r.weekday <= 6:
                raise ValueError(f"weekday must be 0..6, got {r.weekday}")
            if r.start < r.end:
                self.ranges[r.weekday].append(
                    (_since_midnight(r.start), _since_midnight(r.end), r.end)
                )
        # On a day without a transition a start fits when start + duration <= end, wall clock.
        self.steady_offsets = []
        for ranges in self.ranges:
            fits = set()
            for lo, hi, _ in ranges:
                while lo + dur <= hi:
                    fits.add(lo)
                    lo += step
            self.steady_offsets.append(sorted(fits))

    def starts(self, tz: ZoneInfo, window: _Days, i: int) -> list[timedelta]:
        """Grid start instants of day i that fit their range, ascending, without duplicates."""
        day = window.first + timedelta(i)
        if window.steady[i]:
            base = window.starts[i]
            return [base + w for w in self.steady_offsets[day.weekday()]]
        found = set()
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        for lo, hi, end in self.ranges[day.weekday()]:
            limit = _range_end(datetime.combine(day, end, tzinfo=tz)) - self.dur
            while lo < hi:
                # Aware + timedelta is wall-clock arithmetic with fold=0: the first occurrence.
                local = midnight + lo
                at = local - _EPOCH
                if at <= limit and _exists(local, at):
                    found.add(at)
                lo += self.step
        return sorted(found)


def _validate(rules: ConsultationRules) -> None:
    if rules.duration <= timedelta(0) or rules.slot_interval <= timedelta(0):
        raise ValueError("duration and slot_interval must be positive")
    if rules.buffer_before < timedelta(0) or rules.buffer_after < timedelta(0):
        raise ValueError("buffers must not be negative")


def _index_booked(
    booked: Iterable[Booked],
    wanted: dict[int, ClinicianSchedule],
    window: _Days,
    rules: ConsultationRules,
) -> tuple[dict[int, list[tuple[timedelta, timedelta]]], dict[int, list[int]]]:
    """Forbidden start intervals per clinician, and bookings per day for capped clinicians.

    A candidate s is blocked when [s - before, s + duration + after) overlaps the booking's
    [b.start - b.buffer_before, b.end + b.buffer_after), i.e. when s lies strictly inside
    (b.start - b.buffer_before - duration - after, b.end + b.buffer_after + before).
    """
    blocks: dict[int, list[tuple[timedelta, timedelta]]] = {cid: [] for cid in wanted}
    n = len(window.steady)
    counts = {cid: [0] * n for cid, c in wanted.items() if c.daily_cap is not None}
    starts, first, last = window.starts, window.starts[0], window.starts[-1]
    reach, before = rules.duration + rules.buffer_after, rules.buffer_before
    try:
        for b in booked:
            cid = b.clinician_id
            own = blocks.get(cid)
            if own is None:
                continue
            start, held_to = b.start - _EPOCH, b.end - _EPOCH + b.buffer_after
            held_from = start - b.buffer_before
            lo, hi = held_from - reach, held_to + before
            if held_from < held_to and hi > first and lo < last:
                own.append((lo, hi))
            tally = counts.get(cid)
            if tally is not None:
                i = bisect_right(starts, start) - 1
                if 0 <= i < n:
                    tally[i] += 1
    except TypeError:
        raise ValueError("a booking has a naive datetime: pass aware datetimes") from None
    return blocks, counts


def _closure_blocks(spans: Iterable[Span], dur: timedelta) -> list[tuple[timedelta, timedelta]]:
    """Starts s with [s, s + dur) overlapping [span.start, span.end): inside (start - dur, end)."""
    return [(s - dur, e) for s, e in ((_at(c.start), _at(c.end)) for c in spans) if s < e]


def _merge(intervals: list[tuple[timedelta, timedelta]]) -> tuple[list[timedelta], list[timedelta]]:
    """Union of open intervals as two sorted lists, for bisecting. (a, b) and (b, c) stay apart."""
    los: list[timedelta] = []
    his: list[timedelta] = []
    for lo, hi in sorted(intervals, key=_first):  # a key sort: far cheaper than tuple order
        if his and lo < his[-1]:
            if hi > his[-1]:
                his[-1] = hi
        else:
            los.append(lo)
            his.append(hi)
    return los, his


def _at(instant: datetime) -> timedelta:
    """An aware datetime as an exact offset from the epoch, whatever its zone."""
    try:
        return instant - _EPOCH
    except TypeError:
        raise ValueError(f"naive datetime {instant!r}: pass an aware datetime") from None


def _local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The clinic-local date of an aware instant (a naive one is refused, not taken as local)."""
    return (_EPOCH + _at(instant)).astimezone(tz).date()


def _since_midnight(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _exists(local: datetime, at: timedelta) -> bool:
    """False for a wall-clock time in a DST gap: it does not come back from UTC unchanged."""
    back = (_EPOCH + at).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _range_end(local: datetime) -> timedelta:
    """The instant a range ending at this wall time ends: when the clock first shows it."""
    at = local - _EPOCH  # fold=0: the first occurrence of a repeated time
    if _exists(local, at):
        return at
    # The end is in a spring-forward gap, so the range ends at the jump itself. fold=1 gives an
    # instant before the jump and fold=0 one after; bisect between them for the transition.
    lo, hi = local.replace(fold=1) - _EPOCH, at
    offset = (_EPOCH + lo).astimezone(local.tzinfo).utcoffset()
    while hi - lo > _US:
        mid = lo + (hi - lo) // 2
        if (_EPOCH + mid).astimezone(local.tzinfo).utcoffset() == offset:
            lo = mid
        else:
            hi = mid
    return hi
