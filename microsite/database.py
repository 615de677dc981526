"""Database plumbing: the UTC column type, SQLite setup, write transactions."""

from __future__ import annotations

import fcntl
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from .extensions import db


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


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """SQLite: WAL, a busy timeout, foreign keys, and transactions we begin ourselves.

    pysqlite's own transaction handling would start transactions late and only DEFERRED; we turn
    it off and emit BEGIN ourselves, IMMEDIATE for write transactions (see `write_transaction`),
    so two writers queue on the database lock instead of failing with "database is locked".
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write_transaction() -> Iterator[None]:
    """Open the session's transaction as a write transaction; commit on success, roll back on error.

    On SQLite this is BEGIN IMMEDIATE: the write lock is taken first, so a re-check inside the
    transaction sees every committed booking and no other writer can slip in between.
    On PostgreSQL the database constraints guard overlaps, and `lock_clinician_schedules`
    serialises the rest of the re-check per clinician.
    """
    session = db.session()  # the real Session: scoped_session does not proxy in_transaction
    if session.in_transaction():
        session.rollback()  # start from a clean transaction; nothing pending may leak in
    with _writers_in_line(db.engine):
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        try:
            yield
            # What this transaction wrote is current: keep it loaded instead of re-reading it.
            session.expire_on_commit = False
            try:
                session.commit()
            finally:
                session.expire_on_commit = True
        except BaseException:
            session.rollback()
            raise


_writer_locks: dict[str, tuple[threading.Lock, int]] = {}
_writer_locks_guard = threading.Lock()


@contextmanager
def _writers_in_line(engine: Engine) -> Iterator[None]:
    """SQLite: writers of every process queue on an OS file lock before BEGIN IMMEDIATE.

    SQLite's own busy handler makes a waiting writer sleep and retry with growing pauses
    (1, 2, 5, 10 ms ...), which caps throughput and stretches latency when workers contend.
    A flock() waiter is woken the moment the lock is released. The busy timeout stays as a
    backstop for writers that do not take this lock (the CLI's migrations, sqlite3 itself).
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with _writer_locks_guard:
        if path not in _writer_locks:
            fd = os.open(f"{path}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
            _writer_locks[path] = (threading.Lock(), fd)
        thread_lock, fd = _writer_locks[path]
    # flock() excludes other processes; the thread lock excludes this process's other threads,
    # which share the file descriptor and so would all "hold" the flock at once.
    with thread_lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


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
