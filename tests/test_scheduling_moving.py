"""The engine's `moving`: free times for rescheduling a booking, whose own time is freed."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from test_scheduling import (
    MINUTES,
    MONDAY,
    RULES,
    SUNDAY,
    TUESDAY,
    booking,
    clinician,
    local,
    schedule,
    slots_on,
    times,
)

from microsite.scheduling import (
    ConsultationRules,
    Unbookable,
    check_slot,
    first_available,
    free_slots,
    one_per_start,
)

SUNDAY_NOON = local(SUNDAY, "12:00")


def check(start, booked, moving=None, sched=None, rules=RULES, cid=1):
    return check_slot(
        sched or schedule(),
        rules,
        booked,
        now=SUNDAY_NOON,
        clinician_id=cid,
        start=start,
        moving=moving,
    )


def test_a_booking_moving_half_an_hour_later_finds_the_time_free():
    held = booking(MONDAY, "09:00", "10:00")
    assert times(slots_on(MONDAY, booked=[held]))[:2] == ["10:00", "10:30"]
    # Its own hour blocks nothing any more: 09:30-10:30 overlaps only itself.
    assert times(slots_on(MONDAY, booked=[held], moving=held))[:3] == ["09:00", "09:30", "10:00"]
    assert check(local(MONDAY, "09:30"), [held]) is Unbookable.TAKEN
    assert check(local(MONDAY, "09:30"), [held], moving=held) is None


def test_other_bookings_still_block_a_move():
    held = booking(MONDAY, "09:00", "10:00")
    other = booking(MONDAY, "10:30", "11:30")
    shown = times(slots_on(MONDAY, booked=[held, other], moving=held))
    assert shown[:2] == ["09:00", "09:30"]  # 09:30-10:30 touches the other one: fine
    assert "10:00" not in shown
    assert check(local(MONDAY, "10:00"), [held, other], moving=held) is Unbookable.TAKEN


def test_the_moving_bookings_buffers_free_with_it():
    held = booking(MONDAY, "10:00", "11:00", buffer_before=30 * MINUTES, buffer_after=30 * MINUTES)
    assert "11:00" not in times(slots_on(MONDAY, booked=[held]))
    assert "09:00" not in times(slots_on(MONDAY, booked=[held]))
    shown = times(slots_on(MONDAY, booked=[held], moving=held))
    assert {"09:00", "10:30", "11:00"} <= set(shown)


def test_a_move_keeps_its_new_times_own_buffers():
    rules = ConsultationRules(60 * MINUTES, 30 * MINUTES, buffer_after=30 * MINUTES)
    held = booking(MONDAY, "09:00", "10:00", buffer_after=30 * MINUTES)
    other = booking(MONDAY, "11:00", "12:00")
    shown = times(slots_on(MONDAY, rules=rules, booked=[held, other], moving=held, now=SUNDAY_NOON))
    assert shown[:2] == ["09:00", "09:30"]  # 10:00-11:00 plus 30 minutes runs into 11:00


def test_the_moving_booking_is_matched_by_instant_whatever_its_zone():
    held = booking(MONDAY, "09:00", "10:00")
    same_in_tokyo = type(held)(
        1, held.start.astimezone(ZoneInfo("Asia/Tokyo")), held.end.astimezone(UTC)
    )
    assert "09:30" in times(slots_on(MONDAY, booked=[held], moving=same_in_tokyo))


def test_a_booking_of_another_clinician_or_time_is_not_the_moving_one():
    held = booking(MONDAY, "09:00", "10:00")
    assert "09:30" not in times(
        slots_on(MONDAY, booked=[held], moving=booking(MONDAY, "09:00", "10:00", cid=2))
    )
    assert "09:30" not in times(
        slots_on(MONDAY, booked=[held], moving=booking(MONDAY, "09:00", "09:30"))
    )


def test_a_move_within_a_full_day_is_allowed_by_the_daily_cap():
    sched = schedule(clinician(1, daily_cap=1))
    held = booking(MONDAY, "09:00", "10:00")
    assert times(slots_on(MONDAY, sched, booked=[held])) == []
    assert times(slots_on(MONDAY, sched, booked=[held], moving=held))[:2] == ["09:00", "09:30"]
    # The day it leaves does not make another full day any freer.
    tuesday = booking(TUESDAY, "09:00", "10:00")
    assert times(slots_on(TUESDAY, sched, booked=[held, tuesday], moving=held)) == []


def test_first_available_for_a_move():
    sched = schedule(clinician(1, daily_cap=1))
    held = booking(MONDAY, "09:00", "10:00")
    first = first_available(sched, RULES, [held], now=SUNDAY_NOON)
    assert first.start == local(TUESDAY, "09:00")
    moved = first_available(sched, RULES, [held], now=SUNDAY_NOON, moving=held)
    assert moved.start == local(MONDAY, "09:00")


def test_any_clinician_does_not_count_the_moving_booking_as_its_clinicians_load():
    sched = schedule(clinician(1), clinician(2))
    held = booking(MONDAY, "09:00", "10:00", cid=1)
    slots = free_slots(
        sched, RULES, [held], now=SUNDAY_NOON, start_date=MONDAY, days=1, moving=held
    )
    at_eleven = [s for s in slots if s.start == local(MONDAY, "11:00")]
    # Without the move, clinician 2 has the lighter day; with it both are empty: the lower id.
    assert one_per_start(at_eleven, [held], sched.timezone)[0].clinician_id == 2
    assert one_per_start(at_eleven, [held], sched.timezone, moving=held)[0].clinician_id == 1


def test_no_moving_booking_changes_nothing():
    held = booking(MONDAY, "09:00", "10:00")
    assert slots_on(MONDAY, booked=[held], moving=None) == slots_on(MONDAY, booked=[held])
    assert check(local(MONDAY, "09:30"), [held], moving=None) is Unbookable.TAKEN


def test_first_available_for_a_move_can_skip_the_booking_s_own_time():
    held = booking(MONDAY, "09:00", "10:00")
    own = first_available(schedule(), RULES, [held], now=SUNDAY_NOON, moving=held)
    assert own.start == held.start  # freed, its own time is the earliest again
    skipped = first_available(
        schedule(), RULES, [held], now=SUNDAY_NOON, moving=held, skip=lambda s: s.start == own.start
    )
    assert skipped.start == local(MONDAY, "09:30")
