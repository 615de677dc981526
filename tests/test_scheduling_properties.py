"""Property tests of the slot engine: random schedules, bookings, closures and `now`.

The checks here recompute each rule the simple way (every booking, every closure, zoneinfo for
every instant) and compare with the engine's fast path, across DST changes in three zones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from microsite.scheduling import (
    Booked,
    ClinicianSchedule,
    ConsultationRules,
    Schedule,
    Slot,
    Span,
    Unbookable,
    WeeklyRange,
    check_slot,
    first_available,
    free_slots,
    one_per_start,
)

SETTINGS = settings(max_examples=150, deadline=None)
# Each zone with the days of its 2026 DST changes.
DST_DAYS = {
    ZoneInfo("America/New_York"): [date(2026, 3, 8), date(2026, 11, 1)],
    ZoneInfo("Europe/London"): [date(2026, 3, 29), date(2026, 10, 25)],
    # Half-hour changes: 02:00 -> 01:30 and 02:00 -> 02:30.
    ZoneInfo("Australia/Lord_Howe"): [date(2026, 4, 5), date(2026, 10, 4)],
}
ZONES = list(DST_DAYS)
OTHER_ZONES = [ZoneInfo("UTC"), ZoneInfo("Asia/Tokyo"), *ZONES]  # inputs may be in any zone
MINUTE = timedelta(minutes=1)
MAX_CHECKS = 120  # check_slot calls per example, to keep the run bounded


@dataclass
class World:
    schedule: Schedule
    rules: ConsultationRules
    booked: list[Booked]
    now: datetime
    start_date: date
    days: int

    def free(self, booked=None) -> list[Slot]:
        return free_slots(
            self.schedule,
            self.rules,
            self.booked if booked is None else booked,
            now=self.now,
            start_date=self.start_date,
            days=self.days,
        )

    def check(self, cid: int, start: datetime):
        return check_slot(
            self.schedule, self.rules, self.booked, now=self.now, clinician_id=cid, start=start
        )


quarter_hours = st.integers(0, 95)


@st.composite
def weekly_ranges(draw, weekdays: list[int]) -> WeeklyRange:
    a, b = sorted(draw(st.lists(quarter_hours, min_size=2, max_size=2, unique=True)))
    # Mostly the window's own weekdays, so most examples have hours to offer.
    weekday = draw(st.one_of(st.sampled_from(weekdays), st.integers(0, 6)))
    return WeeklyRange(weekday, time(a // 4, a % 4 * 15), time(b // 4, b % 4 * 15))


@st.composite
def worlds(draw) -> World:
    """A schedule, rules, bookings and `now` around a window of 1-4 days, often over DST."""
    tz = draw(st.sampled_from(ZONES))
    dst_window = st.builds(
        lambda d, back: d - timedelta(back), st.sampled_from(DST_DAYS[tz]), st.integers(0, 2)
    )
    start_date = draw(st.one_of(dst_window, st.dates(date(2026, 1, 1), date(2026, 12, 20))))
    days = draw(st.integers(1, 4))
    weekdays = [(start_date + timedelta(i)).weekday() for i in range(days)]
    origin = datetime.combine(start_date, time(0), tzinfo=tz).astimezone(UTC)

    def instant(days_before: int = 1, days_after: int = 0) -> datetime:
        """A 5-minute instant around the window, in any zone."""
        steps = draw(st.integers(-days_before * 24 * 12, (days + days_after) * 24 * 12))
        return (origin + steps * 5 * MINUTE).astimezone(draw(st.sampled_from(OTHER_ZONES)))

    def span(max_minutes: int) -> tuple[datetime, datetime]:
        start = instant()
        return start, start + draw(st.integers(1, max_minutes // 5)) * 5 * MINUTE

    ids = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True))
    clinicians = tuple(
        ClinicianSchedule(
            cid,
            tuple(draw(st.lists(weekly_ranges(weekdays), min_size=1, max_size=4))),
            tuple(Span(*span(24 * 60)) for _ in range(draw(st.integers(0, 1)))),
            draw(st.one_of(st.none(), st.integers(1, 3))),
        )
        for cid in ids
    )
    clinic_closures = tuple(Span(*span(6 * 60)) for _ in range(draw(st.integers(0, 1))))
    rules = ConsultationRules(
        duration=draw(st.sampled_from([15, 30, 45, 50, 60, 90])) * MINUTE,
        slot_interval=draw(st.sampled_from([10, 15, 20, 30, 45, 60])) * MINUTE,
        min_notice=draw(st.one_of(st.just(0), st.integers(0, 24))) * 30 * MINUTE,
        horizon=draw(st.integers(1, 8 * 24)) * 60 * MINUTE,
        buffer_before=draw(st.integers(0, 6)) * 5 * MINUTE,
        buffer_after=draw(st.integers(0, 6)) * 5 * MINUTE,
    )
    booked = [
        Booked(
            draw(st.sampled_from([*ids, 99])),  # 99: a clinician not in the schedule
            *span(180),
            buffer_before=draw(st.integers(0, 6)) * 5 * MINUTE,
            buffer_after=draw(st.integers(0, 6)) * 5 * MINUTE,
        )
        for _ in range(draw(st.integers(0, 12)))
    ]
    now = instant(days_before=3, days_after=-days + 1)  # mostly before the window
    return World(Schedule(tz, clinicians, clinic_closures), rules, booked, now, start_date, days)


def overlaps(a0, a1, b0, b1) -> bool:
    return a0 < b1 and b0 < a1


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def blocked(world: World, slot: Slot) -> tuple[datetime, datetime]:
    return slot.start - world.rules.buffer_before, slot.end + world.rules.buffer_after


def range_end(day: date, end: time, tz: ZoneInfo) -> datetime:
    """The instant the clock first shows `end` on `day` (for a time in a gap: the jump)."""
    wall = datetime.combine(day, end)  # noqa: DTZ001 - a wall-clock time, zoned below
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    at = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the jump
    while at.astimezone(tz).replace(tzinfo=None) < wall:
        at += MINUTE
    return at


def on_grid_in_hours(world: World, clinician: ClinicianSchedule, start: datetime) -> bool:
    """Convert with zoneinfo and look for a range whose grid holds the wall time."""
    tz, step = world.schedule.timezone, world.rules.slot_interval
    local = start.astimezone(tz)
    if local.fold:  # the second occurrence of a repeated wall time is never offered
        return False
    day, wall = local.date(), local.replace(tzinfo=None)
    for r in clinician.weekly_hours:
        begin = datetime.combine(day, r.start)  # noqa: DTZ001 - wall-clock arithmetic
        if r.weekday != day.weekday() or not r.start <= wall.time() < r.end:
            continue
        end = start + world.rules.duration
        if (wall - begin) % step == timedelta(0) and end <= range_end(day, r.end, tz):
            return True
    return False


def reason_the_slow_way(world: World, cid: int, start: datetime) -> Unbookable | None:
    """Every rule applied directly: every closure, every booking, zoneinfo for every instant."""
    tz, rules = world.schedule.timezone, world.rules
    # Notice and horizon are real elapsed time: add them in UTC, never to a local wall clock.
    now, start = world.now.astimezone(UTC), start.astimezone(UTC)
    end = start + rules.duration
    if start < now:
        return Unbookable.PAST
    if start < now + rules.min_notice:
        return Unbookable.TOO_SOON
    if start > now + rules.horizon:
        return Unbookable.TOO_FAR
    clinician = next((c for c in world.schedule.clinicians if c.clinician_id == cid), None)
    if clinician is None or not on_grid_in_hours(world, clinician, start):
        return Unbookable.NOT_OFFERED
    for closure in (*world.schedule.clinic_closures, *clinician.closures):
        if overlaps(start, end, closure.start, closure.end):
            return Unbookable.NOT_OFFERED
    same_day = 0
    for b in world.booked:
        if b.clinician_id != cid:
            continue
        held = (b.start - b.buffer_before, b.end + b.buffer_after)
        if held[0] < held[1] and overlaps(
            start - rules.buffer_before, end + rules.buffer_after, *held
        ):
            return Unbookable.TAKEN
        same_day += local_date(b.start, tz) == local_date(start, tz)
    if clinician.daily_cap is not None and same_day >= clinician.daily_cap:
        return Unbookable.TAKEN
    return None


def grid_candidates(world: World) -> list[tuple[int, datetime]]:
    """Every wall-clock grid time of every clinician in the window, and some off-grid ones."""
    tz, step = world.schedule.timezone, world.rules.slot_interval
    found = []
    for c in world.schedule.clinicians:
        for i in range(world.days):
            day = world.start_date + timedelta(i)
            for r in c.weekly_hours:
                if r.weekday != day.weekday():
                    continue
                wall = datetime.combine(day, r.start)  # noqa: DTZ001 - wall-clock arithmetic
                while wall.time() < r.end and wall.date() == day:
                    for fold in (0, 1):  # fold=1: the repeat of an ambiguous wall time
                        local = wall.replace(tzinfo=tz, fold=fold)
                        found.append((c.clinician_id, local.astimezone(UTC)))
                    wall += step
    return found


@SETTINGS
@given(worlds())
def test_every_slot_obeys_every_rule(world: World):
    end_date = world.start_date + timedelta(world.days)
    for slot in world.free():
        assert slot.start.tzinfo is UTC
        assert slot.end.tzinfo is UTC
        assert slot.end - slot.start == world.rules.duration
        assert world.start_date <= local_date(slot.start, world.schedule.timezone) < end_date
        assert reason_the_slow_way(world, slot.clinician_id, slot.start) is None


@SETTINGS
@given(worlds(), st.randoms(use_true_random=False))
def test_check_slot_gives_the_reason_the_rules_give(world: World, rng: random.Random):
    """Also catches an engine stricter than the rules, which the other properties would not."""
    candidates = grid_candidates(world)
    for cid, start in rng.sample(candidates, min(len(candidates), MAX_CHECKS)):
        start += rng.choice([timedelta(0), timedelta(0), 5 * MINUTE])  # now and then off-grid
        assert world.check(cid, start) is reason_the_slow_way(world, cid, start)


@SETTINGS
@given(worlds(), st.randoms(use_true_random=False))
def test_free_slots_and_check_slot_agree(world: World, rng: random.Random):
    slots = world.free()
    offered = {(s.clinician_id, s.start) for s in slots}
    for slot in rng.sample(slots, min(len(slots), MAX_CHECKS // 2)):
        assert world.check(slot.clinician_id, slot.start) is None
    candidates = grid_candidates(world)
    for cid, start in rng.sample(candidates, min(len(candidates), MAX_CHECKS // 2)):
        start += rng.choice([timedelta(0), timedelta(0), 5 * MINUTE])  # now and then off-grid
        assert (world.check(cid, start) is None) == ((cid, start) in offered)


@SETTINGS
@given(worlds())
def test_slots_are_sorted_and_unique(world: World):
    keys = [(s.start, s.clinician_id) for s in world.free()]
    assert keys == sorted(set(keys))


@SETTINGS
@given(worlds(), st.data())
def test_booking_a_slot_removes_exactly_what_it_blocks(world: World, data):
    slots = world.free()
    if not slots:
        return
    tz = world.schedule.timezone
    chosen = data.draw(st.sampled_from(slots))
    new = Booked(
        chosen.clinician_id,
        chosen.start,
        chosen.end,
        world.rules.buffer_before,
        world.rules.buffer_after,
    )
    cap = next(
        c.daily_cap for c in world.schedule.clinicians if c.clinician_id == chosen.clinician_id
    )
    day = local_date(chosen.start, tz)
    that_day = sum(
        b.clinician_id == chosen.clinician_id and local_date(b.start, tz) == day
        for b in [*world.booked, new]
    )
    day_full = cap is not None and that_day >= cap

    def still_free(slot: Slot) -> bool:
        if slot.clinician_id != chosen.clinician_id:
            return True  # nothing changes for other clinicians
        if day_full and local_date(slot.start, tz) == day:
            return False
        return not overlaps(*blocked(world, slot), *blocked(world, chosen))

    after = world.free([*world.booked, new])
    assert chosen not in after
    assert after == [s for s in slots if still_free(s)]


@SETTINGS
@given(worlds())
def test_first_available_is_the_first_slot_within_the_horizon(world: World):
    tz = world.schedule.timezone
    first = local_date(world.now, tz)
    last = local_date(world.now.astimezone(UTC) + world.rules.horizon, tz)
    everything = free_slots(
        world.schedule,
        world.rules,
        world.booked,
        now=world.now,
        start_date=first,
        days=(last - first).days + 1,
    )
    expected = everything[0] if everything else None
    assert first_available(world.schedule, world.rules, world.booked, now=world.now) == expected


@SETTINGS
@given(worlds())
def test_one_per_start_picks_a_least_busy_clinician_for_each_start(world: World):
    tz = world.schedule.timezone
    slots = world.free()
    chosen = one_per_start(slots, world.booked, tz)
    assert [s.start for s in chosen] == sorted({s.start for s in slots})
    for pick in chosen:
        assert pick in slots

        def load(slot: Slot) -> int:
            day = local_date(slot.start, tz)
            return sum(
                b.clinician_id == slot.clinician_id and local_date(b.start, tz) == day
                for b in world.booked
            )

        rivals = [s for s in slots if s.start == pick.start]
        assert load(pick) == min(load(s) for s in rivals)


@SETTINGS
@given(worlds(), st.data())
def test_moving_a_booking_is_judging_without_it(world: World, data):
    """A reschedule's free times (and its commit-time check) are those of a calendar without
    the booking being moved, whichever zone its instants come in."""
    if not world.booked:
        return
    held = data.draw(st.sampled_from(world.booked))
    zone = data.draw(st.sampled_from(OTHER_ZONES))
    moving = Booked(held.clinician_id, held.start.astimezone(zone), held.end.astimezone(UTC))

    def same(b: Booked) -> bool:
        return (b.clinician_id, b.start.astimezone(UTC), b.end.astimezone(UTC)) == (
            held.clinician_id,
            held.start.astimezone(UTC),
            held.end.astimezone(UTC),
        )

    rest = [b for b in world.booked if not same(b)]
    args = (world.schedule, world.rules)
    window = {"now": world.now, "start_date": world.start_date, "days": world.days}
    assert free_slots(*args, world.booked, **window, moving=moving) == world.free(rest)
    for slot in world.free(rest)[: MAX_CHECKS // 4]:
        assert (
            check_slot(
                *args,
                world.booked,
                now=world.now,
                clinician_id=slot.clinician_id,
                start=slot.start,
                moving=moving,
            )
            is None
        )
    assert first_available(*args, world.booked, now=world.now, moving=moving) == first_available(
        *args, rest, now=world.now
    )
