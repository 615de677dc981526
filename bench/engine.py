"""Benchmark of the pure slot engine, reported as a ratio to a bare Flask request.

The dataset: 10 clinicians, Mon-Fri 09:00-12:00 and 13:00-17:00 (America/New_York), 60-minute
consultations on a 30-minute grid with a 10-minute buffer after, a 90-day window that crosses
the March DST change, one clinic holiday, one week off per clinician, a daily cap of 6 for half
of them, and N existing bookings on random grid starts inside the window (built with a seeded
random.Random, so every run sees the same data). Larger N overlap each other, which the
database would refuse but the engine must still handle; they also leave fewer free slots.

The calibration, a bare Flask "hello world" through the test client, is timed in the same run,
so the engine's cost can be compared across machines as a ratio. A p95 far above its median
(seen with the 7,000-slot outputs) is the interpreter's occasional full garbage collection of
the whole process heap (Flask and SQLAlchemy are imported), not the engine's own work.

Run: .venv/bin/python bench/engine.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time as timer
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask  # noqa: E402

from microsite import scheduling  # noqa: E402

SEED = 20260202
TZ = ZoneInfo("America/New_York")
FIRST_DAY = date(2026, 2, 2)  # a Monday; the window crosses the 8 March spring-forward
DAYS = 90
CLINICIANS = 10
BOOKING_COUNTS = (0, 1_000, 5_000, 20_000)
CALLS = 30
FLASK_REQUESTS = 2_000
BUDGET_MS = 25.0  # the requirement for 5,000 bookings
RULES = scheduling.ConsultationRules(
    duration=timedelta(minutes=60),
    slot_interval=timedelta(minutes=30),
    min_notice=timedelta(hours=24),
    horizon=timedelta(days=120),  # longer than the window, so all 90 days are computed
    buffer_after=timedelta(minutes=10),
)
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def build_schedule(rng: random.Random) -> scheduling.Schedule:
    hours = tuple(
        scheduling.WeeklyRange(weekday, start, end)
        for weekday in range(5)
        for start, end in ((time(9), time(12)), (time(13), time(17)))
    )
    clinicians = []
    for cid in range(1, CLINICIANS + 1):
        off = FIRST_DAY + timedelta(days=rng.randrange(DAYS - 7))
        week_off = scheduling.Span(_local(off, time(0)), _local(off + timedelta(days=7), time(0)))
        cap = 6 if cid % 2 else None
        clinicians.append(scheduling.ClinicianSchedule(cid, hours, (week_off,), cap))
    holiday = FIRST_DAY + timedelta(days=14)
    closure = scheduling.Span(_local(holiday, time(0)), _local(holiday, time(23, 59)))
    return scheduling.Schedule(TZ, tuple(clinicians), (closure,))


def build_booked(rng: random.Random, count: int) -> list[scheduling.Booked]:
    workdays = [
        FIRST_DAY + timedelta(days=i)
        for i in range(DAYS)
        if (FIRST_DAY + timedelta(days=i)).weekday() < 5
    ]
    starts = [
        time(h, m) for h in (9, 10, 11, 13, 14, 15, 16) for m in (0, 30) if (h, m) != (11, 30)
    ]
    booked = []
    for _ in range(count):
        start = _local(rng.choice(workdays), rng.choice(starts)).astimezone(UTC)
        booked.append(
            scheduling.Booked(
                clinician_id=rng.randint(1, CLINICIANS),
                start=start,
                end=start + timedelta(minutes=60),
                buffer_after=timedelta(minutes=rng.choice((0, 10))),
            )
        )
    return booked


def time_engine(schedule: scheduling.Schedule, booked: list[scheduling.Booked]) -> dict:
    def call() -> list[scheduling.Slot]:
        return scheduling.free_slots(
            schedule, RULES, booked, now=NOW, start_date=FIRST_DAY, days=DAYS
        )

    slots = call()  # warm up
    samples = []
    for _ in range(CALLS):
        began = timer.perf_counter()
        slots = call()
        samples.append(timer.perf_counter() - began)
    return {
        "median_ms": _ms(statistics.median(samples)),
        "p95_ms": _ms(_p95(samples)),
        "slots": len(slots),
    }


def time_flask() -> float:
    """Median seconds per GET / on a bare Flask app through its test client."""
    app = Flask("calibration")
    app.add_url_rule("/", "hello", lambda: "Hello, World!")
    client = app.test_client()
    for _ in range(100):  # warm up
        client.get("/")
    samples = []
    for _ in range(FLASK_REQUESTS):
        began = timer.perf_counter()
        client.get("/")
        samples.append(timer.perf_counter() - began)
    return statistics.median(samples)


def run() -> dict:
    """Time free_slots for each booking count; return the figures and the Flask calibration."""
    rng = random.Random(SEED)
    schedule = build_schedule(rng)
    flask_s = time_flask()
    rows = []
    for count in BOOKING_COUNTS:
        figures = time_engine(schedule, build_booked(random.Random(SEED + count), count))
        figures["bookings"] = count
        figures["ratio_to_flask"] = round(figures["median_ms"] / _ms(flask_s), 1)
        rows.append(figures)
    return {
        "clinicians": CLINICIANS,
        "days": DAYS,
        "calls": CALLS,
        "flask_hello_ms": _ms(flask_s),
        "budget_ms": BUDGET_MS,
        "rows": rows,
    }


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TZ)


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _markdown(result: dict) -> str:
    lines = [
        f"free_slots: {result['clinicians']} clinicians x {result['days']} days, "
        f"{result['calls']} calls each; bare Flask GET / = {result['flask_hello_ms']} ms "
        f"(median); budget {result['budget_ms']} ms at 5,000 bookings",
        "",
        "| bookings | free slots | median ms | p95 ms | median / Flask request |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['bookings']:,} | {row['slots']:,} | {row['median_ms']} | {row['p95_ms']} "
            f"| {row['ratio_to_flask']}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(_markdown(run()))
