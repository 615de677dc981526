"""Real processes for tests and benchmarks: gunicorn, `flask` commands, throwaway databases,
browsers (requests sessions) that fill in the booking form, and the seeding they start from.

The server and the commands run in their own processes, the way production runs them, so what
they share with the test is only the database (and the signing secret). The test seeds and
inspects that database through an app of its own in this process (`seed_app_for`), never serves
from it. Every process is started in its own session and stopped by its process-group id.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from microsite import create_app
from microsite.extensions import db
from microsite.models import Clinician, ConsultationType, WorkingHours

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "live-server-test-secret"  # noqa: S105 - a throwaway key for local processes
CLINIC_TIMEZONE = "America/New_York"
REQUEST_TIMEOUT_S = 30
START_TIMEOUT_S = 90.0  # four workers importing the app on a loaded 2-core machine
STOP_TIMEOUT_S = 10.0
PG_ADMIN_URL = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip()
PG_SKIP_REASON = (
    "MICROSITE_TEST_DATABASE_URL is not set: PostgreSQL process tests run in CI (.ci/run)"
)
# Module-scoped database fixtures take these params: SQLite always, PostgreSQL in CI.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
REFERENCE_RE = re.compile(r'class="reference-code">([A-Z0-9]+)<')
OVERLAPPING_PAIRS_SQL = (
    "SELECT count(*) FROM booking a JOIN booking b ON a.clinician_id = b.clinician_id "
    "AND a.id < b.id AND a.status <> 'cancelled' AND b.status <> 'cancelled' "
    "AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at"
)

PATIENT = {
    "full_name": "Jane Q. Patient",
    "email": "jane.patient@example.com",
    "phone": "(207) 555-0123",
    "birth_date-month": "05",
    "birth_date-day": "06",
    "birth_date-year": "1984",
    "note": "",
    "consent_privacy": "y",
    "ack_not_emergency": "y",
}
_HIDDEN_INPUT_RE = re.compile(r"<input\b[^>]*>")
_ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(database_uri: str, **extra: str) -> dict[str, str]:
    """The environment for a server or command: env-layer config, no bot fill-time guard."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROSITE_")}
    env.update(
        {
            "MICROSITE_SECRET_KEY": SECRET_KEY,
            "MICROSITE_SQLALCHEMY_DATABASE_URI": database_uri,
            "MICROSITE_BOOKING_MIN_FILL_SECONDS": "0",
            "MICROSITE_CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            # Load tests and races send many bookings from one address and one patient: limits
            # off (tests/test_abuse_limits.py turns them on for its own servers).
            "MICROSITE_RATELIMIT_ENABLED": "false",
            "MICROSITE_MAX_UPCOMING_PER_PATIENT": "0",
            "MICROSITE_TRUSTED_HOSTS": '["127.0.0.1", "localhost"]',
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_flask(
    args: Sequence[str],
    env: dict[str, str],
    *,
    app: str = "microsite",
    timeout: float = 60,
    input: str | None = None,  # noqa: A002 - subprocess.run's own name for standard input
) -> subprocess.CompletedProcess:
    """Run `flask --app <app> <args>` to completion (`input` on its standard input); raise
    with its output if it fails."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", app, *args],
        cwd=REPO_ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def migrate(database_uri: str) -> None:
    """`flask --app microsite db upgrade` on that database, in its own process."""
    run_flask(["db", "upgrade"], app_env(database_uri))


@contextmanager
def postgres_database(admin_url: str, prefix: str = "microsite_live") -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards even if the block fails."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def migrated_database(backend: str, folder: Path, prefix: str = "microsite_live") -> Iterator[str]:
    """A fresh database migrated by `flask db upgrade` (its URL): a SQLite file in `folder`, or
    a PostgreSQL database beside MICROSITE_TEST_DATABASE_URL's (skipped when that is unset)."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'bookings.sqlite3'}"
        migrate(url)
        yield url
        return
    if not PG_ADMIN_URL:
        pytest.skip(PG_SKIP_REASON)
    with postgres_database(PG_ADMIN_URL, prefix=prefix) as url:
        migrate(url)
        yield url


def stop_process_group(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the group a process leads (gunicorn's master and workers); SIGKILL if slow."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    # Workers that outlived their master (they should not) go with the group.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class LiveServer:
    """gunicorn serving one WSGI app on 127.0.0.1, its output in a log file."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        app: str = "wsgi:app",
        workers: int = 4,
        extra_args: Sequence[str] = (),
        health_path: str = "/healthz",
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.log_path = Path(log_path)
        self.app = app
        self.workers = workers
        self.extra_args = list(extra_args)
        self.health_path = health_path
        # e.g. setpriv ... to run the server as another user (the fault drills)
        self.command_prefix = list(command_prefix)
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.port = free_port()
        command = [
            *self.command_prefix,
            str(VENV_BIN / "gunicorn"),
            *("-w", str(self.workers), "-b", f"127.0.0.1:{self.port}"),
            *self.extra_args,
            self.app,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as one
            )
        try:
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}):\n{self.log()}")
            with suppress(requests.RequestException):
                if requests.get(self.url + self.health_path, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"gunicorn did not answer {self.health_path} in {START_TIMEOUT_S} s:\n{self.log()}"
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)

    def log(self, since: int = 0) -> str:
        """The server's output, from byte `since` (a `log_mark()`) on."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_mark(self) -> int:
        """Where the log ends now: a test sharing the server reads its own part with log(mark)."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def assert_clean_server_log(server: LiveServer, since: int = 0) -> None:
    """No lock error and no unhandled exception in the server's log (from the `since` mark on)."""
    log = server.log(since)
    assert "database is locked" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def hidden_fields(page: str) -> dict[str, str]:
    """name -> value of every <input type="hidden"> in a page, whatever the attribute order."""
    fields = {}
    for tag in _HIDDEN_INPUT_RE.findall(page):
        attrs = dict(_ATTR_RE.findall(tag))
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
    return fields


# --- browsers: the booking form as a patient without JavaScript sends it ---------------------


def slot_key(clinician_id: int, start: datetime) -> str:
    return f"{clinician_id}-{start.astimezone(UTC):%Y%m%dT%H%MZ}"


def open_form(server: LiveServer, type_id: int, key: str) -> tuple[requests.Session, dict]:
    """A patient's browser: GET the details form; return its cookies and the body to POST."""
    browser = new_browser()
    page = browser.get(
        f"{server.url}/book/details",
        params={"type": type_id, "slot": key},
        timeout=REQUEST_TIMEOUT_S,
    )
    assert page.status_code == 200, page.text[:500]
    hidden = hidden_fields(page.text)
    assert hidden.get("csrf_token"), "the form has no CSRF token"
    assert hidden.get("slot") == key
    return browser, {**hidden, **PATIENT}


def new_browser() -> requests.Session:
    """A browser that opens a new connection per request.

    gunicorn (gthread, see gunicorn.conf.py) keeps idle connections alive for a few seconds; a
    form held open longer and then POSTed on that connection can meet the server closing it,
    which a real browser answers by resending, and requests (never resending a POST) by failing.
    """
    browser = requests.Session()
    browser.headers["Connection"] = "close"
    return browser


def open_forms(server: LiveServer, type_id: int, keys: list[str]) -> list[tuple]:
    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(lambda key: open_form(server, type_id, key), keys))


def post_booking(browser: requests.Session, server: LiveServer, body: dict) -> requests.Response:
    return browser.post(
        f"{server.url}/book/details", data=body, allow_redirects=False, timeout=REQUEST_TIMEOUT_S
    )


def all_at_once(calls: list[Callable[[], object]]) -> list:
    """Run every call in its own thread, released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls), timeout=REQUEST_TIMEOUT_S)

    def released(call: Callable[[], object]) -> object:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=2 * REQUEST_TIMEOUT_S) for future in futures]


# --- seeding and inspecting the database, from this process -----------------------------------


def seed_app_for(database_uri: str, **config) -> Flask:
    """An app in this process on the server's database, to seed and inspect it (never to serve).
    Dispose of its engine when done (`db.engine.dispose()` in an app context)."""
    return create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": database_uri,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            **config,
        }
    )


@contextmanager
def seed_app_on(database_uri: str, **config) -> Iterator[Flask]:
    """seed_app_for, its connections closed afterwards."""
    app = seed_app_for(database_uri, **config)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


class Clinic(NamedTuple):
    clinician_id: int
    type_id: int


def seed_clinic(
    seed_app,
    *,
    duration_minutes: int = 60,
    slot_interval_minutes: int = 60,
    buffer_after_minutes: int = 0,
    daily_cap: int | None = None,
    mode: str = "in_person",
) -> Clinic:
    """A new clinician working 07:00-21:00 every day, and a type of theirs bookable at once."""
    tag = uuid.uuid4().hex[:8]
    with seed_app.app_context():
        clinician = Clinician(name=f"Dr. Live {tag}", email=f"{tag}@example.test")
        clinician.daily_cap = daily_cap
        clinician.weekly_hours = [
            WorkingHours(weekday=day, start_time=clock_time(7), end_time=clock_time(21))
            for day in range(7)
        ]
        consultation_type = ConsultationType(
            slug=f"live-{tag}",
            name="Initial consultation — in person"
            if mode == "in_person"
            else "Initial consultation — video",
            mode=mode,
            duration_minutes=duration_minutes,
            slot_interval_minutes=slot_interval_minutes,
            buffer_after_minutes=buffer_after_minutes,
            min_notice_minutes=0,
            horizon_days=30,
        )
        db.session.add_all([clinician, consultation_type])
        db.session.commit()
        clinic = Clinic(clinician.id, consultation_type.id)
        db.session.remove()
    return clinic


def tomorrow_at(hour: int, minute: int = 0, *, days: int = 1) -> datetime:
    """That clinic-local wall-clock time `days` from today, as a UTC instant (the servers run on
    the real clock)."""
    zone = ZoneInfo(CLINIC_TIMEZONE)
    day = datetime.now(zone).date() + timedelta(days=days)
    return datetime.combine(day, clock_time(hour, minute), tzinfo=zone).astimezone(UTC)


def query(seed_app, sql: str, **params) -> list:
    with seed_app.app_context(), db.engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def scalar(seed_app, sql: str, **params):
    return query(seed_app, sql, **params)[0][0]
