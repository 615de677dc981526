"""Pure calendar-grid layout for the staff day and week views: no Flask, no database, no clock.

Bookings are placed by the clinic's wall-clock time, so 9:00 is on the 9:00 row on both sides
of a daylight-saving change. Rows are quarter hours; the range covers the usual working day
and grows to show every booking. Bookings that overlap in one column sit side by side (lanes).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ROW_MINUTES = 15
DEFAULT_FIRST_HOUR = 7
DEFAULT_LAST_HOUR = 20  # the grid ends at this hour
MAX_LANES = 4


@dataclass(frozen=True)
class Entry:
    """A booking as the grid needs it: an id, its instants, and which column it belongs in."""

    booking_id: int
    start: datetime  # aware
    end: datetime
    column: Hashable  # a date for the week view, a clinician id for the day view


@dataclass(frozen=True)
class Placed:
    entry: Entry
    local_start: datetime
    local_end: datetime
    row: int  # 1-based quarter-hour row within the column
    span: int
    lane: int  # 1-based
    lanes: int


@dataclass(frozen=True)
class Grid:
    first_hour: int
    last_hour: int
    columns: dict[Hashable, list[Placed]]

    @property
    def rows(self) -> int:
        return (self.last_hour - self.first_hour) * 60 // ROW_MINUTES

    @property
    def hours(self) -> list[tuple[int, int]]:
        """(hour, row) for each hour label."""
        per_hour = 60 // ROW_MINUTES
        return [
            (hour, 1 + (hour - self.first_hour) * per_hour)
            for hour in range(self.first_hour, self.last_hour)
        ]


def _minutes(local: datetime) -> int:
    return local.hour * 60 + local.minute


def _local_span(entry: Entry, tz: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The entry's wall-clock start and end, clipped to its local day."""
    local_start = entry.start.astimezone(tz)
    local_end = entry.end.astimezone(tz)
    day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return local_start, min(local_end, day_end)


def build_grid(
    entries: Sequence[Entry], columns: Sequence[Hashable], *, tz: ZoneInfo, day_of=None
) -> Grid:
    """Place entries in their columns. `day_of(entry)` gives the local day each column shows
    (default: the entry's own local start day)."""
    spans = []
    for entry in entries:
        if entry.column not in columns:
            continue
        day = day_of(entry) if day_of else entry.start.astimezone(tz).date()
        spans.append((entry, *_local_span(entry, tz, day)))
    first_hour, last_hour = DEFAULT_FIRST_HOUR, DEFAULT_LAST_HOUR
    for _entry, local_start, local_end in spans:
        first_hour = min(first_hour, local_start.hour)
        end_minutes = _minutes(local_end) or 24 * 60  # midnight at the end means 24:00
        if local_end.date() > local_start.date():
            end_minutes = 24 * 60
        last_hour = max(last_hour, -(-end_minutes // 60))
    placed: dict[Hashable, list[Placed]] = {column: [] for column in columns}
    for column in columns:
        in_column = sorted(
            (s for s in spans if s[0].column == column), key=lambda s: (s[1], s[0].booking_id)
        )
        placed[column] = _lay_out(in_column, first_hour)
    return Grid(first_hour, last_hour, placed)


def _lay_out(spans, first_hour: int) -> list[Placed]:
    """Rows and lanes for one column's entries, sorted by start."""
    rows = []
    for entry, local_start, local_end in spans:
        start_min = _minutes(local_start) - first_hour * 60
        end_min = (
            24 * 60 if local_end.date() > local_start.date() else (_minutes(local_end) or 24 * 60)
        )
        end_min -= first_hour * 60
        row = start_min // ROW_MINUTES + 1
        span = max(1, -(-(end_min - start_min) // ROW_MINUTES))
        rows.append((entry, local_start, local_end, row, span))
    # Greedy lanes within each cluster of overlapping entries.
    result: list[Placed] = []
    cluster: list[tuple] = []
    cluster_end = 0
    lane_ends: list[int] = []

    def flush() -> None:
        lanes = min(MAX_LANES, max((c[5] for c in cluster), default=0))
        for entry, local_start, local_end, row, span, lane in cluster:
            result.append(
                Placed(entry, local_start, local_end, row, span, min(lane, MAX_LANES), lanes)
            )

    for entry, local_start, local_end, row, span in rows:
        if cluster and row >= cluster_end:
            flush()
            cluster, lane_ends = [], []
        for index, lane_end in enumerate(lane_ends):
            if lane_end <= row:
                lane_ends[index] = row + span
                lane = index + 1
                break
        else:
            lane_ends.append(row + span)
            lane = len(lane_ends)
        cluster.append((entry, local_start, local_end, row, span, lane))
        cluster_end = max(cluster_end, row + span) if len(cluster) > 1 else row + span
    if cluster:
        flush()
    return result


def week_days(any_day: date) -> list[date]:
    """Monday to Sunday of the week that holds `any_day`."""
    monday = any_day - timedelta(days=any_day.weekday())
    return [monday + timedelta(days=n) for n in range(7)]
