"""Backups, restore checks and database copies: consistent, owner-only, verified.

A backup is only as good as the restore it allows, so every copy is checked after it is made
(SQLite's integrity_check, row counts for `copy_database`). Nothing here reads or prints a
patient field: reports give counts, ids, instants and the schema revision.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"
BACKUP_SQLITE_TIMEOUT_S = 30.0
COPY_BATCH_ROWS = 1000


class BackupError(RuntimeError):
    """The backup, check or copy could not be made or did not verify; the message says why."""


@dataclass(frozen=True)
class BackupReport:
    bookings: int
    newest_booking_id: int | None
    newest_booking_created_at: datetime | None
    revision: str | None


def create_owner_only(path: Path) -> None:
    """Create an empty file readable and writable by its owner only; refuse an existing one.

    The mode is given to open() itself (and the umask can only narrow it), so there is no
    moment when another user could open the file.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


# --- SQLite ------------------------------------------------------------------------------------


def _new_target(target: Path) -> None:
    """Never overwrite a backup; a first nightly run finds no folder: make it, owner-only."""
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)


def backup_sqlite(source: Path, target: Path) -> BackupReport:
    """A consistent copy of a live SQLite database via its online backup API, then checked.

    The copy is made in one step (one read transaction): in WAL mode the site's writers carry
    on meanwhile, and everything committed before the backup began is in the copy. The copy is
    written beside the target and renamed into place only after integrity_check says "ok".
    """
    _new_target(target)
    partial = target.with_name(target.name + ".partial")
    with suppress(FileNotFoundError):
        partial.unlink()
    create_owner_only(partial)
    try:
        # Read-only on the source: the backup must never write to the live database.
        source_uri = f"{source.resolve().as_uri()}?mode=ro"
        with (
            closing(sqlite3.connect(source_uri, uri=True, timeout=BACKUP_SQLITE_TIMEOUT_S)) as src,
            closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
            # A backup is one self-contained file: no -wal/-shm beside it.
            dst.execute("PRAGMA journal_mode = DELETE")
            dst.commit()
        report = check_sqlite_backup(partial)
        os.replace(partial, target)
    except BaseException:
        with suppress(FileNotFoundError):
            partial.unlink()
        raise
    return report


def check_sqlite_backup(path: Path) -> BackupReport:
    """Open a SQLite backup read-only and report it; BackupError unless valid and complete."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None
    if head != SQLITE_MAGIC:
        raise BackupError(f"{path} is not a SQLite database")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(f"integrity_check failed: {'; '.join(problems[:5])}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            missing = {"alembic_version", "booking"} - tables
            if missing:
                raise BackupError(f"not a microsite backup: no {', '.join(sorted(missing))}")
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            count = conn.execute("SELECT count(*) FROM booking").fetchone()[0]
            newest = conn.execute(
                "SELECT id, created_at FROM booking ORDER BY created_at DESC, id DESC LIMIT 1"
            ).fetchone()
    except sqlite3.DatabaseError as error:  # truncated, corrupt, encrypted ...
        raise BackupError(f"{path} is not a usable SQLite database: {error}") from None
    return BackupReport(
        bookings=count,
        newest_booking_id=newest[0] if newest else None,
        newest_booking_created_at=_stored_instant(newest[1]) if newest else None,
        revision=revision[0] if revision else None,
    )


def _stored_instant(value: str) -> datetime:
    # UTCDateTime keeps UTC on SQLite as text without an offset.
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# --- PostgreSQL --------------------------------------------------------------------------------


def pg_dump_command(url: URL, target: Path) -> tuple[list[str], dict[str, str]]:
    """pg_dump's arguments (custom format) and libpq environment for this database.

    The password travels in PGPASSWORD, never on the command line where `ps` would show it.
    """
    args = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}"]
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    args.append(url.database or "")
    env = {"PGPASSWORD": url.password} if url.password else {}
    return args, env


def backup_postgres(url: URL, target: Path, run: Callable[..., Any] = subprocess.run) -> None:
    """Run pg_dump into an owner-only file; BackupError when pg_dump fails."""
    _new_target(target)
    args, extra_env = pg_dump_command(url, target)
    create_owner_only(target)  # pg_dump truncates and keeps this file's mode
    result = run(
        args,
        env={**os.environ, **extra_env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()[:500]}")


def pg_dump_available() -> bool:
    return shutil.which("pg_dump") is not None


def check_pg_dump(path: Path) -> int:
    """The number of entries in a pg_dump custom-format archive (via pg_restore --list)."""
    if shutil.which("pg_restore") is None:
        raise BackupError("pg_restore is not installed: cannot check a PostgreSQL dump here")
    result = subprocess.run(  # noqa: S603 - fixed program, the path is one argument
        ["pg_restore", "--list", str(path)],  # noqa: S607 - found on PATH on purpose
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore cannot read {path}: {result.stderr.strip()[:500]}")
    entries = [ln for ln in result.stdout.splitlines() if ln and not ln.startswith(";")]
    if not any(" TABLE DATA " in ln and " booking " in ln for ln in entries):
        raise BackupError(f"{path} holds no booking table data: not a microsite backup")
    return len(entries)


def file_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(16)
    except OSError as error:
        raise BackupError(f"cannot read {path}: {error.strerror}") from None


# --- copying a whole database --------------------------------------------------------------------


def copy_database(source: Engine, target: Engine, metadata, on_table=None) -> dict[str, int]:
    """Copy every table of `metadata` from source to an empty, migrated target; row counts.

    Tables go in dependency order inside ONE target transaction (a failure leaves the target
    empty), read from one consistent snapshot of the source; ids are kept, PostgreSQL's id
    sequences are moved past them, and every table's count is compared afterwards.
    """
    tables = metadata.sorted_tables
    target_tables = set(inspect(target).get_table_names())
    missing = [t.name for t in tables if t.name not in target_tables]
    if missing:
        raise BackupError(f"the target is not migrated (no {', '.join(missing)}): run db upgrade")
    with target.connect() as conn:
        filled = {t.name: conn.scalar(select(func.count()).select_from(t)) for t in tables}
    if filled.get("booking"):
        raise BackupError(f"the target already has {filled['booking']} bookings; refusing")
    if any(filled.values()):
        busy = ", ".join(name for name, n in filled.items() if n)
        raise BackupError(f"the target is not empty ({busy}); use a fresh database")

    counts: dict[str, int] = {}
    source_options = {"isolation_level": "REPEATABLE READ"}  # one snapshot for every table
    if source.dialect.name == "sqlite":
        source_options = {}  # one read transaction is already one snapshot there
    with (
        source.connect().execution_options(**source_options) as src,
        target.begin() as dst,
    ):
        for table in tables:
            result = src.execution_options(yield_per=COPY_BATCH_ROWS).execute(
                select(table).order_by(*table.primary_key.columns)
            )
            copied = 0
            for batch in result.mappings().partitions(COPY_BATCH_ROWS):
                dst.execute(table.insert(), [dict(row) for row in batch])
                copied += len(batch)
            counts[table.name] = copied
            if on_table:
                on_table(table.name, copied)
        if target.dialect.name == "postgresql":
            _advance_sequences(dst, tables)
        src.rollback()
    with target.connect() as check:
        for table in tables:
            # Fresh counts on the target, after the commit: what the site will see there.
            after = check.scalar(select(func.count()).select_from(table))
            if after != counts[table.name]:
                raise BackupError(
                    f"{table.name}: {counts[table.name]} rows read, {after} in the target"
                )
    return counts


def _advance_sequences(conn, tables) -> None:
    """After inserting explicit ids, move each serial sequence past the largest one."""
    for table in tables:
        columns = [c for c in table.primary_key.columns if c.autoincrement is not False]
        if len(columns) != 1 or columns[0].type.python_type is not int:
            continue
        # Built from our own metadata with SQLAlchemy, not by formatting SQL text.
        biggest = select(func.max(columns[0])).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, columns[0].name)
        conn.execute(
            select(func.setval(sequence, func.coalesce(biggest, 1), biggest.is_not(None))).where(
                sequence.is_not(None)
            )
        )


def target_engine(url: str) -> Engine:
    return create_engine(make_url(url), pool_pre_ping=True)


def revision_of(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return None
        return conn.scalar(text("SELECT version_num FROM alembic_version"))
