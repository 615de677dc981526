"""The pure calendar grid: wall-clock rows across both DST changes, lanes for overlaps."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from microsite.staff_grid import Entry, build_grid, week_days

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def placed_rows(grid, column):
    return [(p.entry.booking_id, p.row, p.span, p.lane, p.lanes) for p in grid.columns[column]]


def test_nine_oclock_is_on_the_nine_oclock_row_on_both_sides_of_spring_forward():
    days = week_days(date(2026, 3, 8))  # Mon 2 .. Sun 8 March; clocks go forward on the 8th
    assert days[0] == date(2026, 3, 2)
    assert days[-1] == date(2026, 3, 8)
    entries = [
        Entry(1, utc(2026, 3, 2, 14), utc(2026, 3, 2, 15), date(2026, 3, 2)),  # 9:00 EST
        Entry(2, utc(2026, 3, 8, 13), utc(2026, 3, 8, 14), date(2026, 3, 8)),  # 9:00 EDT
    ]
    grid = build_grid(entries, days, tz=NEW_YORK)
    nine = 1 + (9 - grid.first_hour) * 4
    assert placed_rows(grid, date(2026, 3, 2)) == [(1, nine, 4, 1, 1)]
    assert placed_rows(grid, date(2026, 3, 8)) == [(2, nine, 4, 1, 1)]


def test_fall_back_week_keeps_wall_clock_rows_and_the_right_day():
    days = week_days(date(2026, 11, 1))  # Mon 26 Oct .. Sun 1 Nov; clocks go back on the 1st
    entries = [
        Entry(1, utc(2026, 10, 26, 13), utc(2026, 10, 26, 14), date(2026, 10, 26)),  # 9:00 EDT
        Entry(2, utc(2026, 11, 1, 14), utc(2026, 11, 1, 15), date(2026, 11, 1)),  # 9:00 EST
        # 23:30-00:30 local on Saturday 31 Oct: drawn on Saturday, to the end of the day.
        Entry(3, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 4, 30), date(2026, 10, 31)),
    ]
    grid = build_grid(entries, days, tz=NEW_YORK)
    nine = 1 + (9 - grid.first_hour) * 4
    assert placed_rows(grid, date(2026, 10, 26)) == [(1, nine, 4, 1, 1)]
    assert placed_rows(grid, date(2026, 11, 1)) == [(2, nine, 4, 1, 1)]
    assert grid.last_hour == 24
    late = grid.columns[date(2026, 10, 31)][0]
    assert (late.row, late.span) == (1 + (23 - grid.first_hour) * 4 + 2, 2)


def test_the_range_grows_to_show_early_bookings():
    day = date(2026, 12, 1)
    grid = build_grid(
        [Entry(1, utc(2026, 12, 1, 11), utc(2026, 12, 1, 12), day)], [day], tz=NEW_YORK
    )
    assert grid.first_hour == 6
    assert placed_rows(grid, day) == [(1, 1, 4, 1, 1)]
    assert grid.hours[0] == (6, 1)
    assert grid.rows == (20 - 6) * 4


def test_overlapping_bookings_sit_side_by_side_and_the_next_one_is_full_width():
    day = date(2026, 12, 1)
    entries = [
        Entry(1, utc(2026, 12, 1, 14), utc(2026, 12, 1, 15), day),
        Entry(2, utc(2026, 12, 1, 14, 30), utc(2026, 12, 1, 15, 30), day),
        Entry(3, utc(2026, 12, 1, 15), utc(2026, 12, 1, 16), day),
        Entry(4, utc(2026, 12, 1, 17), utc(2026, 12, 1, 17, 45), day),
    ]
    rows = placed_rows(build_grid(entries, [day], tz=NEW_YORK), day)
    assert [(r[0], r[3], r[4]) for r in rows] == [(1, 1, 2), (2, 2, 2), (3, 1, 2), (4, 1, 1)]
    assert rows[3][2] == 3  # 45 minutes: three quarter-hour rows


def test_entries_for_columns_not_shown_are_left_out():
    day = date(2026, 12, 1)
    entry = Entry(1, utc(2026, 12, 1, 14), utc(2026, 12, 1, 15), 99)
    grid = build_grid([entry], [7], tz=NEW_YORK, day_of=lambda _e: day)
    assert grid.columns == {7: []}
