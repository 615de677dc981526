"""A backup taken while gunicorn takes bookings holds every booking confirmed before it began.

Real processes: gunicorn (2 sync workers) on a SQLite file, patients' browsers booking from
four threads, and `flask --app microsite backup` run as its own process in the middle of it.
SQLite only: that is where the app itself makes the copy (online backup API). On PostgreSQL
the command hands over to pg_dump, whose snapshot is PostgreSQL's own guarantee
(test_backup.py checks that the dump is made and readable).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from live_server import (
    CLINIC_TIMEZONE,
    REQUEST_TIMEOUT_S,
    SECRET_KEY,
    LiveServer,
    app_env,
    migrate,
    open_form,
    post_booking,
    run_flask,
    slot_key,
)

from microsite import create_app
from microsite.extensions import db
from microsite.models import Clinician, ConsultationType, WorkingHours

pytestmark = pytest.mark.slow

BOOKERS = 4
BOOKED_BEFORE_BACKUP = 12
WAIT_S = 60


def seed(url: str) -> tuple[int, list[str]]:
    """Three clinicians working 07:00-21:00 daily, an hour-long type; its slot keys."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": url,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
        }
    )
    with app.app_context():
        clinicians = []
        for n in range(3):
            clinician = Clinician(name=f"Dr. Backup {n}", email=f"b{n}@example.test")
            clinician.weekly_hours = [
                WorkingHours(weekday=d, start_time=clock_time(7), end_time=clock_time(21))
                for d in range(7)
            ]
            clinicians.append(clinician)
        kind = ConsultationType(
            slug="backup-live", name="Consultation", mode="in_person", duration_minutes=60,
            slot_interval_minutes=60, min_notice_minutes=0, horizon_days=30,
        )  # fmt: skip
        db.session.add_all([*clinicians, kind])
        db.session.commit()
        ids, type_id = [c.id for c in clinicians], kind.id
        db.session.remove()
        db.engine.dispose()
    zone = ZoneInfo(CLINIC_TIMEZONE)
    today = datetime.now(zone).date()
    keys = []
    for day in range(1, 20):
        for hour in range(7, 21):
            start = datetime.combine(today + timedelta(days=day), clock_time(hour), zone)
            keys += [slot_key(clinician_id, start.astimezone(UTC)) for clinician_id in ids]
    return type_id, keys


def test_backup_during_bookings_holds_every_booking_confirmed_before_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    migrate(url)
    type_id, keys = seed(url)
    env = app_env(url)
    confirmed: list[tuple[float, str]] = []  # (when the 303 arrived, idempotency key)
    other_answers: list[int] = []
    lock, stop = threading.Lock(), threading.Event()

    def book(my_keys: list[str], server: LiveServer) -> None:
        for key in my_keys:
            if stop.is_set():
                return
            browser, body = open_form(server, type_id, key)
            response = post_booking(browser, server, body)
            with lock:
                if response.status_code == 303:
                    confirmed.append((time.monotonic(), body["idempotency_key"]))
                else:
                    other_answers.append(response.status_code)

    backup = tmp_path / "backup.sqlite3"
    with LiveServer(env, tmp_path / "gunicorn.log", workers=2) as server:
        threads = [
            threading.Thread(target=book, args=(keys[n::BOOKERS], server), daemon=True)
            for n in range(BOOKERS)
        ]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + WAIT_S
            while len(confirmed) < BOOKED_BEFORE_BACKUP and time.monotonic() < deadline:
                time.sleep(0.05)
            began = time.monotonic()
            with lock:
                before = {key for _at, key in confirmed}
            run_flask(["backup", str(backup)], env, timeout=WAIT_S)
            ended = time.monotonic()
            time.sleep(0.5)  # a few more bookings after it, as on a live site
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT_S)
        log = server.log()

    assert len(before) >= BOOKED_BEFORE_BACKUP, "the site was not taking bookings"
    assert other_answers == []
    assert "Traceback" not in log
    assert "database is locked" not in log
    with sqlite3.connect(f"{backup.as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        in_copy = {row[0] for row in conn.execute("SELECT idempotency_key FROM booking")}
    all_confirmed = {key for _at, key in confirmed}
    assert before <= in_copy, f"missing from the backup: {before - in_copy}"
    assert in_copy <= all_confirmed  # nothing in the copy that the site did not confirm
    during = sum(1 for at, _key in confirmed if began <= at <= ended)
    print(f"{len(before)} bookings before the backup, {during} during it, {len(in_copy)} in it")

    report = run_flask(["restore-check", str(backup)], env).stdout
    assert f"bookings: {len(in_copy)}" in report
    assert "integrity_check: ok" in report
