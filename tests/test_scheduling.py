"""The slot engine, rule by rule, as a patient would see it: clinic-local start times."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from microsite import scheduling
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

TZ = ZoneInfo("America/New_York")

# Named days (America/New_York). 30 Nov 2026 is a Monday, in EST (UTC-5).
SUNDAY = date(2026, 11, 29)
MONDAY = date(2026, 11, 30)
TUESDAY = date(2026, 12, 1)
# Spring forward: Sunday 8 March 2026, 02:00 EST -> 03:00 EDT.
FRIDAY_BEFORE_SPRING = date(2026, 3, 6)
DST_SPRING_FORWARD = date(2026, 3, 8)
MONDAY_AFTER_SPRING = date(2026, 3, 9)
# Fall back: Sunday 1 November 2026, 02:00 EDT -> 01:00 EST.
SATURDAY_BEFORE_FALL = date(2026, 10, 31)
DST_FALL_BACK = date(2026, 11, 1)
MONDAY_AFTER_FALL = date(2026, 11, 2)

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)  # well before every day above
MINUTES = timedelta(minutes=1)
RULES = ConsultationRules(
    duration=60 * MINUTES, slot_interval=30 * MINUTES, horizon=timedelta(days=400)
)
MORNING_AND_AFTERNOON = (("09:00", "12:00"), ("13:00", "17:00"))
WEEKDAY_HOURS = [
    "09:00", "09:30", "10:00", "10:30", "11:00",
    "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00",
]  # fmt: skip


def hhmm(text: str) -> time:
    return time.fromisoformat(text)


def local(day: date, text: str, *, fold: int = 0) -> datetime:
    return datetime.combine(day, hhmm(text), tzinfo=TZ).replace(fold=fold)


def week(ranges=MORNING_AND_AFTERNOON, weekdays=range(5)) -> tuple[WeeklyRange, ...]:
    return tuple(WeeklyRange(d, hhmm(a), hhmm(b)) for d in weekdays for a, b in ranges)


def clinician(cid: int = 1, hours=None, **kwargs) -> ClinicianSchedule:
    return ClinicianSchedule(cid, week() if hours is None else hours, **kwargs)


def schedule(*clinicians: ClinicianSchedule, closures=()) -> Schedule:
    return Schedule(TZ, clinicians or (clinician(),), closures)


def slots_on(day: date, sched=None, rules=RULES, booked=(), now=NOW, days=1, **kw) -> list[Slot]:
    sched = sched or schedule()
    return free_slots(sched, rules, booked, now=now, start_date=day, days=days, **kw)


def times(slots: list[Slot]) -> list[str]:
    """What the patient sees: clinic-local start times."""
    return [s.start.astimezone(TZ).strftime("%H:%M") for s in slots]


def utc_times(slots: list[Slot]) -> list[str]:
    return [s.start.strftime("%H:%MZ") for s in slots]


def booking(day: date, start: str, end: str, cid: int = 1, **kw) -> Booked:
    return Booked(cid, local(day, start), local(day, end), **kw)


def check(start: datetime, sched=None, rules=RULES, booked=(), now=NOW, cid=1):
    sched = sched or schedule()
    return check_slot(sched, rules, booked, now=now, clinician_id=cid, start=start)


# Working hours and the grid


def test_offers_grid_starts_that_fit_in_each_range():
    assert times(slots_on(MONDAY)) == WEEKDAY_HOURS


def test_a_slot_never_straddles_the_lunch_break():
    assert "11:30" not in times(slots_on(MONDAY))  # 11:30-12:30 would run into the break
    half_hour = ConsultationRules(duration=30 * MINUTES, slot_interval=30 * MINUTES)
    assert "11:30" in times(slots_on(MONDAY, rules=half_hour, now=local(MONDAY, "08:00")))


def test_grid_is_anchored_at_each_range_start():
    hours = week(ranges=(("09:15", "11:00"), ("13:10", "14:00")))
    rules = ConsultationRules(duration=30 * MINUTES, slot_interval=30 * MINUTES)
    sched = schedule(clinician(hours=hours))
    assert times(slots_on(MONDAY, sched, rules, now=local(SUNDAY, "12:00"))) == [
        "09:15", "09:45", "10:15", "13:10",
    ]  # fmt: skip


def test_no_slots_on_a_day_without_hours():
    assert slots_on(SUNDAY) == []


def test_slots_are_utc_instants_lasting_the_duration():
    first = slots_on(MONDAY)[0]
    assert first.start == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert first.start.tzinfo is UTC
    assert first.end.tzinfo is UTC
    assert first.end - first.start == timedelta(hours=1)


def test_sorted_by_start_then_clinician_id():
    sched = schedule(clinician(7), clinician(3))  # preference order 7, 3
    slots = slots_on(MONDAY, sched)
    assert [(t, s.clinician_id) for t, s in zip(times(slots), slots, strict=True)][:4] == [
        ("09:00", 3), ("09:00", 7), ("09:30", 3), ("09:30", 7),
    ]  # fmt: skip


def test_clinician_ids_limit_the_result():
    sched = schedule(clinician(1), clinician(2))
    assert {s.clinician_id for s in slots_on(MONDAY, sched, clinician_ids=[2])} == {2}
    assert slots_on(MONDAY, sched, clinician_ids=[99]) == []


def test_several_days_in_order():
    slots = slots_on(SUNDAY, days=3)
    assert {s.start.astimezone(TZ).date() for s in slots} == {MONDAY, TUESDAY}
    assert slots == sorted(slots, key=lambda s: (s.start, s.clinician_id))


# DST: wall-clock hours stay wall-clock; durations are real time


def every_day(ranges) -> Schedule:
    return schedule(clinician(hours=week(ranges=ranges, weekdays=range(7))))


def test_spring_forward_keeps_wall_clock_hours():
    sched = every_day((("09:00", "17:00"),))
    full_day = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)][:-1]
    for day, nine_am_utc in [
        (FRIDAY_BEFORE_SPRING, "14:00Z"),  # EST
        (DST_SPRING_FORWARD, "13:00Z"),  # EDT from 03:00
        (MONDAY_AFTER_SPRING, "13:00Z"),
    ]:
        slots = slots_on(day, sched)
        assert times(slots) == full_day
        assert utc_times(slots)[0] == nine_am_utc


def test_fall_back_keeps_wall_clock_hours():
    sched = every_day((("09:00", "17:00"),))
    full_day = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)][:-1]
    for day, nine_am_utc in [
        (SATURDAY_BEFORE_FALL, "13:00Z"),  # EDT
        (DST_FALL_BACK, "14:00Z"),  # EST from 02:00 EDT
        (MONDAY_AFTER_FALL, "14:00Z"),
    ]:
        slots = slots_on(day, sched)
        assert times(slots) == full_day
        assert utc_times(slots)[0] == nine_am_utc


def test_spring_forward_gap_times_are_not_offered():
    half_hour = ConsultationRules(30 * MINUTES, 30 * MINUTES, horizon=timedelta(days=400))
    slots = slots_on(DST_SPRING_FORWARD, every_day((("00:00", "04:00"),)), half_hour)
    # 02:00 and 02:30 do not exist that night.
    assert times(slots) == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30"]
    assert utc_times(slots) == ["05:00Z", "05:30Z", "06:00Z", "06:30Z", "07:00Z", "07:30Z"]


def test_grid_times_inside_the_spring_gap_are_skipped_not_moved():
    # On a 45-minute grid 02:15 does not exist; it must not turn into 03:15 EDT.
    rules = ConsultationRules(30 * MINUTES, 45 * MINUTES, horizon=timedelta(days=400))
    slots = slots_on(DST_SPRING_FORWARD, every_day((("00:00", "04:00"),)), rules)
    assert times(slots) == ["00:00", "00:45", "01:30", "03:00"]


def test_fall_back_repeated_hour_is_offered_once_at_its_first_occurrence():
    half_hour = ConsultationRules(30 * MINUTES, 30 * MINUTES, horizon=timedelta(days=400))
    slots = slots_on(DST_FALL_BACK, every_day((("00:00", "04:00"),)), half_hour)
    assert times(slots) == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30"]
    # 01:00 and 01:30 are EDT (first occurrence); nothing starts in the repeated EST hour.
    assert utc_times(slots) == [
        "04:00Z", "04:30Z", "05:00Z", "05:30Z", "07:00Z", "07:30Z", "08:00Z", "08:30Z",
    ]  # fmt: skip
    assert len({s.start for s in slots}) == len(slots)
    second_one_am = local(DST_FALL_BACK, "01:00", fold=1)
    assert check(second_one_am, every_day((("00:00", "04:00"),)), half_hour) is (
        Unbookable.NOT_OFFERED
    )


def test_hour_long_appointment_across_spring_forward_lasts_a_real_hour():
    slots = slots_on(DST_SPRING_FORWARD, every_day((("00:00", "04:00"),)))
    assert times(slots) == ["00:00", "00:30", "01:00", "01:30", "03:00"]  # 03:30 ends 04:30
    across = slots[3]
    assert across.end - across.start == timedelta(hours=1)
    assert across.end.astimezone(TZ).strftime("%H:%M %Z") == "03:30 EDT"


def test_hour_long_appointment_across_fall_back_lasts_a_real_hour():
    slots = slots_on(DST_FALL_BACK, every_day((("00:00", "04:00"),)))
    assert times(slots) == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]
    across = slots[3]
    assert across.end - across.start == timedelta(hours=1)
    assert across.end.astimezone(TZ).strftime("%H:%M %Z") == "01:30 EST"


def test_range_ending_in_the_spring_gap_ends_at_the_jump():
    sched = every_day((("00:00", "02:30"),))  # 02:30 never shows; work stops at 03:00 EDT
    half_hour = ConsultationRules(30 * MINUTES, 30 * MINUTES, horizon=timedelta(days=400))
    assert times(slots_on(DST_SPRING_FORWARD, sched, half_hour)) == [
        "00:00", "00:30", "01:00", "01:30",
    ]  # fmt: skip
    assert times(slots_on(DST_SPRING_FORWARD, sched)) == ["00:00", "00:30", "01:00"]


# Closures


def test_clinic_closure_for_a_whole_day():
    day_off = Span(local(MONDAY, "00:00"), local(TUESDAY, "00:00"))
    slots = slots_on(MONDAY, schedule(closures=(day_off,)), days=2)
    assert {s.start.astimezone(TZ).date() for s in slots} == {TUESDAY}


def test_part_day_closure_removes_only_overlapping_slots():
    meeting = Span(local(MONDAY, "10:00"), local(MONDAY, "11:00"))
    shown = times(slots_on(MONDAY, schedule(closures=(meeting,))))
    assert shown[:3] == ["09:00", "11:00", "13:00"]  # 09:00-10:00 and 11:00 only touch it


def test_clinician_closure_leaves_colleagues_free():
    leave = Span(local(MONDAY, "00:00"), local(MONDAY, "23:59"))
    sched = schedule(clinician(1, closures=(leave,)), clinician(2))
    assert {s.clinician_id for s in slots_on(MONDAY, sched)} == {2}


def test_closure_given_in_another_zone():
    meeting = Span(datetime(2026, 11, 30, 15, tzinfo=UTC), datetime(2026, 11, 30, 16, tzinfo=UTC))
    shown = times(slots_on(MONDAY, schedule(closures=(meeting,))))  # 10:00-11:00 local
    assert shown[:3] == ["09:00", "11:00", "13:00"]


# Buffers


def test_touching_bookings_do_not_block():
    booked = [booking(MONDAY, "10:00", "11:00")]
    assert times(slots_on(MONDAY, booked=booked))[:3] == ["09:00", "11:00", "13:00"]
    booked = [booking(MONDAY, "09:00", "10:00"), booking(MONDAY, "11:00", "12:00")]
    assert times(slots_on(MONDAY, booked=booked))[:2] == ["10:00", "13:00"]  # fits exactly


def test_new_consultation_buffer_keeps_a_gap_before_and_after_bookings():
    rules = ConsultationRules(60 * MINUTES, 30 * MINUTES, buffer_after=15 * MINUTES)
    booked = [booking(MONDAY, "11:00", "12:00")]
    # 10:00-11:00 plus 15 minutes runs into the 11:00 booking.
    shown = times(slots_on(MONDAY, rules=rules, booked=booked, now=local(SUNDAY, "12:00")))
    assert shown[:3] == ["09:00", "09:30", "13:00"]
    rules = ConsultationRules(60 * MINUTES, 30 * MINUTES, buffer_before=15 * MINUTES)
    booked = [booking(MONDAY, "09:00", "10:00")]
    # 10:00 would need 09:45-10:00 free before it.
    shown = times(slots_on(MONDAY, rules=rules, booked=booked, now=local(SUNDAY, "12:00")))
    assert shown[:2] == ["10:30", "11:00"]


def test_existing_booking_buffers_block_with_their_own_length():
    booked = [booking(MONDAY, "10:00", "11:00", buffer_after=30 * MINUTES)]
    shown = times(slots_on(MONDAY, booked=booked))
    assert shown[:3] == ["09:00", "13:00", "13:30"]  # 11:00 is inside the 30-minute buffer
    booked = [booking(MONDAY, "14:00", "15:00", buffer_before=30 * MINUTES)]
    assert "13:00" not in times(slots_on(MONDAY, booked=booked))  # ends where the buffer starts
    assert "12:30" not in times(slots_on(MONDAY, booked=booked))


def test_buffers_may_reach_outside_working_hours():
    rules = ConsultationRules(
        60 * MINUTES, 30 * MINUTES, buffer_before=30 * MINUTES, buffer_after=30 * MINUTES
    )
    assert times(slots_on(MONDAY, rules=rules, now=local(SUNDAY, "12:00"))) == WEEKDAY_HOURS


def test_other_clinicians_bookings_never_block():
    booked = [booking(MONDAY, "09:00", "17:00", cid=2)]
    sched = schedule(clinician(1, daily_cap=1), clinician(2))
    assert times(slots_on(MONDAY, sched, booked=booked, clinician_ids=[1])) == WEEKDAY_HOURS


def test_booking_given_in_another_zone():
    berlin = ZoneInfo("Europe/Berlin")  # 16:00 Berlin = 10:00 New York
    start = datetime(2026, 11, 30, 16, tzinfo=berlin)
    booked = [Booked(1, start, start + timedelta(hours=1))]
    assert times(slots_on(MONDAY, booked=booked))[:3] == ["09:00", "11:00", "13:00"]


# Notice, horizon, past


def test_minimum_notice():
    rules = ConsultationRules(60 * MINUTES, 30 * MINUTES, min_notice=timedelta(hours=2))
    now = local(MONDAY, "08:00")
    assert times(slots_on(MONDAY, rules=rules, now=now))[0] == "10:00"  # exactly 2 h is enough
    assert check(local(MONDAY, "09:30"), rules=rules, now=now) is Unbookable.TOO_SOON
    assert check(local(MONDAY, "10:00"), rules=rules, now=now) is None


def test_horizon():
    rules = ConsultationRules(60 * MINUTES, 30 * MINUTES, horizon=timedelta(days=1, hours=2))
    now = local(MONDAY, "08:00")
    assert times(slots_on(TUESDAY, rules=rules, now=now)) == ["09:00", "09:30", "10:00"]
    assert check(local(TUESDAY, "10:30"), rules=rules, now=now) is Unbookable.TOO_FAR


def test_past_times_are_not_offered():
    now = local(MONDAY, "10:15")
    assert times(slots_on(MONDAY, now=now))[0] == "10:30"
    assert check(local(MONDAY, "09:00"), now=now) is Unbookable.PAST


def test_now_in_another_zone_is_the_same_instant():
    tokyo_now = local(MONDAY, "10:15").astimezone(ZoneInfo("Asia/Tokyo"))
    assert slots_on(MONDAY, now=tokyo_now) == slots_on(MONDAY, now=local(MONDAY, "10:15"))


# Daily cap


def test_daily_cap_reached_closes_the_day_for_that_clinician():
    sched = schedule(clinician(1, daily_cap=2), clinician(2))
    booked = [booking(MONDAY, "09:00", "10:00"), booking(MONDAY, "13:00", "14:00")]
    slots = slots_on(MONDAY, sched, booked=booked, days=2)
    assert {(s.start.astimezone(TZ).date(), s.clinician_id) for s in slots} == {
        (MONDAY, 2), (TUESDAY, 1), (TUESDAY, 2),
    }  # fmt: skip
    assert check(local(MONDAY, "15:00"), sched, booked=booked) is Unbookable.TAKEN


def test_daily_cap_below_the_limit_still_offers_the_day():
    sched = schedule(clinician(1, daily_cap=2))
    booked = [booking(MONDAY, "09:00", "10:00")]
    assert times(slots_on(MONDAY, sched, booked=booked))[:2] == ["10:00", "10:30"]


def test_daily_cap_counts_the_clinic_local_day():
    # Monday 20:00 in New York is Tuesday 01:00 UTC: it counts for Monday.
    sched = schedule(clinician(1, daily_cap=1))
    booked = [booking(MONDAY, "20:00", "21:00")]
    slots = slots_on(MONDAY, sched, booked=booked, days=2)
    assert {s.start.astimezone(TZ).date() for s in slots} == {TUESDAY}


# check_slot: reasons and their order


def test_check_slot_accepts_every_listed_slot():
    booked = [booking(MONDAY, "10:00", "11:00")]
    for slot in slots_on(MONDAY, booked=booked):
        assert check(slot.start, booked=booked) is None


@pytest.mark.parametrize(
    ("start", "cid", "reason"),
    [
        (local(MONDAY, "09:10"), 1, Unbookable.NOT_OFFERED),  # off the grid
        (local(MONDAY, "11:30"), 1, Unbookable.NOT_OFFERED),  # straddles lunch
        (local(MONDAY, "18:00"), 1, Unbookable.NOT_OFFERED),  # after hours
        (local(SUNDAY, "10:00"), 1, Unbookable.NOT_OFFERED),  # no hours that day
        (local(MONDAY, "09:00"), 99, Unbookable.NOT_OFFERED),  # unknown clinician
        (local(MONDAY, "10:30"), 1, Unbookable.TAKEN),  # overlaps the 10:00 booking
        (local(MONDAY, "09:00"), 1, None),
    ],
)
def test_check_slot_reasons(start, cid, reason):
    booked = [booking(MONDAY, "10:00", "11:00")]
    assert check(start, booked=booked, cid=cid) is reason


def test_check_slot_reports_the_first_reason():
    now = local(MONDAY, "12:00")
    assert check(local(MONDAY, "09:10"), now=now) is Unbookable.PAST  # past beats off-grid
    closed = schedule(closures=(Span(local(MONDAY, "09:00"), local(MONDAY, "10:00")),))
    booked = [booking(MONDAY, "09:00", "10:00")]
    assert check(local(MONDAY, "09:00"), closed, booked=booked) is Unbookable.NOT_OFFERED


def test_naive_datetimes_are_refused():
    naive = datetime(2026, 11, 30, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        slots_on(MONDAY, now=naive)
    with pytest.raises(ValueError, match="naive"):
        check(naive)
    with pytest.raises(ValueError, match="naive"):
        first_available(schedule(), RULES, [], now=naive)
    with pytest.raises(ValueError, match="naive"):
        slots_on(MONDAY, booked=[Booked(1, naive, naive + timedelta(hours=1))])


def test_rules_must_make_sense():
    with pytest.raises(ValueError, match="positive"):
        slots_on(MONDAY, rules=ConsultationRules(timedelta(0), 30 * MINUTES))
    with pytest.raises(ValueError, match="positive"):
        check(local(MONDAY, "09:00"), rules=ConsultationRules(60 * MINUTES, timedelta(0)))


# first_available


def test_first_available_is_the_earliest_free_slot():
    slot = first_available(schedule(), RULES, [], now=local(SUNDAY, "12:00"))
    assert slot == Slot(local(MONDAY, "09:00"), local(MONDAY, "10:00"), 1)


def test_first_available_skips_full_days():
    sched = schedule(clinician(1, daily_cap=1))
    booked = [booking(MONDAY, "16:00", "17:00")]
    slot = first_available(sched, RULES, booked, now=local(SUNDAY, "12:00"))
    assert slot == Slot(local(TUESDAY, "09:00"), local(TUESDAY, "10:00"), 1)


def test_first_available_respects_clinician_ids_and_horizon():
    sched = schedule(clinician(1), clinician(2, hours=week(weekdays=[1])))  # 2 works Tuesdays
    slot = first_available(sched, RULES, [], now=local(SUNDAY, "12:00"), clinician_ids=[2])
    assert slot == Slot(local(TUESDAY, "09:00"), local(TUESDAY, "10:00"), 2)
    short = ConsultationRules(60 * MINUTES, 30 * MINUTES, horizon=timedelta(hours=20))
    assert first_available(sched, short, [], now=local(SUNDAY, "12:00")) is None


# one_per_start


def test_one_per_start_gives_each_time_to_the_least_busy_clinician():
    away = Span(local(MONDAY, "09:00"), local(MONDAY, "10:00"))
    sched = schedule(clinician(1), clinician(2), clinician(3, closures=(away,)))
    booked = [
        booking(MONDAY, "16:00", "17:00", cid=1),
        booking(MONDAY, "16:00", "17:00", cid=2),
        booking(TUESDAY, "16:00", "17:00", cid=3),  # another day: does not count
    ]
    chosen = one_per_start(slots_on(MONDAY, sched, booked=booked), booked, TZ)
    assert times(chosen) == WEEKDAY_HOURS
    # 3 has no bookings on Monday; while 3 is away (09:00, 09:30), 1 and 2 tie: lower id wins.
    assert [s.clinician_id for s in chosen] == [1, 1] + [3] * (len(WEEKDAY_HOURS) - 2)


def test_one_per_start_breaks_ties_by_input_order():
    start = local(MONDAY, "09:00")
    slots = [Slot(start, start + timedelta(hours=1), cid) for cid in (5, 2, 9)]
    assert one_per_start(slots, [], TZ)[0].clinician_id == 5
    free = slots_on(MONDAY, schedule(clinician(5), clinician(2)))
    assert {s.clinician_id for s in one_per_start(free, [], TZ)} == {2}  # lower id first


def test_one_per_start_is_sorted_and_merges_equal_instants_in_other_zones():
    nine = local(MONDAY, "09:00")
    ten = local(MONDAY, "10:00")
    slots = [
        Slot(ten, ten + timedelta(hours=1), 1),
        Slot(nine.astimezone(UTC), nine + timedelta(hours=1), 1),
        Slot(nine, nine + timedelta(hours=1), 2),
    ]
    chosen = one_per_start(slots, [booking(MONDAY, "15:00", "16:00", cid=1)], TZ)
    assert [(s.start, s.clinician_id) for s in chosen] == [(nine, 2), (ten, 1)]


# Purity


def test_engine_is_a_pure_leaf():
    source = Path(scheduling.__file__).read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports: nothing from microsite"
            imported.add(node.module.split(".")[0])
    assert imported <= {
        "__future__", "bisect", "collections", "dataclasses", "datetime", "enum", "functools",
        "operator", "zoneinfo",
    }  # fmt: skip
    assert not imported & {"flask", "sqlalchemy", "microsite"}
    clock_reads = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not calls & clock_reads
