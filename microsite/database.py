"""Database plumbing: the UTC column type, engine setup with bounded waits, write transactions."""

from __future__ import annotations

import gc
import logging
import math
import os
import threading
import time
import weakref
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator

from . import deadline, stall_guard, storage, writers_lock
from .extensions import db
from .faults import is_sqlite_storage_error


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and always returns them aware in UTC.

    SQLite keeps no zone, PostgreSQL's timestamptz does; this type makes both behave the same
    and refuses naive datetimes, which would silently mean "some zone".
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite compares the stored text: keep one format, without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """SQLALCHEMY_ENGINE_OPTIONS with the time budget applied to PostgreSQL connections.

    Every wait the database can make us do is bounded well below the worker timeout: connecting
    (`connect_timeout`), one statement (`statement_timeout`), a row or table lock
    (`lock_timeout`), and a transaction left open by a worker that stalled or died
    (`idle_in_transaction_session_timeout`, so its locks do not outlive the request deadline).
    Values a deployment set itself are kept.
    """
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if not str(config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("postgresql"):
        return options
    connect_args = dict(options.get("connect_args") or {})
    connect_args.setdefault(
        "connect_timeout", max(1, math.ceil(config["DB_CONNECT_TIMEOUT_SECONDS"]))
    )
    settings = {
        "statement_timeout": config["DB_STATEMENT_TIMEOUT_SECONDS"],
        "lock_timeout": config["DB_LOCK_TIMEOUT_SECONDS"],
        "idle_in_transaction_session_timeout": config["REQUEST_DEADLINE_SECONDS"],
    }
    server_options = " ".join(f"-c {name}={_ms(seconds)}" for name, seconds in settings.items())
    connect_args["options"] = f"{connect_args.get('options', '')} {server_options}".strip()
    options["connect_args"] = connect_args
    # Waiting for a free pooled connection is a wait too.
    options.setdefault("pool_timeout", config["DB_LOCK_TIMEOUT_SECONDS"])
    return options


def _ms(seconds: float) -> int:
    return max(1, round(float(seconds) * 1000))


def configure_engine(engine: Engine, config: Mapping[str, Any]) -> None:
    """Per-database setup: bounded waits, and connections that never outlive a storage fault."""
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, int(config["SQLITE_BUSY_TIMEOUT_MS"]))
    elif engine.dialect.name == "postgresql":
        stall_guard.install(engine, config["DB_STATEMENT_TIMEOUT_SECONDS"])
    _writer_settings[id(engine)] = float(config["DB_LOCK_TIMEOUT_SECONDS"])


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """SQLite: WAL, a busy timeout, foreign keys, and transactions we begin ourselves.

    pysqlite's own transaction handling would start transactions late and only DEFERRED; we turn
    it off and emit BEGIN ourselves, IMMEDIATE for write transactions (see `write_transaction`),
    so two writers queue on the database lock instead of failing with "database is locked".

    A connection opened while its file was read-only stays read-only for ever (SQLite falls back
    to O_RDONLY silently), and one that hit a full disk or an I/O error may hold a broken handle.
    Worse, SQLite shares one WAL index (the -shm mapping) between all of a process's connections
    to a file: a connection opened after the operator's fix, while one opened during the fault is
    still open in the same process, inherits its read-only index and cannot write either, for its
    whole life. And "closed" is not closed: a connection whose statements are still referenced
    (by a cursor in a failed request's traceback, kept in a reference cycle) lives on inside
    SQLite until Python's garbage collector frees them. tests/test_sqlite_read_only.py shows both
    with sqlite3 alone. So:

    - a connection is "opened read-only" if the file was not writable just before or just after
      SQLite opened it, or if another such connection of this process was still open;
    - such a connection never goes back to the pool: it is closed when its request ends;
    - the first connection opened once the file is writable again, after such a connection was
      closed, first collects garbage, so no half-closed read-only connection passes its index on;
    - a storage error invalidates this process's whole pool.

    The next request after the operator fixes the cause succeeds, in every worker, without a
    restart; only a write made while a request from the fault is still in flight can fail (a
    503). `pool_pre_ping` cannot see any of this: `SELECT 1` works on a read-only connection.
    """
    path = engine.url.database
    on_disk = bool(path) and path != ":memory:" and not path.startswith("file:")
    # This engine's open connections that opened read-only (held weakly: a pool that is
    # dropped takes its records with it), and whether one was closed since the last collection.
    # One engine per database per process in production.
    read_only_connections: weakref.WeakSet = weakref.WeakSet()
    closed_read_only = threading.Event()

    @event.listens_for(engine, "do_connect")
    def _create_private(_dialect, record, _cargs, _cparams) -> None:
        if not on_disk:
            return
        # Patient data: the file is made owner-only before SQLite opens it; SQLite then gives
        # its -wal and -shm files the database file's own permissions.
        if not os.path.exists(path):
            # A missing folder is SQLite's to report (OperationalError: the database is away).
            with suppress(OSError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        # Looked at BEFORE SQLite opens the file (and again after, in "connect"): a file made
        # writable between the open and a single look afterwards would pass for writable on a
        # connection that opened read-only. Either way an error goes the harmless way: a
        # connection that could write is closed after its request.
        if not storage.writable(path):
            _mark_read_only(record)
            return
        if closed_read_only.is_set():
            closed_read_only.clear()
            gc.collect()  # once per recovery: frees what keeps closed connections open in SQLite
        if read_only_connections:
            _mark_read_only(record)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record) -> None:
        if on_disk:
            _make_owner_only(path)
            if not storage.writable(path):  # made read-only while SQLite was opening it
                _mark_read_only(record)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    def _mark_read_only(record) -> None:
        record.info["opened_read_only"] = True
        read_only_connections.add(record)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection, record) -> None:
        if record.info.get("opened_read_only"):
            read_only_connections.discard(record)
            closed_read_only.set()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record) -> None:
        if record.info.get("opened_read_only"):
            record.invalidate()  # closed now ("close" above); the next checkout opens afresh

    @event.listens_for(engine, "handle_error")
    def _on_error(context) -> None:
        if is_sqlite_storage_error(context.original_exception):
            context.is_disconnect = True  # SQLAlchemy then discards the whole pool

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


SQLITE_COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal", "-writers.lock", "-writers.bell")


def _make_owner_only(path: str) -> None:
    """Tighten a database made before this rule (or copied in) and its companion files."""
    for suffix in SQLITE_COMPANION_SUFFIXES:
        try:
            mode = os.stat(path + suffix).st_mode
            if mode & 0o077:
                os.chmod(path + suffix, mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError:  # not ours to change: say so once, keep serving
            logging.getLogger(__name__).warning(
                "cannot make a database file owner-only",
                extra={"event": "db.permissions", "file_suffix": suffix or "db"},
            )


@contextmanager
def write_transaction() -> Iterator[None]:
    """Open the session's transaction as a write transaction; commit on success, roll back on error.

    On SQLite this is BEGIN IMMEDIATE: the write lock is taken first, so a re-check inside the
    transaction sees every committed booking and no other writer can slip in between.
    On PostgreSQL the database constraints guard overlaps, and `lock_clinician_schedules`
    serialises the rest of the re-check per clinician.

    Nothing is committed after the request's deadline (`deadline.check` just before COMMIT), and
    on SQLite nothing is started on storage that cannot take it (not writable, disk nearly full):
    both raise a TemporarilyUnavailable error before anything is stored.
    """
    session = db.session()  # the real Session: scoped_session does not proxy in_transaction
    if session.in_transaction():
        session.rollback()  # start from a clean transaction; nothing pending may leak in
    engine = db.engine
    if engine.dialect.name == "sqlite":
        storage.refuse_writes_if_unavailable(engine.url.database)
    with _writers_in_line(engine):
        deadline.check("start a booking")
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        try:
            yield
            deadline.check("commit")
            # What this transaction wrote is current: keep it loaded instead of re-reading it.
            session.expire_on_commit = False
            try:
                session.commit()
            except (OperationalError, InterfaceError) as error:
                # PostgreSQL: a connection lost during COMMIT may have committed on the server.
                # (SQLite's COMMIT is local: an error means it did not happen.)
                error.commit_outcome_unknown = engine.dialect.name != "sqlite"
                raise
            finally:
                session.expire_on_commit = True
        except BaseException:
            session.rollback()
            raise


_writer_settings: dict[int, float] = {}


@contextmanager
def _writers_in_line(engine: Engine) -> Iterator[None]:
    """SQLite: writers of every process queue on an OS file lock before BEGIN IMMEDIATE.

    SQLite's own busy handler makes a waiting writer sleep and retry with growing pauses
    (1, 2, 5, 10 ms ...), which caps throughput and stretches latency when workers contend.
    The busy timeout stays as a backstop for writers that do not take this lock (the CLI's
    migrations, sqlite3 itself).

    The wait ends at the request's deadline (outside a request, after DB_LOCK_TIMEOUT_SECONDS):
    every holder of this lock is one of our own writers, itself bounded by its deadline, so a
    writer in line behind a burst of patients keeps its place rather than failing after a fixed
    few seconds, and a stuck holder still cannot keep anyone past their deadline. flock() itself
    has no timeout, so a waiter tries LOCK_NB and waits on a doorbell the holder rings as it
    lets go (`writers_lock.Doorbell`), for at most a short pause (0.5 ms, growing to 4 ms). A
    writer that does not get the lock in time raises WriteLockTimeout (503, nothing booked); a
    lock file that cannot be opened (read-only folder) raises StorageUnavailable. Other
    processes' writers (sqlite3, migrations) meet SQLite's busy timeout.
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    left = deadline.remaining()
    wait = _writer_settings.get(id(engine), 3.0) if left is None else max(0.0, left)
    with writers_lock.beside(path).held(give_up_at=time.monotonic() + wait):
        yield


# The first half of the two-key advisory lock: this app's locks on clinicians' schedules, so
# they cannot collide with another application's advisory locks on the same server.
SCHEDULE_LOCK_NAMESPACE = 0x0B1E  # "Bluewater"; any fixed 32-bit number
_SCHEDULE_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:namespace, :clinician_id)")


def lock_clinician_schedules(clinician_ids: Iterable[int]) -> None:
    """PostgreSQL: hold these clinicians' schedules until the current write transaction ends.

    What the database cannot express as a constraint (a daily cap, closures, hours) is
    re-checked under this lock, so two bookings for one clinician are judged one after the
    other. Locks are taken in id order, so two writers locking overlapping sets never deadlock.
    Transaction-scoped: released by COMMIT or ROLLBACK, never leaked by an error. On SQLite the
    write transaction (BEGIN IMMEDIATE) already serialises every writer, so this does nothing.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for clinician_id in sorted(set(clinician_ids)):
        db.session.execute(
            _SCHEDULE_LOCK_SQL,
            {"namespace": SCHEDULE_LOCK_NAMESPACE, "clinician_id": clinician_id},
        )


# Second namespace: one patient's bookings (by email and by phone), for the upcoming limit.
PATIENT_LOCK_NAMESPACE = 0x0B1F
_PATIENT_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:namespace, :key)")


def lock_patients(identities: Iterable[str]) -> None:
    """PostgreSQL: serialise bookings by one patient (identities like "email:a@b.c").

    The upcoming-consultations limit counts a patient's bookings across every clinician, so the
    clinician locks do not cover it. Keys are 32-bit hashes taken in numeric order (a collision
    only makes two patients wait for each other). Call before `lock_clinician_schedules`, so
    every writer takes its locks in the same order. SQLite: nothing to do (one writer).
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({zlib.crc32(identity.encode()) - 2**31 for identity in identities})
    for key in keys:
        db.session.execute(_PATIENT_LOCK_SQL, {"namespace": PATIENT_LOCK_NAMESPACE, "key": key})
