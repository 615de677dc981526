"""The staff feed benchmark: a 10,000-booking feed built, served, and revalidated (304).

Targets (issue 7): build and serve in under 1 s; the 304 path at least 0.8 x the bare Flask
app's requests per second in the same run, same gunicorn and wrk settings.
`python -m bench.feeds` runs this part alone and prints its section.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import insert

from microsite.extensions import db
from microsite.models import Booking, Clinician, ConsultationType
from microsite.services import feeds
from tests.live_server import migrate

from .datasets import app_for
from .engine import time_flask
from .http_load import GET_LUA, LoadResult, WrkSettings, run_wrk, wrk_path
from .scenarios import BARE_APP, SETTINGS, serving

BOOKINGS = 10_000
CLINICIANS = 20
SPACING = timedelta(hours=3)  # per clinician: 500 bookings from 29 days ago to ~33 days ahead
BUILD_TARGET_S = 1.0
RATIO_TARGET = 0.8
TIMED_FETCHES = 5
# The 304 path and the bare app, alternated (same wrk threads and connections as before).
PAIRED = WrkSettings(SETTINGS.threads, SETTINGS.connections, duration_s=5)
PAIRED_WARMUP = WrkSettings(SETTINGS.threads, SETTINGS.connections, duration_s=2)
PAIRED_ROUNDS = 2


@dataclass
class FeedResults:
    bookings_in_feed: int
    feed_bytes: int
    build_s: float  # median, in process: validator + query + calendar
    build_cpu_s: float  # the same builds' CPU time (the machine may be shared)
    hello_s: float  # a bare Flask request through the test client, timed just after
    fetch_s: float  # median, a full 200 over HTTP from gunicorn
    bare: LoadResult
    not_modified: LoadResult


def _dataset(uri: str) -> str:
    """A migrated SQLite database, BOOKINGS bookings in the feed's window; the clinic's token."""
    migrate(uri)
    now = datetime.now(UTC)
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=29)
    with app_for(uri):
        kind = ConsultationType(
            slug="bench", name="Consultation", mode="in_person", duration_minutes=60,
            horizon_days=60,
        )  # fmt: skip
        clinicians = [
            Clinician(name=f"Dr. Bench {i}", email=f"c{i}@b.example") for i in range(CLINICIANS)
        ]
        db.session.add_all([kind, *clinicians])
        db.session.commit()
        rows = [
            {
                "uid": f"{uuid.uuid4()}@bench.example",
                "sequence": 0,
                "reference": f"B{n:05d}",
                "status": "cancelled" if n % 50 == 0 else "confirmed",
                "cancelled_at": now if n % 50 == 0 else None,
                "clinician_id": clinicians[n % CLINICIANS].id,
                "consultation_type_id": kind.id,
                "starts_at": first + SPACING * (n // CLINICIANS),
                "ends_at": first + SPACING * (n // CLINICIANS) + timedelta(hours=1),
                # The type has no buffers: the guarded span is the appointment itself.
                "blocked_starts_at": first + SPACING * (n // CLINICIANS),
                "blocked_ends_at": first + SPACING * (n // CLINICIANS) + timedelta(hours=1),
                "patient_name": "Bench Patient",
                "patient_email": "bench.patient@example.com",
                "patient_phone": "+12075550123",
                "patient_birth_date": date(1984, 5, 6),
                "patient_note": "",
                "created_at": now,
                "updated_at": now,
            }
            for n in range(BOOKINGS)
        ]
        db.session.execute(insert(Booking), rows)
        db.session.commit()
        return feeds.create_feed(None)


def _build_time(uri: str, token: str) -> tuple[float, float, int, int]:
    with app_for(uri):
        times, cpu, body = [], [], b""
        for _ in range(3):
            began, began_cpu = time.perf_counter(), time.process_time()
            body = feeds.build_feed_calendar(feeds.feed_state(token))
            times.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
    return (
        statistics.median(times),
        statistics.median(cpu),
        body.count(b"BEGIN:VEVENT"),
        len(body),
    )


def run(workdir: Path) -> FeedResults:
    uri = f"sqlite:///{workdir / 'feeds.sqlite3'}"
    token = _dataset(uri)
    build_s, build_cpu_s, in_feed, size = _build_time(uri, token)
    hello_s = time_flask()
    get_lua = workdir / "feed_get.lua"
    get_lua.write_text(GET_LUA)
    path = feeds.FEED_PATH.format(token=token)
    with (
        serving(BARE_APP, uri, workdir / "feeds_bare.log", "/") as bare_server,
        serving("wsgi:app", uri, workdir / "feeds.log", "/healthz") as site,
    ):
        requests.get(site.url + path, timeout=60).raise_for_status()  # warm both workers' code
        fetches = []
        for _ in range(TIMED_FETCHES):
            began = time.perf_counter()
            response = requests.get(site.url + path, timeout=60)
            response.raise_for_status()
            fetches.append(time.perf_counter() - began)
        etag = response.headers["ETag"]
        if any(ch in etag for ch in "'\\\n"):
            raise ValueError(f"unexpected ETag {etag!r}")
        lua = workdir / "feed_304.lua"
        lua.write_text(GET_LUA + f"\nwrk.headers[\"If-None-Match\"] = '{etag}'\n")
        # Paired like the page rows: the bare app and the 304 path in alternating rounds,
        # seconds apart, so a shared machine's load falls on both alike.
        label = f"GET {feeds.FEED_PATH} (304)"
        run_wrk(f"{label} (warm-up)", site.url + path, lua, PAIRED_WARMUP)
        run_wrk("bare Flask GET / (warm-up)", f"{bare_server.url}/", get_lua, PAIRED_WARMUP)
        bare_runs, not_modified_runs = [], []
        for _ in range(PAIRED_ROUNDS):
            bare_runs.append(run_wrk("bare Flask GET /", f"{bare_server.url}/", get_lua, PAIRED))
            not_modified_runs.append(run_wrk(label, site.url + path, lua, PAIRED))
    bare, not_modified = _combined(bare_runs), _combined(not_modified_runs)
    if not_modified.count(304) != not_modified.requests:
        raise RuntimeError(f"the 304 run answered {not_modified.statuses}")
    return FeedResults(
        in_feed,
        size,
        build_s,
        build_cpu_s,
        hello_s,
        statistics.median(fetches),
        bare,
        not_modified,
    )


def _combined(runs: list[LoadResult]) -> LoadResult:
    """Several rounds as one: requests and seconds summed, latencies the worst round's."""
    statuses: dict[int, int] = {}
    for run_ in runs:
        for code, count in run_.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    return LoadResult(
        label=runs[0].label,
        requests=sum(r.requests for r in runs),
        duration_s=sum(r.duration_s for r in runs),
        p50_ms=max(r.p50_ms for r in runs),
        p95_ms=max(r.p95_ms for r in runs),
        p99_ms=max(r.p99_ms for r in runs),
        max_ms=max(r.max_ms for r in runs),
        statuses=statuses,
    )


def render(result: FeedResults) -> str:
    ratio = result.not_modified.rps / result.bare.rps if result.bare.rps else 0.0
    ok_build = result.build_s < BUILD_TARGET_S and result.fetch_s < BUILD_TARGET_S
    lines = [
        "",
        f"### Staff feed: {BOOKINGS:,} bookings (`bench/feeds.py`)",
        "",
        f"The clinic's feed: {result.bookings_in_feed:,} events ({BOOKINGS // 50} of them "
        f"cancelled), {result.feed_bytes / 1e6:.1f} MB; SQLite, gunicorn `-w 2`.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| build in process (validator + query + calendar), median of 3 | "
        f"{result.build_s * 1000:.0f} ms (CPU {result.build_cpu_s * 1000:.0f} ms) |",
        f"| the build in bare Flask requests (test client, {result.hello_s * 1e6:.0f} µs each) | "
        f"{result.build_s / result.hello_s:,.0f} |",
        f"| full `200` download over HTTP, median of {TIMED_FETCHES} | "
        f"{result.fetch_s * 1000:.0f} ms |",
        f"| bare Flask `GET /`, requests/s | {result.bare.rps:,.0f} |",
        f"| feed with `If-None-Match` (all 304), requests/s | {result.not_modified.rps:,.0f} |",
        f"| 304 path × bare rps | {ratio:.2f} |",
        "",
        f"- {'Met' if ok_build else 'MISSED'}: build and serve under {BUILD_TARGET_S:.0f} s.",
        f"- {'Met' if ratio >= RATIO_TARGET else 'MISSED'}: 304 path {ratio:.2f} × bare "
        f"(target ≥ {RATIO_TARGET}); {PAIRED_ROUNDS} alternating rounds of "
        f"`{PAIRED.describe()}` for each, after a {PAIRED_WARMUP.duration_s} s warm-up.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    wrk_path()
    with tempfile.TemporaryDirectory(prefix="microsite-bench-feeds-") as workdir:
        print(render(run(Path(workdir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
