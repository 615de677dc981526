"""The HTTP benchmarks: the microsite under gunicorn beside a bare Flask app, both under wrk.

Only one server runs at a time, so the app and the yardstick never share the CPUs; each
measured run follows a short warm-up with the same script.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import create_engine, text

from tests.live_server import LiveServer, app_env, hidden_fields, postgres_database

from . import datasets, pages
from .http_load import LoadResult, WrkSettings, booking_script, run_wrk

WORKERS = 2
# The booking run, as before; the page runs use bench.pages' paired rounds (-c20).
SETTINGS = WrkSettings(threads=2, connections=16, duration_s=10)
WARMUP = WrkSettings(threads=2, connections=16, duration_s=2)
PG_DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BARE_APP = "bench.bare_app:app"
# Load tests must not be throttled: the hardening work adds a rate limiter behind this switch.
# app_env already turns rate limits and the per-patient limit off; wrk also replays one form
# (one stamp) for every booking, which the bot guard would rightly refuse.
BENCH_ENV = {"MICROSITE_RATELIMIT_ENABLED": "false", "MICROSITE_BOOKING_BOT_GUARD": "false"}


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
    bare_post: LoadResult
    pages: list[pages.PageRun]
    weights: list[pages.PageWeight]
    slots_listed: int
    demo: datasets.DemoData
    bookings: list[BookingRun]
    server_errors: list[str]
    postgres_version: str = ""


@contextmanager
def page_servers(
    demo_uri: str, workdir: Path
) -> Iterator[tuple[LiveServer, LiveServer, LiveServer]]:
    """The bare app, the site, and the site with SLOT_CACHE_SECONDS=0, on one demo database.

    The three idle while another is measured; only one is under load at a time.
    """
    with (
        serving(BARE_APP, demo_uri, workdir / "bare.log", "/") as bare,
        serving("wsgi:app", demo_uri, workdir / "site.log", "/healthz") as site,
        serving(
            "wsgi:app",
            demo_uri,
            workdir / "nocache.log",
            "/healthz",
            MICROSITE_SLOT_CACHE_SECONDS="0",
        ) as nocache,
    ):
        yield bare, site, nocache


@contextmanager
def serving(
    app: str, database_uri: str, log_path: Path, health: str, **env: str
) -> Iterator[LiveServer]:
    server = LiveServer(
        app_env(database_uri, **BENCH_ENV, **env),
        log_path,
        app=app,
        workers=WORKERS,
        health_path=health,
    )
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
    sqlite_uri = f"sqlite:///{workdir / 'bookings.sqlite3'}"
    clinic = datasets.booking_database(sqlite_uri)
    problems: list[str] = []

    demo_uri = f"sqlite:///{workdir / 'demo.sqlite3'}"
    demo = datasets.demo_database(demo_uri)
    with page_servers(demo_uri, workdir) as (bare, site, nocache):
        listed = requests.get(
            f"{site.url}/api/slots?type={demo.type_id}&days=7", timeout=30
        ).json()["slots"]
        # The details form for the first free time; the confirmation of the last one.
        confirmed_cookie = pages.book_once(site, demo.type_id, _clinician_key(listed[-1]))
        cases = pages.cases(demo.type_id, _clinician_key(listed[0]), confirmed_cookie)
        weights = pages.weigh(cases, site)
        page_runs = pages.run(cases, bare, {"site": site, "nocache": nocache}, workdir)
        bare_post = _bare_post(bare, clinic, workdir)
    for server in (bare, site, nocache):
        problems += log_problems(server)

    bookings, pg_version = run_bookings(sqlite_uri, clinic, workdir)
    for run in bookings:
        problems += run.server_errors
    return HttpResults(
        bare_post=bare_post,
        pages=page_runs,
        weights=weights,
        slots_listed=len(listed),
        demo=demo,
        bookings=bookings,
        server_errors=problems,
        postgres_version=pg_version or "",
    )


def _bare_post(bare: LiveServer, clinic: datasets.BookingClinic, workdir: Path) -> LoadResult:
    """The bare app under the booking script: same body, same cookie, same settings."""
    bare_post_lua = workdir / "bare_post.lua"
    bare_post_lua.write_text(_booking_lua(clinic, _placeholder_form(clinic)))
    return measure("bare Flask POST /", f"{bare.url}/", bare_post_lua, _booking_args(0, "/"))


def run_bookings(
    sqlite_uri: str, clinic: datasets.BookingClinic, workdir: Path
) -> tuple[list[BookingRun], str | None]:
    """The booking POSTs on SQLite, then on PostgreSQL when a server answers; its version."""
    bookings = [_booking_run("SQLite", sqlite_uri, clinic, workdir)]
    admin_url = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip() or PG_DEFAULT_ADMIN_URL
    pg_version = _postgres_version(admin_url)
    if pg_version is None:
        bookings.append(BookingRun("PostgreSQL", skipped=f"no PostgreSQL answered at {admin_url}"))
    else:
        with postgres_database(admin_url, prefix="microsite_bench") as pg_uri:
            pg_clinic = datasets.booking_database(pg_uri)
            bookings.append(_booking_run("PostgreSQL", pg_uri, pg_clinic, workdir))
    return bookings, pg_version


def spot_pages(labels: list[str]) -> None:
    """Some rows of section 2 alone (the labels' first words), e.g. `details confirmation`."""
    with tempfile.TemporaryDirectory(prefix="microsite-bench-pages-") as name:
        workdir = Path(name)
        demo_uri = f"sqlite:///{workdir / 'demo.sqlite3'}"
        demo = datasets.demo_database(demo_uri)
        with (
            serving(BARE_APP, demo_uri, workdir / "bare.log", "/") as bare,
            serving("wsgi:app", demo_uri, workdir / "site.log", "/healthz") as site,
        ):
            listed = requests.get(
                f"{site.url}/api/slots?type={demo.type_id}&days=7", timeout=30
            ).json()["slots"]
            cookie = pages.book_once(site, demo.type_id, _clinician_key(listed[-1]))
            chosen = [
                case
                for case in pages.cases(demo.type_id, _clinician_key(listed[0]), cookie)
                if case.server == "site" and case.label.split()[0] in labels
            ]
            print("| page | requests/s | bare requests/s | × bare | pairs | CPU × bare | status |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for run in pages.run(chosen, bare, {"site": site}, workdir):
                print(f"{pages.spot_row(run)} {run.unexpected} unexpected |")
        for server in (bare, site):
            log_problems(server)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.scenarios`: the booking POSTs alone (bare app, SQLite, PostgreSQL).

    Prints the same table as section 3 of `make bench` (about a minute); docs untouched.
    `python -m bench.scenarios pages details confirmation` measures those page rows instead.
    """
    from types import SimpleNamespace

    from . import report

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["pages"]:
        spot_pages(args[1:])
        return 0
    with tempfile.TemporaryDirectory(prefix="microsite-bench-bookings-") as name:
        workdir = Path(name)
        sqlite_uri = f"sqlite:///{workdir / 'bookings.sqlite3'}"
        clinic = datasets.booking_database(sqlite_uri)
        # The bare app needs a database only to start like the site; the clinic's will do.
        with serving(BARE_APP, sqlite_uri, workdir / "bare.log", "/") as bare:
            bare_post = _bare_post(bare, clinic, workdir)
        bookings, _version = run_bookings(sqlite_uri, clinic, workdir)
    section = report.bookings_section(SimpleNamespace(bare_post=bare_post, bookings=bookings))
    problems = [problem for run in bookings for problem in run.server_errors]
    print("\n".join([*section, *(f"- Server log shows {p}" for p in problems)]))
    return 0


def _clinician_key(slot: dict) -> str:
    """A listed slot's key for its own clinician (the form accepts both kinds)."""
    return f"{slot['clinician']['id']}-{slot['key'].split('-', 1)[1]}"


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


if __name__ == "__main__":
    sys.exit(main())
