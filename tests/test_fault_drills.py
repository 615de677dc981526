"""Fault drills: real gunicorn workers, real faults; the booking guarantee and the truth hold.

Each drill starts gunicorn with gunicorn.conf.py (gthread workers) and short time budgets
(drill_support.DRILL_ENV: worker timeout 10 s, statements 1 s, locks 1 s, deadline 6 s), injects
one fault, and afterwards holds the database to what every patient was told
(drill_support.assert_invariants): no overlapping bookings, every confirmation one stored
booking, nothing stored for a "nothing was booked" page, and SQLite's integrity_check passes.
PostgreSQL is faulted only through a TCP proxy the test owns; the server itself is never touched.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from drill_support import (
    CLIENT_TIMEOUT_S,
    DRILL_ENV,
    NOBODY,
    NOTHING_BOOKED,
    RUN_AS_NOBODY,
    WORKER_TIMEOUT_S,
    LateClients,
    Ledger,
    Load,
    assert_invariants,
    assert_no_worker_was_killed_for_time,
    first_line,
    open_form,
    post,
    tomorrow_slots,
)
from live_server import (
    BACKENDS,
    VENV_BIN,
    LiveServer,
    app_env,
    migrate,
    migrated_database,
    seed_app_for,
    seed_app_on,
    seed_clinic,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tcp_proxy import TcpProxy

from microsite.extensions import db

pytestmark = pytest.mark.slow


# --- databases and servers -------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def drill_database(request, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("drills")
    with migrated_database(request.param, folder, prefix="microsite_drill") as url:
        yield url


@pytest.fixture(scope="module")
def seed_app(drill_database):
    with seed_app_on(drill_database) as app:
        yield app


@pytest.fixture(scope="module")
def shared_server(drill_database, tmp_path_factory) -> Iterator[LiveServer]:
    """One drill server for the module's drills that need no special one: each drill books its
    own new clinician, and reads only its own part of the log (log_mark)."""
    server = drill_server(drill_database, tmp_path_factory.mktemp("drills") / "gunicorn.log")
    try:
        yield server
    finally:
        server.stop()


def sqlite_file(url: str) -> str | None:
    return make_url(url).database if url.startswith("sqlite") else None


def drill_server(url: str, log: Path, *, workers: int = 2, prefix=(), **env: str) -> LiveServer:
    return LiveServer(
        app_env(url, **DRILL_ENV, **env), log, workers=workers, command_prefix=prefix
    ).start()


def get(server: LiveServer, path: str, timeout: float = CLIENT_TIMEOUT_S) -> requests.Response:
    return requests.get(server.url + path, timeout=timeout)


def timed_get(server: LiveServer, path: str) -> tuple[int, float]:
    started = time.monotonic()
    status = get(server, path).status_code
    return status, time.monotonic() - started


def worker_pids(server: LiveServer) -> set[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return {int(pid) for pid in children.read_text().split()}


def open_forms(server: LiveServer, type_id: int, keys: list[str]) -> list:
    with ThreadPoolExecutor(max_workers=8) as pool:
        forms = list(pool.map(lambda key: open_form(server, type_id, key), keys))
    assert all(forms), "the site could not show a booking form before the fault"
    return forms


def post_all(server: LiveServer, forms: list, ledger: Ledger) -> list:
    with ThreadPoolExecutor(max_workers=max(1, len(forms))) as pool:
        return list(pool.map(lambda form: post(server, form, ledger), forms))


def assert_every_worker_books(server: LiveServer, type_id: int, keys: list[str], ledger: Ledger):
    """Fresh patients, more than there are threads, all booked: no worker kept a bad state."""
    attempts = post_all(server, open_forms(server, type_id, keys), ledger)
    assert [a.status for a in attempts] == [303] * len(keys), [a.status for a in attempts]


# --- 1. SIGKILL inside a booking ----------------------------------------------------------------


def flock_holders(lock_path: str) -> set[int]:
    """pids holding an flock on this file, from /proc/locks."""
    inode = os.stat(lock_path).st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and parts[-3].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(parts[-4]))
    return holders


def pg_booking_backends_pids(seed_app, database: str) -> set[int]:
    """Worker pids inside book_slot's transaction right now (their backend's last query)."""
    with seed_app.app_context(), db.engine.connect() as conn:
        ports = conn.execute(
            text(
                "SELECT client_port FROM pg_stat_activity WHERE datname = :d "
                "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
                "AND (query ILIKE :probe OR query ILIKE :insert)"
            ),
            # book_slot's transaction: its idempotency probe, then the INSERT.
            {"d": database, "probe": "%idempotency_key%", "insert": "%INSERT INTO booking%"},
        ).scalars()
        ports = [port for port in ports if port]
    pids = set()
    for port in ports:
        out = subprocess.run(
            ["ss", "-tnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
        pids |= {int(pid) for pid in re.findall(r"pid=(\d+)", out)}
    return pids


def test_drill_1_worker_killed_inside_a_booking_loses_nothing(
    drill_database, seed_app, shared_server
):
    server = shared_server
    clinician_id, type_id = seed_clinic(seed_app)
    keys = tomorrow_slots(clinician_id)
    path = sqlite_file(drill_database)
    killed = 0
    with Load(server, type_id, keys[:-12], threads=6) as load:
        give_up_at = time.monotonic() + 60
        while killed < 3 and time.monotonic() < give_up_at:
            if path:
                holders = (
                    flock_holders(f"{path}-writers.lock")
                    if os.path.exists(f"{path}-writers.lock")
                    else set()
                )
            else:
                database = make_url(drill_database).database
                holders = pg_booking_backends_pids(seed_app, database)
            victims = holders & worker_pids(server)
            if victims:
                os.kill(victims.pop(), signal.SIGKILL)
                killed += 1
                time.sleep(1)  # let the master replace it, and the load go on
            else:
                time.sleep(0.002)
    assert killed == 3, "never caught a worker inside a booking"
    ledger = load.ledger
    # Patients whose connection broke press the button again: exactly one booking each.
    broken = [a for a in ledger.attempts if a.status is None]
    retried = [post(server, attempt.form, Ledger()) for attempt in broken]
    assert all(r.status in (303, 409) for r in retried), [r.status for r in retried]
    assert_invariants(seed_app, ledger.attempts + retried, sqlite_path=path)
    assert sum(a.status == 303 for a in ledger.attempts) > 0
    assert_every_worker_books(server, type_id, keys[-12:], ledger)


# --- 2. graceful reload -------------------------------------------------------------------------


def test_drill_2_sighup_under_booking_load_fails_no_request(
    drill_database, seed_app, shared_server
):
    server, mark = shared_server, shared_server.log_mark()
    clinician_id, type_id = seed_clinic(seed_app)
    before = worker_pids(server)
    late_clients = []
    with Load(server, type_id, tomorrow_slots(clinician_id), threads=4) as load:
        for _ in range(2):
            time.sleep(2)
            # Connections accepted by the old workers just before they are told to stop, whose
            # requests arrive after: each must be answered, never closed unanswered.
            with LateClients(server, "/healthz", every=0.005) as late:
                time.sleep(0.05)
                os.kill(server.process.pid, signal.SIGHUP)
                time.sleep(0.5)  # the master has told the old workers to stop
            late_clients.append(late)
        last_reload = time.monotonic()
        # Keep booking until the new workers have served some (bounded: a slow machine boots
        # them slowly, which is no failure).
        give_up_at = last_reload + 30
        while time.monotonic() < give_up_at and not any(
            a.finished_at > last_reload + 1 for a in list(load.ledger.attempts)
        ):
            time.sleep(0.2)
    statuses = {a.status for a in load.ledger.attempts}
    assert statuses <= {303, 409}, statuses
    assert not [a.page for a in load.ledger.attempts if a.confirmation_lost]
    assert load.unshown_forms == 0
    assert any(a.finished_at > last_reload + 1 for a in load.ledger.attempts)
    for late in late_clients:
        assert late.status_lines, "no late client connected"
        assert set(late.status_lines) == {b"HTTP/1.1 200 OK"}, set(late.status_lines)
    give_up_at = time.monotonic() + 30  # the master reaps old workers once they finish
    while worker_pids(server) & before and time.monotonic() < give_up_at:
        time.sleep(0.2)
    assert not worker_pids(server) & before, "SIGHUP did not replace the workers"
    assert_invariants(seed_app, load.ledger.attempts, sqlite_path=sqlite_file(drill_database))
    assert_no_worker_was_killed_for_time(server, since=mark)


def test_drill_2_a_stopping_worker_answers_a_request_that_arrives_late(
    drill_database, shared_server
):
    """What a reload does to the old workers (SIGTERM), aimed at the moment one has accepted a
    connection whose request has not arrived yet: the request is answered, not dropped."""
    if not drill_database.startswith("sqlite"):
        pytest.skip("the serving model does not depend on the database; checked once, on SQLite")
    server, mark = shared_server, shared_server.log_mark()
    answers = []
    for _ in range(3):
        workers = worker_pids(server)
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT_S)
        time.sleep(0.003)  # accepted, and waiting for its bytes in a thread (20 ms)
        for worker in workers:
            os.kill(worker, signal.SIGTERM)
        time.sleep(0.25)  # now handed back to the stopping worker's event loop
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers.append(first_line(sock))
        sock.close()
        give_up_at = time.monotonic() + 30  # the master starts new workers
        while worker_pids(server) & workers and time.monotonic() < give_up_at:
            time.sleep(0.05)
        assert get(server, "/healthz").status_code == 200  # a new worker has booted
    assert answers == [b"HTTP/1.1 200 OK"] * 3, answers
    assert "Traceback" not in server.log(mark)


def test_a_client_slow_to_send_its_request_is_answered(drill_database, shared_server):
    """A browser on a busy phone or network that connects and sends its request 3 s later is
    answered (gthread alone closed it after the 2 s keep-alive time, see gunicorn.conf.py)."""
    if not drill_database.startswith("sqlite"):
        pytest.skip("the serving model does not depend on the database; checked once, on SQLite")
    sock = socket.create_connection(("127.0.0.1", shared_server.port), timeout=CLIENT_TIMEOUT_S)
    try:
        time.sleep(3)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert first_line(sock) == b"HTTP/1.1 200 OK"
    finally:
        sock.close()


# --- 3 and 4. PostgreSQL unreachable, then stalled, through a proxy ----------------------------


@pytest.fixture(scope="module")
def proxied_server(drill_database, tmp_path_factory) -> Iterator[tuple[TcpProxy, LiveServer]]:
    """A drill server reaching PostgreSQL through a TCP proxy the test cuts or stalls."""
    if not drill_database.startswith("postgresql"):
        pytest.skip("a network fault: SQLite has no server to be cut off from")
    url = make_url(drill_database)
    log = tmp_path_factory.mktemp("proxied") / "gunicorn.log"
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        server = drill_server(through, log)
        try:
            yield proxy, server
        finally:
            server.stop()


@pytest.fixture
def proxied(proxied_server) -> Iterator[tuple[TcpProxy, LiveServer]]:
    """The proxied server for one drill, forwarding again afterwards whatever the drill did."""
    proxy, _server = proxied_server
    try:
        yield proxied_server
    finally:
        proxy.forward()


def test_drill_3_database_unreachable_for_10_s_gives_503s_then_recovers(proxied, seed_app):
    proxy, server = proxied
    mark = server.log_mark()
    clinician_id, type_id = seed_clinic(seed_app)
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    forms = open_forms(server, type_id, keys[:4])

    proxy.cut()
    cut_at = time.monotonic()
    during = post_all(server, forms, ledger)
    ready = get(server, "/readyz")
    assert (get(server, "/healthz").status_code, get(server, "/").status_code) == (200, 200)
    time.sleep(max(0.0, 10 - (time.monotonic() - cut_at)))
    proxy.forward()

    assert [a.status for a in during] == [503] * 4
    assert all(NOTHING_BOOKED in a.page for a in during)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert get(server, "/readyz").status_code == 200
    assert_invariants(seed_app, ledger.attempts)  # the 503s stored nothing
    again = post_all(server, forms, ledger)  # the same forms, sent again: booked once each
    assert [a.status for a in again] == [303] * 4
    assert_every_worker_books(server, type_id, keys[4:12], ledger)
    assert_invariants(seed_app, ledger.attempts)
    assert_no_worker_was_killed_for_time(server, since=mark)


def test_drill_4_database_stalled_past_the_worker_timeout(proxied, seed_app):
    proxy, server = proxied
    mark = server.log_mark()
    clinician_id, type_id = seed_clinic(seed_app)
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    forms = open_forms(server, type_id, keys[:4])

    proxy.stall()
    stalled_at = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        bookings = pool.submit(post_all, server, forms, ledger)
        readiness = pool.submit(timed_get, server, "/readyz")
        time.sleep(0.5)  # the bookings are now waiting on the stalled database
        pages = [timed_get(server, path) for path in ("/", "/healthz", "/how-it-works")]
        during = bookings.result(timeout=2 * WORKER_TIMEOUT_S)
        ready_status, ready_seconds = readiness.result(timeout=WORKER_TIMEOUT_S)
    time.sleep(max(0.0, WORKER_TIMEOUT_S + 2 - (time.monotonic() - stalled_at)))
    proxy.forward()
    time.sleep(2)  # anything a stalled request might still commit would have landed by now

    assert all(status == 200 and seconds < 2 for status, seconds in pages), pages
    assert [a.status for a in during] == [503] * 4
    assert all(NOTHING_BOOKED in a.page for a in during)
    assert all(a.seconds < WORKER_TIMEOUT_S for a in during), [a.seconds for a in during]
    assert ready_status == 503
    assert ready_seconds < 3
    assert_invariants(seed_app, ledger.attempts)  # no ghost booking for the 503s
    again = post_all(server, forms, ledger)
    assert [a.status for a in again] == [303] * 4
    assert_every_worker_books(server, type_id, keys[4:12], ledger)
    assert_invariants(seed_app, ledger.attempts)
    assert_no_worker_was_killed_for_time(server, since=mark)


# --- 5. SQLite's write lock held by another process ---------------------------------------------

HOLD_WRITE_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def test_drill_5_sqlite_write_lock_held_elsewhere_gives_bounded_503s(
    drill_database, seed_app, shared_server
):
    path = sqlite_file(drill_database)
    if not path:
        pytest.skip("SQLite's file lock: PostgreSQL has row locks, bounded by lock_timeout")
    server, mark = shared_server, shared_server.log_mark()
    clinician_id, type_id = seed_clinic(seed_app)
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    forms = open_forms(server, type_id, keys[:4])
    holder = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", HOLD_WRITE_LOCK, path, "6"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with ThreadPoolExecutor(max_workers=2) as pool:
            bookings = pool.submit(post_all, server, forms, ledger)
            time.sleep(0.5)  # the bookings now wait on the lock held elsewhere
            # The read pages answer while the lock is still held, and promptly.
            pages = [timed_get(server, p) for p in ("/", "/book/", f"/book/?type={type_id}")]
            holder_still_holds = holder.poll() is None
            during = bookings.result(timeout=2 * WORKER_TIMEOUT_S)
    finally:
        holder.wait(timeout=30)
    assert holder_still_holds, "the lock was released before the read pages were asked"
    assert [a.status for a in during] == [503] * 4
    assert all(NOTHING_BOOKED in a.page for a in during)
    assert all(a.seconds < WORKER_TIMEOUT_S for a in during), [a.seconds for a in during]
    assert all(status == 200 and seconds < 2 for status, seconds in pages), pages
    assert_invariants(seed_app, ledger.attempts, sqlite_path=path)  # the 503s stored nothing
    again = post_all(server, forms, ledger)
    assert [a.status for a in again] == [303] * 4
    assert_invariants(seed_app, ledger.attempts, sqlite_path=path)
    assert_no_worker_was_killed_for_time(server, since=mark)


# --- 6. SQLite file and folder read-only, then writable again -----------------------------------


@pytest.fixture
def nobodys_database(drill_database) -> Iterator[str]:
    """A migrated SQLite database in a folder owned by `nobody` (root ignores file modes)."""
    if not drill_database.startswith("sqlite"):
        pytest.skip("file modes of the database: PostgreSQL's files are the server's")
    folder = Path(tempfile.mkdtemp(prefix="faults-ro-"))
    try:
        os.chown(folder, NOBODY, NOBODY)
        url = f"sqlite:///{folder / 'bookings.sqlite3'}"
        migrate(url)
        yield url
    finally:
        for path in [folder, *folder.iterdir()]:
            with suppress(OSError):
                path.chmod(0o700)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def chown_tree(folder: Path) -> None:
    for path in [folder, *folder.iterdir()]:
        os.chown(path, NOBODY, NOBODY)


def set_modes(folder: Path, *, folder_mode: int, file_mode: int) -> None:
    for path in folder.iterdir():
        path.chmod(file_mode)
    folder.chmod(folder_mode)


def test_drill_6_sqlite_read_only_gives_503_not_500_and_every_worker_recovers(
    nobodys_database, tmp_path
):
    path = sqlite_file(nobodys_database)
    folder = Path(path).parent
    seed = seed_app_for(nobodys_database)
    clinician_id, type_id = seed_clinic(seed)
    with seed.app_context():
        db.engine.dispose()
    chown_tree(folder)  # the seeding (as root) may have made the WAL files
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    server = drill_server(nobodys_database, tmp_path / "gunicorn.log", prefix=RUN_AS_NOBODY)
    try:
        forms = open_forms(server, type_id, keys[:4])
        assert post(server, forms[0], ledger).status == 303

        set_modes(folder, folder_mode=0o555, file_mode=0o444)
        try:
            during = post_all(server, forms[1:], ledger)
            ready = get(server, "/readyz")
            # New workers open their connections now, while the file is read-only.
            os.kill(server.process.pid, signal.SIGHUP)
            time.sleep(4)
            after_reload = [post(server, form, ledger) for form in forms[1:]]
            pages = [get(server, p).status_code for p in ("/", "/book/", "/healthz")]
        finally:
            set_modes(folder, folder_mode=0o755, file_mode=0o644)

        for attempt in during + after_reload:
            assert attempt.status == 503, (attempt.status, attempt.page[:300])
            assert NOTHING_BOOKED in attempt.page
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"]["file"] == "not writable"
        # Reads may fail on a read-only WAL (503, never a 500); liveness never touches the file.
        assert set(pages[:2]) <= {200, 503}, pages
        assert pages[2] == 200, pages
        assert_invariants(seed, ledger.attempts, sqlite_path=path)
        assert get(server, "/readyz").status_code == 200
        # Every worker's next requests book: no connection kept a read-only state (a pooled
        # one, or a "closed" one SQLite still holds; see database._configure_sqlite).
        assert_every_worker_books(server, type_id, keys[4:12], ledger)
        # The forms that got "nothing was booked" book now, once each.
        again = post_all(server, forms[1:], ledger)
        assert [a.status for a in again] == [303] * 3
        assert_invariants(seed, ledger.attempts, sqlite_path=path)
        assert "Traceback" not in server.log()
    finally:
        server.stop()
        with seed.app_context():
            db.engine.dispose()


# --- 7. disk full ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(drill_database) -> Iterator[Path]:
    """A 4 MB tmpfs (the tests run as root and may mount), unmounted afterwards."""
    if not drill_database.startswith("sqlite"):
        pytest.skip("PostgreSQL's disk is the server's, never filled by a test")
    folder = Path(tempfile.mkdtemp(prefix="faults-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        with suppress(OSError):
            folder.rmdir()


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as out, suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_drill_7_disk_full_gives_503s_and_readyz_503_then_recovers(small_disk, tmp_path):
    url = f"sqlite:///{small_disk / 'bookings.sqlite3'}"
    migrate(url)
    seed = seed_app_for(url)
    clinician_id, type_id = seed_clinic(seed)
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    server = drill_server(url, tmp_path / "gunicorn.log", MICROSITE_STORAGE_MIN_FREE_BYTES="262144")
    try:
        forms = open_forms(server, type_id, keys[:4])
        assert post(server, forms[0], ledger).status == 303
        filler = fill(small_disk)
        try:
            during = post_all(server, forms[1:], ledger)
            ready = get(server, "/readyz")
            pages = [
                get(server, p).status_code for p in ("/", "/healthz", f"/book/?type={type_id}")
            ]
        finally:
            filler.unlink()
        assert [a.status for a in during] == [503] * 3
        assert all(NOTHING_BOOKED in a.page for a in during)
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"]["disk"] == "nearly full"
        assert pages == [200, 200, 200]
        assert_invariants(seed, ledger.attempts, sqlite_path=sqlite_file(url))
        assert get(server, "/readyz").status_code == 200
        again = post_all(server, forms[1:], ledger)
        assert [a.status for a in again] == [303] * 3
        assert_every_worker_books(server, type_id, keys[4:12], ledger)
        assert_invariants(seed, ledger.attempts, sqlite_path=sqlite_file(url))
    finally:
        server.stop()
        with seed.app_context():
            db.engine.dispose()


# --- 8. idle connections -------------------------------------------------------------------------


def server_kept_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # nothing to read and not closed: the connection is still held
    except OSError:
        return False


def test_drill_8_two_hundred_idle_connections_do_not_stop_a_patient(
    drill_database, seed_app, tmp_path
):
    clinician_id, type_id = seed_clinic(seed_app)
    keys = tomorrow_slots(clinician_id)
    ledger = Ledger()
    # Idle connections are kept for the keep-alive time; make it outlast the patient's visit.
    server = drill_server(drill_database, tmp_path / "gunicorn.log", GUNICORN_KEEPALIVE="30")
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
        try:
            time.sleep(0.5)
            timings = [timed_get(server, p) for p in ("/", "/book/", f"/book/?type={type_id}")]
            booked = post(server, open_form(server, type_id, keys[0]), ledger)
            still_open = sum(server_kept_open(sock) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
        assert all(status == 200 and seconds < 3 for status, seconds in timings), timings
        assert booked.status == 303
        assert booked.seconds < 3
        assert still_open == 200
        assert_invariants(seed_app, ledger.attempts, sqlite_path=sqlite_file(drill_database))
        assert_no_worker_was_killed_for_time(server)
    finally:
        server.stop()


# --- the access log (gunicorn.conf.py's RedactingLogger, in a real gunicorn) ---------------------


def test_access_log_has_paths_without_tokens_or_query_strings(drill_database, shared_server):
    if not drill_database.startswith("sqlite"):
        pytest.skip("the access log does not depend on the database; checked once, on SQLite")
    server, mark = shared_server, shared_server.log_mark()
    for path in (
        "/manage/MANAGETOKEN1234?reason=depressed",
        "/manage/MANAGETOKEN1234/cancel",
        "/feeds/FEEDTOKEN5678.ics",
        "/book/?type=1&email=jane@example.com",
    ):
        requests.get(server.url + path, timeout=CLIENT_TIMEOUT_S, headers={"Referer": path})
    give_up_at = time.monotonic() + 10  # a worker writes its access line just after answering
    while '"GET /book/ HTTP/1.1"' not in server.log(mark) and time.monotonic() < give_up_at:
        time.sleep(0.05)
    log = server.log(mark)
    for secret in ("MANAGETOKEN1234", "FEEDTOKEN5678", "depressed", "jane@example.com", "?"):
        assert secret not in log
    assert '"GET /manage/[redacted] HTTP/1.1" 404' in log
    assert '"GET /manage/[redacted]/cancel HTTP/1.1"' in log
    assert '"GET /feeds/[redacted].ics HTTP/1.1"' in log
    assert '"GET /book/ HTTP/1.1"' in log
