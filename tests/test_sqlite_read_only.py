"""A SQLite file made read-only and then writable again: every later connection can write.

SQLite shares one WAL index (-shm) between a process's connections to a file, so a connection
opened during the fault passes its read-only index to connections opened after the fix while
it is still open, and a "closed" one is still open while a cursor of it is referenced (see
microsite/database.py `_configure_sqlite`). These run the real thing as
`nobody`, since root ignores file modes, in tests/read_only_probe.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from drill_support import NOBODY, RUN_AS_NOBODY

PROBE = Path(__file__).with_name("read_only_probe.py")
HOLDER = (
    "import sqlite3, sys, time\n"
    "conn = sqlite3.connect(sys.argv[1]); conn.execute('SELECT count(*) FROM t').fetchone()\n"
    "print('ready', flush=True); time.sleep(60)\n"
)


@pytest.fixture
def nobodys_wal_database() -> Iterator[Path]:
    """A WAL database in a folder owned by nobody, its -wal/-shm held open by another process
    (as the other gunicorn workers would), so they exist through the fault."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-ro-"))
    path = folder / "db.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1), (2)")
    conn.close()
    for item in [folder, *folder.iterdir()]:
        os.chown(item, NOBODY, NOBODY)
    holder = subprocess.Popen(
        [*RUN_AS_NOBODY, sys.executable, "-c", HOLDER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield folder
    finally:
        holder.kill()
        holder.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def probe(scenario: str, folder: Path) -> dict:
    done = subprocess.run(
        [*RUN_AS_NOBODY, sys.executable, str(PROBE), scenario, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sqlite_itself_passes_a_read_only_index_to_connections_opened_beside_it(
    nobodys_wal_database,
):
    """The behaviour the engine setup exists for; if SQLite changes it, this says so."""
    assert probe("sqlite3", nobodys_wal_database) == {
        "opened after the fix, beside one opened during it": "SQLITE_READONLY",
        "the same, once the other is closed": "SQLITE_READONLY",
        "opened once every such connection is closed": "ok",
        "opened after one was closed whose cursor is still referenced": "SQLITE_READONLY",
        "opened once that cursor is freed": "ok",
    }


def test_after_the_fix_every_request_writes_once_the_faults_requests_have_ended(
    nobodys_wal_database,
):
    """Three requests read at once during the fault; afterwards every connection can write.
    Only a write made while a request from the fault is still in flight can fail, with a
    database error the site answers with its 503 page."""
    assert probe("engine", nobodys_wal_database) == {
        "beside a request still in flight from the fault": ["SQLITE_READONLY"],
        "three requests at once after it ended": ["ok", "ok", "ok"],
        "three more": ["ok", "ok", "ok"],
    }
