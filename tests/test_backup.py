"""`backup`, `restore-check` and `db copy-to`: copies an operator can restore from.

The concurrent case (a backup while gunicorn takes bookings) is in test_backup_live.py.
`db copy-to` always copies FROM a SQLite database (the real move: a small clinic outgrows one
server) and TO PostgreSQL when MICROSITE_TEST_DATABASE_URL is set, else to another SQLite file;
both runs therefore test a real copy, and the PostgreSQL run also tests the id sequences.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError
from tests_support import PG_ADMIN_URL, create_pg_database, drop_pg_database

from microsite import create_app
from microsite.extensions import db
from microsite.models import (
    Booking,
    BookingEvent,
    Clinician,
    Closure,
    ConsultationType,
    FeedToken,
    WorkingHours,
)
from microsite.services import backup as backup_service

START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args), catch_exceptions=False)


def sqlite_app(path: Path):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"}
    )
    with app.app_context():
        upgrade()
    return app


def fill(app, bookings: int = 5) -> list[int]:
    """A clinic with hours, a closure, bookings (one cancelled), history and a feed token."""
    with app.app_context():
        clinician = Clinician(name="Dr. Copy", email="copy@example.test")
        clinician.weekly_hours = [WorkingHours(weekday=0, start_time=time(9), end_time=time(17))]
        kind = ConsultationType(
            slug="copy", name="Consultation", mode="in_person", duration_minutes=60
        )
        db.session.add_all([clinician, kind])
        db.session.flush()
        db.session.add(Closure(starts_at=START, ends_at=START + timedelta(days=1), reason="x"))
        rows = []
        for n in range(bookings):
            booking = Booking(
                uid=f"{uuid.uuid4()}@t",
                reference=f"CP{n:04d}",
                clinician_id=clinician.id,
                consultation_type_id=kind.id,
                starts_at=START + timedelta(hours=n),
                ends_at=START + timedelta(hours=n, minutes=60),
                patient_name=f"Patient {n}",
                patient_email=f"p{n}@example.test",
                patient_phone="+12025550143",
                patient_birth_date=date(1980, 1, 2),
                status="cancelled" if n == 0 else "confirmed",
                cancelled_at=START if n == 0 else None,
                sequence=1 if n == 0 else 0,
            )
            db.session.add(booking)
            db.session.flush()
            db.session.add(BookingEvent(booking_id=booking.id, kind="created", actor="cli"))
            rows.append(booking.id)
        db.session.add(FeedToken(token_hash="a" * 64, clinician_id=clinician.id))
        db.session.commit()
        db.session.remove()
        return rows


@pytest.fixture
def source(tmp_path):
    app = sqlite_app(tmp_path / "live.sqlite3")
    ids = fill(app)
    yield app, ids
    with app.app_context():
        db.engine.dispose()


# --- backup and restore-check on SQLite ---------------------------------------------------------


def test_backup_makes_an_owner_only_checked_copy(source, tmp_path):
    app, ids = source
    target = tmp_path / "backups" / "copy.sqlite3"  # the folder does not exist yet
    old_umask = os.umask(0)  # even with the most permissive umask, the copy is owner-only
    try:
        result = run(app, "backup", str(target))
    finally:
        os.umask(old_umask)

    assert result.exit_code == 0, result.output
    assert "integrity_check: ok" in result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert not (tmp_path / "backups" / "copy.sqlite3.partial").exists()
    assert not Path(f"{target}-wal").exists()  # one self-contained file
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM booking").fetchone()[0] == len(ids)
    assert f"bookings: {len(ids)}" in result.output
    assert "Patient" not in result.output


def test_backup_refuses_to_overwrite(source, tmp_path):
    app, _ids = source
    target = tmp_path / "exists.sqlite3"
    target.write_bytes(b"keep me")
    result = run(app, "backup", str(target))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert target.read_bytes() == b"keep me"


def test_restore_check_reports_bookings_newest_and_revision(source, tmp_path):
    app, ids = source
    target = tmp_path / "copy.sqlite3"
    assert run(app, "backup", str(target)).exit_code == 0
    with app.app_context():
        newest = db.session.get(Booking, ids[-1])
        created = newest.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        head = backup_service.revision_of(db.engine)

    result = run(app, "restore-check", str(target))

    assert result.exit_code == 0, result.output
    assert f"bookings: {len(ids)}" in result.output
    assert f"newest booking: id {ids[-1]}, created {created}" in result.output
    assert f"schema revision: {head}" in result.output
    assert "Patient" not in result.output
    assert "@example.test" not in result.output


def test_restore_check_refuses_truncated_corrupt_and_foreign_files(source, tmp_path):
    app, _ids = source
    good = tmp_path / "good.sqlite3"
    assert run(app, "backup", str(good)).exit_code == 0
    data = good.read_bytes()

    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(data[:4096] + b"\xff" * 4096 + data[8192:])
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database")
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")

    for bad in (truncated, corrupt, text_file, foreign, tmp_path / "missing.sqlite3"):
        result = run(app, "restore-check", str(bad))
        assert result.exit_code == 1, (bad.name, result.output)
        assert "NOT a usable backup" in result.output


# --- PostgreSQL backups -------------------------------------------------------------------------


def test_pg_dump_command_keeps_the_password_off_the_command_line(tmp_path):
    from sqlalchemy.engine import make_url

    url = make_url("postgresql+psycopg://clinic:s3cret@db.internal:5433/microsite")
    args, env = backup_service.pg_dump_command(url, tmp_path / "b.dump")
    assert args == [
        "pg_dump",
        "--format=custom",
        "--no-owner",
        f"--file={tmp_path / 'b.dump'}",
        "--host=db.internal",
        "--port=5433",
        "--username=clinic",
        "microsite",
    ]
    assert env == {"PGPASSWORD": "s3cret"}
    assert "s3cret" not in " ".join(args)


@pytest.fixture
def pg_app():
    if not PG_ADMIN_URL:
        pytest.skip("needs PostgreSQL: set MICROSITE_TEST_DATABASE_URL (CI's second pass does)")
    url, name = create_pg_database(PG_ADMIN_URL)
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
    fill(app)
    yield app
    with app.app_context():
        db.engine.dispose()
    drop_pg_database(PG_ADMIN_URL, name)


@pytest.mark.postgres
def test_backup_on_postgresql_runs_pg_dump_and_restore_check_reads_it(pg_app, tmp_path):
    if not backup_service.pg_dump_available():
        pytest.fail("pg_dump must be installed where the PostgreSQL suite runs (.ci/run)")
    target = tmp_path / "pg.dump"
    old_umask = os.umask(0)
    try:
        result = run(pg_app, "backup", str(target))
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert target.read_bytes().startswith(b"PGDMP")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    checked = run(pg_app, "restore-check", str(target))
    assert checked.exit_code == 0, checked.output
    assert "readable pg_dump archive" in checked.output


@pytest.mark.postgres
def test_backup_on_postgresql_without_pg_dump_prints_the_command(pg_app, tmp_path, monkeypatch):
    monkeypatch.setattr(backup_service, "pg_dump_available", lambda: False)
    result = run(pg_app, "backup", str(tmp_path / "pg.dump"))
    assert result.exit_code == 1
    assert "pg_dump --format=custom --no-owner --file=" in result.output
    assert not (tmp_path / "pg.dump").exists()


# --- db copy-to -----------------------------------------------------------------------------------


@pytest.fixture
def target_url(tmp_path):
    """PostgreSQL when the suite has one (the real move), else a second SQLite file."""
    if PG_ADMIN_URL:
        url, name = create_pg_database(PG_ADMIN_URL)
        yield url
        drop_pg_database(PG_ADMIN_URL, name)
    else:
        yield f"sqlite:///{tmp_path / 'target.sqlite3'}"


def test_copy_to_copies_every_table_and_the_target_keeps_working(source, target_url):
    app, ids = source
    result = run(app, "db", "copy-to", target_url)
    assert result.exit_code == 0, result.output
    assert "row counts verified" in result.output
    assert f"booking: {len(ids)}" in result.output

    target = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": target_url})
    with app.app_context():
        expected = {
            table.name: sorted(tuple(r) for r in db.session.execute(select(table)))
            for table in db.metadata.sorted_tables
        }
    with target.app_context():
        copied = {
            table.name: sorted(tuple(r) for r in db.session.execute(select(table)))
            for table in db.metadata.sorted_tables
        }
        assert copied == expected  # every row, every column, datetimes still aware UTC
        assert copied["booking"]  # not trivially equal
        # New rows get fresh ids (PostgreSQL: the sequences were moved past the copied ids).
        clinician_id, type_id = copied["clinician"][0][0], copied["consultation_type"][0][0]
        fresh = Booking(
            uid="fresh@t", reference="FRESH1", clinician_id=clinician_id,
            consultation_type_id=type_id, starts_at=START + timedelta(days=7),
            ends_at=START + timedelta(days=7, hours=1), patient_name="N", patient_email="n@t",
            patient_phone="+12025550143", patient_birth_date=date(1980, 1, 2),
        )  # fmt: skip
        db.session.add(fresh)
        db.session.commit()
        assert fresh.id == max(ids) + 1
        # The overlap guard came with the migrated schema.
        overlapping = Booking(
            uid="clash@t", reference="CLASH1", clinician_id=clinician_id,
            consultation_type_id=type_id, starts_at=START + timedelta(hours=1, minutes=30),
            ends_at=START + timedelta(hours=2, minutes=30), patient_name="N",
            patient_email="n@t", patient_phone="+12025550143",
            patient_birth_date=date(1980, 1, 2),
        )  # fmt: skip
        db.session.add(overlapping)
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.engine.dispose()


def test_copy_to_refuses_a_target_with_bookings(source, target_url):
    app, _ids = source
    assert run(app, "db", "copy-to", target_url).exit_code == 0
    again = run(app, "db", "copy-to", target_url)
    assert again.exit_code == 1
    assert "already has 5 bookings" in again.output
    engine = create_engine(target_url)
    with engine.connect() as conn:  # nothing was added by the refused copy
        assert conn.scalar(select(func.count()).select_from(Booking.__table__)) == 5
        assert conn.scalar(text("SELECT count(*) FROM booking_event")) == 5
    engine.dispose()


def test_copy_to_refuses_any_target_that_is_not_empty(source, target_url):
    app, _ids = source
    target = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": target_url})
    with target.app_context():
        upgrade()
        db.session.add(Clinician(name="Dr. Already Here", email="here@example.test"))
        db.session.commit()
        db.engine.dispose()
    result = run(app, "db", "copy-to", target_url)
    assert result.exit_code == 1
    assert "not empty (clinician)" in result.output
