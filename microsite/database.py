"""Database plumbing: the UTC column type, SQLite setup, write transactions."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

from sqlalchemy import DateTime, event
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
    path = engine.url.database
    on_disk = bool(path) and path != ":memory:" and not path.startswith("file:")

    @event.listens_for(engine, "do_connect")
    def _create_private(_dialect, _record, _cargs, _cparams) -> None:
        # Patient data: the file is made owner-only before SQLite opens it; SQLite then gives
        # its -wal and -shm files the database file's own permissions.
        if on_disk and not os.path.exists(path):
            # A missing folder is SQLite's to report (OperationalError: the database is away).
            with suppress(OSError):
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        if on_disk:
            _make_owner_only(path)
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


SQLITE_COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal", "-writers.lock")


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
    On PostgreSQL the database constraints do the guarding.
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
