"""The HTTP benchmarks: the microsite under gunicorn beside a bare Flask app, both under wrk.

Only one server runs at a time, so the app and the yardstick never share the CPUs; each
measured run follows a short warm-up with the same script.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import create_engine, text

from tests.live_server import LiveServer, app_env, hidden_fields, postgres_database

from . import datasets
from .http_load import GET_LUA, LoadResult, WrkSettings, booking_script, run_wrk

WORKERS = 2
SETTINGS = WrkSettings(threads=2, connections=16, duration_s=10)
WARMUP = WrkSettings(threads=2, connections=16, duration_s=2)
PG_DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BARE_APP = "bench.bare_app:app"


@dataclass
class BookingRun:
    database: str
    result: LoadResult | None = None
    rows_written: int = 0
    skipped: str = ""
    server_errors: list[str] = field(default_factory=list)

    @property
    def booked(self) -> int:
        return self.result.count(303) if self.result else 0


@dataclass
class HttpResults:
    bare_get: LoadResult
    bare_post: LoadResult
    slots: LoadResult
    slots_listed: int
    demo: datasets.DemoData
    slots_path: str
    bookings: list[BookingRun]
    server_errors: list[str]
    postgres_version: str = ""


@contextmanager
def serving(app: str, database_uri: str, log_path: Path, health: str) -> Iterator[LiveServer]:
    # app_env already turns rate limits and the per-patient limit off; wrk also replays one
    # form (one stamp) for every booking, which the bot guard would rightly refuse.
    env = app_env(database_uri, MICROSITE_BOOKING_BOT_GUARD="false")
    server = LiveServer(env, log_path, app=app, workers=WORKERS, health_path=health)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def measure(label: str, url: str, script: Path, args: list[str] | None = None) -> LoadResult:
    run_wrk(f"{label} (warm-up)", url, script, WARMUP, args or [])
    return run_wrk(label, url, script, SETTINGS, args or [])


def log_problems(server: LiveServer) -> list[str]:
    log = server.log()
    problems = [
        f"{server.log_path.name}: {word}"
        for word in ("Traceback", "database is locked")
        if word in log
    ]
    if "Traceback" in log:
        # The work folder is deleted afterwards: keep the evidence in the printed report.
        excerpt = log[log.index("Traceback") :].splitlines()[:40]
        print(f"--- {server.log_path.name}, first traceback ---", *excerpt, sep="\n")
    return problems


def run_all(workdir: Path) -> HttpResults:
    get_lua = workdir / "get.lua"
    get_lua.write_text(GET_LUA)
    sqlite_uri = f"sqlite:///{workdir / 'bookings.sqlite3'}"
    clinic = datasets.booking_database(sqlite_uri)
    problems: list[str] = []

    bare_post_lua = workdir / "bare_post.lua"
    bare_post_lua.write_text(_booking_lua(clinic, _placeholder_form(clinic)))
    with serving(BARE_APP, sqlite_uri, workdir / "bare.log", "/") as bare:
        bare_get = measure("bare Flask GET /", f"{bare.url}/", get_lua)
        bare_post = measure(
            "bare Flask POST /", f"{bare.url}/", bare_post_lua, _booking_args(0, "/")
        )
    problems += log_problems(bare)

    demo_uri = f"sqlite:///{workdir / 'demo.sqlite3'}"
    demo = datasets.demo_database(demo_uri)
    slots_path = f"/api/slots?type={demo.type_id}&days=7"
    with serving("wsgi:app", demo_uri, workdir / "slots.log", "/healthz") as site:
        listed = requests.get(f"{site.url}{slots_path}", timeout=30).json()["slots"]
        slots = measure(f"GET {slots_path}", f"{site.url}{slots_path}", get_lua)
    problems += log_problems(site)

    bookings = [_booking_run("SQLite", sqlite_uri, clinic, workdir)]
    admin_url = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip() or PG_DEFAULT_ADMIN_URL
    pg_version = _postgres_version(admin_url)
    if pg_version is None:
        bookings.append(BookingRun("PostgreSQL", skipped=f"no PostgreSQL answered at {admin_url}"))
    else:
        with postgres_database(admin_url, prefix="microsite_bench") as pg_uri:
            pg_clinic = datasets.booking_database(pg_uri)
            bookings.append(_booking_run("PostgreSQL", pg_uri, pg_clinic, workdir))
    for run in bookings:
        problems += run.server_errors
    return HttpResults(
        bare_get=bare_get,
        bare_post=bare_post,
        slots=slots,
        slots_listed=len(listed),
        demo=demo,
        slots_path=slots_path,
        bookings=bookings,
        server_errors=problems,
        postgres_version=pg_version or "",
    )


def _booking_run(label: str, uri: str, clinic: datasets.BookingClinic, workdir: Path) -> BookingRun:
    run = BookingRun(label)
    script = workdir / f"book_{label.lower()}.lua"
    with serving("wsgi:app", uri, workdir / f"book_{label.lower()}.log", "/healthz") as site:
        script.write_text(_booking_lua(clinic, _real_form(site, clinic)))
        # The warm-up books from the middle of the slot list, the measured run from the start.
        run_wrk("warm-up", site.url, script, WARMUP, _booking_args(clinic.slots // 2))
        # Requests wrk abandoned at its deadline may still wait in gunicorn's queue: count
        # only once no more rows arrive, before and after the measured run.
        before = datasets.settled_booking_count(uri, clinic.type_id)
        run.result = run_wrk(
            f"POST /book/details ({label})", site.url, script, SETTINGS, _booking_args(0)
        )
        run.rows_written = datasets.settled_booking_count(uri, clinic.type_id) - before
    run.server_errors = log_problems(site)
    return run


def _booking_args(first: int, path: str = "/book/details") -> list[str]:
    return [str(first), str(SETTINGS.threads), path]


def _real_form(site: LiveServer, clinic: datasets.BookingClinic) -> tuple[str, str]:
    """One browser session: its cookie, and the form's hidden fields (CSRF token included)."""
    browser = requests.Session()
    key = f"{clinic.clinician_ids[0]}-{clinic.start_keys[0]}"
    page = browser.get(
        f"{site.url}/book/details", params={"type": clinic.type_id, "slot": key}, timeout=30
    )
    page.raise_for_status()
    hidden = hidden_fields(page.text)
    fields = {name: hidden[name] for name in ("csrf_token", "consultation_type", "started")}
    return urlencode({**fields, **datasets.PATIENT}), f"session={browser.cookies['session']}"


def _placeholder_form(clinic: datasets.BookingClinic) -> tuple[str, str]:
    """A body and cookie of the real ones' size, for the bare app (which ignores them)."""
    fields = {"csrf_token": "x" * 91, "consultation_type": clinic.type_id, "started": "y" * 20}
    return urlencode({**fields, **datasets.PATIENT}), f"session={'z' * 120}"


def _booking_lua(clinic: datasets.BookingClinic, form: tuple[str, str]) -> str:
    prefix, cookie = form
    return booking_script(
        clinician_ids=clinic.clinician_ids,
        start_keys=clinic.start_keys,
        prefix=prefix,
        cookie=cookie,
    )


def _postgres_version(admin_url: str) -> str | None:
    engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return conn.execute(text("SHOW server_version")).scalar_one()
    except Exception:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        return None
    finally:
        engine.dispose()
