"""Run as an unprivileged user (root ignores file modes): a SQLite file made read-only while
connections are open, then writable again. Prints what each step could do, as JSON.

    python tests/read_only_probe.py sqlite3|engine FOLDER

The folder holds db.sqlite3 (WAL mode, one table `t` with rows) and its -wal/-shm, kept alive by a
holder process the caller runs, as gunicorn's other workers would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from microsite import database  # noqa: E402

ENGINE_CONFIG = {"SQLITE_BUSY_TIMEOUT_MS": 200, "DB_LOCK_TIMEOUT_SECONDS": 1}


def set_modes(folder: Path, *, file_mode: int, folder_mode: int) -> None:
    for path in folder.iterdir():
        path.chmod(file_mode)
    folder.chmod(folder_mode)


def fault(folder: Path) -> None:
    set_modes(folder, file_mode=0o444, folder_mode=0o555)


def fix(folder: Path) -> None:
    set_modes(folder, file_mode=0o644, folder_mode=0o755)


def write_with(conn: sqlite3.Connection) -> str:
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("COMMIT")
        return "ok"
    except sqlite3.Error as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return error.sqlite_errorname


def sqlite3_alone(folder: Path) -> dict[str, str]:
    """SQLite's own behaviour, which the engine setup must work around."""
    path = folder / "db.sqlite3"
    fault(folder)
    during = sqlite3.connect(path, isolation_level=None)
    during.execute("SELECT count(*) FROM t").fetchone()
    fix(folder)
    beside = sqlite3.connect(path, isolation_level=None)
    result = {"opened after the fix, beside one opened during it": write_with(beside)}
    during.close()
    result["the same, once the other is closed"] = write_with(beside)
    beside.close()
    after = sqlite3.connect(path, isolation_level=None)
    result["opened once every such connection is closed"] = write_with(after)
    after.close()

    fault(folder)
    closed = sqlite3.connect(path, isolation_level=None)
    cursor = closed.execute("SELECT x FROM t")
    cursor.fetchone()  # a statement still running, as in a failed request's traceback
    closed.close()
    fix(folder)
    later = sqlite3.connect(path, isolation_level=None)
    result["opened after one was closed whose cursor is still referenced"] = write_with(later)
    later.close()
    del cursor
    last = sqlite3.connect(path, isolation_level=None)
    result["opened once that cursor is freed"] = write_with(last)
    last.close()
    return result


def through_the_engine(folder: Path) -> dict[str, list[str]]:
    """Our engine: several requests at once read during the fault; then requests write."""
    engine = create_engine(f"sqlite:///{folder / 'db.sqlite3'}", pool_size=5)
    database.configure_engine(engine, ENGINE_CONFIG)

    def write(conn) -> str:
        try:
            with conn.begin():
                conn.execute(text("INSERT INTO t VALUES (2)"))
            return "ok"
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            return getattr(getattr(error, "orig", None), "sqlite_errorname", type(error).__name__)

    fault(folder)
    during = [engine.connect() for _ in range(3)]  # three requests in flight at once
    for conn in during:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
    in_flight = during.pop()  # one of them is still running when the operator fixes the file
    for conn in during:
        conn.close()
    fix(folder)
    beside_in_flight = engine.connect()
    result = {"beside a request still in flight from the fault": [write(beside_in_flight)]}
    beside_in_flight.close()
    in_flight.close()
    after = [engine.connect() for _ in range(3)]
    result["three requests at once after it ended"] = [write(conn) for conn in after]
    for conn in after:
        conn.close()
    again = [engine.connect() for _ in range(3)]
    result["three more"] = [write(conn) for conn in again]
    for conn in again:
        conn.close()
    engine.dispose()
    return result


if __name__ == "__main__":
    scenario, folder = sys.argv[1], Path(sys.argv[2])
    run = {"sqlite3": sqlite3_alone, "engine": through_the_engine}[scenario]
    print(json.dumps(run(folder)))
    os._exit(0)
