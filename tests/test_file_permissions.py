"""Files holding secrets or patient data are readable by their owner only."""

from __future__ import annotations

import os
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

from flask_migrate import upgrade
from live_server import REPO_ROOT
from sqlalchemy import text

from microsite import create_app
from microsite.extensions import db


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def usual_umask():
    """The umask most shells start with (022): the app must not rely on a stricter one."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def write_something(database: Path) -> None:
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}
    )
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
            # While this connection is open, SQLite keeps its -wal and -shm files beside it.
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{database}{suffix}")
                assert path.exists(), suffix
                assert mode(path) == 0o600, f"{path.name}: {oct(mode(path))}"
        db.engine.dispose()


def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path):
    with usual_umask():
        write_something(tmp_path / "new.sqlite3")


def test_an_older_world_readable_database_is_tightened_when_opened(tmp_path):
    database = tmp_path / "old.sqlite3"
    with usual_umask():
        database.touch(mode=0o644)
        Path(f"{database}-wal").touch(mode=0o644)
        os.chmod(database, 0o644)
        write_something(database)
    assert mode(database) == 0o600


def test_make_writes_instance_config_owner_only(tmp_path):
    """`make run`'s first step, run in an empty folder: the secret key file is 0600."""
    with usual_umask():
        subprocess.run(
            ["make", "-s", "-f", str(REPO_ROOT / "Makefile"), "instance/config.py"],
            cwd=tmp_path,
            check=True,
            timeout=60,
            capture_output=True,
        )
    config = tmp_path / "instance" / "config.py"
    assert "SECRET_KEY = " in config.read_text()
    assert mode(config) == 0o600
    assert mode(config.parent) == 0o700
