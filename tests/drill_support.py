"""Patients and checks for the fault drills: book through real pages, then audit the database.

Every booking attempt is recorded with its form's idempotency key and what the patient saw, so
after a drill the database can be held to what each patient was told: a confirmation matches
exactly one stored booking, a "nothing was booked" page matches none, and no clinician is
booked twice at overlapping times.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import threading
import time
from collections import deque
from contextlib import closing, suppress
from dataclasses import dataclass, field

import requests
from live_server import (
    OVERLAPPING_PAIRS_SQL,
    PATIENT,
    REFERENCE_RE,
    LiveServer,
    hidden_fields,
    new_browser,
    query,
    slot_key,
    tomorrow_at,
)
from sqlalchemy import text

from microsite.extensions import db

# Root ignores file modes: a test that needs them refused runs its process as `nobody`.
NOBODY = 65534
RUN_AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

NOTHING_BOOKED = "Nothing was booked."
UNCONFIRMED = "may or may not have been made"
# Short timeouts in the drills' servers, so "longer than the worker timeout" stays short.
WORKER_TIMEOUT_S = 10
DRILL_ENV = {
    "MICROSITE_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "MICROSITE_DB_STATEMENT_TIMEOUT_SECONDS": "1",
    "MICROSITE_DB_LOCK_TIMEOUT_SECONDS": "1",
    "MICROSITE_SQLITE_BUSY_TIMEOUT_MS": "1000",
    "MICROSITE_REQUEST_DEADLINE_SECONDS": "6",
    "MICROSITE_READYZ_TIMEOUT_SECONDS": "1",
    "MICROSITE_SLOT_CACHE_SECONDS": "0",
    "GUNICORN_TIMEOUT": str(WORKER_TIMEOUT_S),
    "GUNICORN_THREADS": "8",
}
CLIENT_TIMEOUT_S = 20  # a patient's browser; every answer must come well before it


@dataclass
class Form:
    """A details form a patient opened: their browser (cookies) and the body it will send."""

    browser: requests.Session
    body: dict

    @property
    def key(self) -> str:
        return self.body["idempotency_key"]


@dataclass
class Attempt:
    """One POST of a form and what the patient saw (status None: the connection broke)."""

    form: Form
    status: int | None
    page: str = ""
    reference: str | None = None
    seconds: float = 0.0
    finished_at: float = field(default_factory=time.monotonic)
    confirmation_lost: bool = False  # a 303 whose confirmation page never came


@dataclass
class Ledger:
    """Every attempt of a drill, from any thread."""

    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> Attempt:
        with self.lock:
            self.attempts.append(attempt)
        return attempt


def tomorrow_slots(clinician_id: int, days: int = 20) -> list[str]:
    """Keys of hourly times 08:00-19:00 clinic time over the next `days` days."""
    return [
        slot_key(clinician_id, tomorrow_at(hour, days=1 + day))
        for day in range(days)
        for hour in range(8, 20)
    ]


def open_form(server: LiveServer, type_id: int, key: str) -> Form | None | bool:
    """GET the details form like a browser; None when the site could not show it, False when
    the time was taken meanwhile."""
    browser = new_browser()
    try:
        page = browser.get(
            f"{server.url}/book/details",
            params={"type": type_id, "slot": key},
            timeout=CLIENT_TIMEOUT_S,
        )
    except requests.RequestException:
        return None
    if page.status_code == 409:
        return False  # the random time was taken meanwhile: not a failure
    if page.status_code != 200:
        assert page.status_code == 503, page.status_code  # the fault under drill
        return None
    return Form(browser, {**hidden_fields(page.text), **PATIENT})


def post(server: LiveServer, form: Form, ledger: Ledger) -> Attempt:
    """Send the form once; on a confirmation, read the reference the patient is shown."""
    started = time.monotonic()
    try:
        response = form.browser.post(
            f"{server.url}/book/details",
            data=form.body,
            allow_redirects=False,
            timeout=CLIENT_TIMEOUT_S,
        )
    except requests.RequestException:
        return ledger.add(Attempt(form, None, seconds=time.monotonic() - started))
    attempt = Attempt(form, response.status_code, response.text, None, time.monotonic() - started)
    if response.status_code == 303:
        try:
            confirmed = confirmation_page(server, form)
        except requests.RequestException as error:  # booked, but the patient never saw it
            attempt.page = f"the confirmation page did not load: {error}"
            attempt.confirmation_lost = True
            return ledger.add(attempt)
        if confirmed.status_code == 200:
            attempt.reference = REFERENCE_RE.search(confirmed.text).group(1)
        else:  # the booking exists; only its page could not be loaded just now
            assert confirmed.status_code == 503, confirmed.status_code
            assert "Your booking is safe." in confirmed.text
            assert NOTHING_BOOKED not in confirmed.text
    return ledger.add(attempt)


def confirmation_page(server: LiveServer, form: Form) -> requests.Response:
    """GET /book/confirmed, reloading (as a patient would) if the connection broke."""
    for _ in range(3):
        try:
            return form.browser.get(f"{server.url}/book/confirmed", timeout=CLIENT_TIMEOUT_S)
        except requests.ConnectionError:  # its worker was killed by the drill
            time.sleep(0.5)
    return form.browser.get(f"{server.url}/book/confirmed", timeout=CLIENT_TIMEOUT_S)


class Load:
    """Patients booking random times in background threads until stopped."""

    def __init__(self, server: LiveServer, type_id: int, keys: list[str], threads: int = 4):
        self.server, self.type_id, self.keys = server, type_id, keys
        self.ledger = Ledger()
        self.unshown_forms = 0
        self.errors: list[BaseException] = []  # a patient thread that broke: raised on exit
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        try:
            self._book_until_stopped()
        except BaseException as error:  # e.g. a page a patient must never see: fail the drill
            self.errors.append(error)

    def _book_until_stopped(self) -> None:
        rng = random.Random()  # noqa: S311 - spreading test load, not security
        while not self._stop.is_set():
            form = open_form(self.server, self.type_id, rng.choice(self.keys))
            if form is False:
                continue
            if form is None:
                self.unshown_forms += 1
                time.sleep(0.05)
                continue
            post(self.server, form, self.ledger)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2 * CLIENT_TIMEOUT_S + 5)
        if self.errors and _exc[0] is None:
            raise self.errors[0]


def stored_by_key(seed_app, key: str) -> list:
    return query(seed_app, "SELECT reference FROM booking WHERE idempotency_key = :k", k=key)


def assert_invariants(seed_app, attempts: list[Attempt], *, sqlite_path: str | None = None):
    """What every drill must leave behind (see the module docstring).

    A form sent more than once (a patient retrying after a 503) is judged by all its sends: a
    confirmation on any of them means exactly that one booking; none means nothing stored. Drills
    also call this before the retries, so a 503 is proven to have stored nothing on its own.
    """
    by_key: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_key.setdefault(attempt.form.key, []).append(attempt)
        if attempt.status == 503:
            assert NOTHING_BOOKED in attempt.page or UNCONFIRMED in attempt.page, attempt.page
        elif attempt.status == 409:
            assert "just taken" in attempt.page
        elif attempt.status not in (303, None):
            raise AssertionError(f"a patient got HTTP {attempt.status}: {attempt.page[:300]}")
    for key, sends in by_key.items():
        stored = [row.reference for row in stored_by_key(seed_app, key)]
        confirmed = {a.reference for a in sends if a.status == 303 and not a.confirmation_lost}
        if confirmed:
            assert len(confirmed) == 1, (key, confirmed)
            assert stored == list(confirmed), (key, confirmed, stored)
        elif any(a.confirmation_lost for a in sends):
            assert len(stored) == 1, (key, stored)  # booked; only its page never came
        elif any(a.status is None or UNCONFIRMED in a.page for a in sends):
            assert len(stored) <= 1  # the outcome was never shown: at most one booking
        else:
            assert stored == [], f"a booking stored for a patient told it was not: {key}"
    with seed_app.app_context(), db.engine.connect() as conn:
        assert conn.execute(text(OVERLAPPING_PAIRS_SQL)).scalar() == 0
    if sqlite_path:
        with closing(sqlite3.connect(sqlite_path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def assert_no_worker_was_killed_for_time(server: LiveServer, since: int = 0) -> None:
    """Nothing in the server's log (from the `since` mark on) says a wait ran into the worker
    timeout or an error went unhandled."""
    log = server.log(since)
    assert "WORKER TIMEOUT" not in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


class LateClients:
    """Clients that connect every `every` s while the block runs and send their GET only `delay`
    s after connecting (a slow phone, a busy laptop): their connection is accepted before the
    request arrives. Afterwards `status_lines` holds what each was answered.

    gthread hands such a connection back to its event loop after 20 ms without bytes
    (gunicorn.conf.py); a worker stopped by a reload in that moment must still answer it.
    """

    def __init__(self, server: LiveServer, path: str, *, every: float = 0.002, delay=0.25):
        self.address = ("127.0.0.1", server.port)
        self.request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        self.every, self.delay = every, delay
        self.sockets: list[socket.socket] = []
        self.status_lines: list[bytes] = []
        self.sent_after: dict[socket.socket, float] = {}  # seconds from connecting to sending
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect_and_send_late, daemon=True)

    def _connect_and_send_late(self) -> None:
        due: deque[tuple[float, socket.socket]] = deque()
        next_connect = time.monotonic()
        while not self._stop.is_set() or due:
            now = time.monotonic()
            if not self._stop.is_set() and now >= next_connect:
                sock = socket.create_connection(self.address, timeout=CLIENT_TIMEOUT_S)
                self.sockets.append(sock)
                due.append((now + self.delay, sock))
                next_connect = now + self.every
            while due and due[0][0] <= now:
                send_at, sock = due.popleft()
                self.sent_after[sock] = time.monotonic() - send_at + self.delay
                with suppress(OSError):  # closed already: read as unanswered below
                    sock.sendall(self.request.encode())
            time.sleep(0.0005)

    def __enter__(self) -> LateClients:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=CLIENT_TIMEOUT_S)
        answer_by = time.monotonic() + CLIENT_TIMEOUT_S  # one patience for them all
        for sock in self.sockets:
            sock.settimeout(max(0.01, answer_by - time.monotonic()))
            line = first_line(sock)
            if line != b"HTTP/1.1 200 OK":  # say how late this client really was
                line += f" (sent {self.sent_after.get(sock, -1):.2f} s after connecting)".encode()
            self.status_lines.append(line)
            sock.close()


def first_line(sock: socket.socket) -> bytes:
    """The status line the server answered on this connection, or what happened instead."""
    answer = b""
    try:
        while b"\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    except TimeoutError:
        return b"(no answer within the client's timeout)"
    except OSError as error:
        return f"({error})".encode()
    return answer.split(b"\r\n", 1)[0] if b"\r\n" in answer else b"(closed, no answer)"
