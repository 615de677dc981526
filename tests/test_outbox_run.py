"""`flask --app microsite outbox run` as systemd runs it: a real process on a throwaway SQLite
database, a real SMTP server, and SIGTERM to stop it (docs/deploy.md's promise)."""

from __future__ import annotations

import logging
import signal
import subprocess
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from live_server import (
    CLINIC_TIMEZONE,
    REPO_ROOT,
    SECRET_KEY,
    VENV_BIN,
    app_env,
    migrate,
    slot_key,
    stop_process_group,
)
from smtp_server import smtp_server
from sqlalchemy import select

from microsite import create_app
from microsite.extensions import db
from microsite.models import Clinician, ConsultationType, OutboxMessage, WorkingHours
from microsite.services.booking import PatientDetails, book_slot

pytestmark = pytest.mark.slow

# Bounds on waits, not speed claims: generous for a shared, busy machine.
DELIVERY_WAIT_S = 60
STOP_WAIT_S = 20


@pytest.fixture
def seeded_database(tmp_path) -> tuple:
    """A migrated SQLite database holding one booking, its three emails waiting."""
    url = f"sqlite:///{tmp_path / 'outbox-run.sqlite3'}"
    migrate(url)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": url,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            "MAIL_SEND_IN_BACKGROUND": False,
        }
    )
    zone = ZoneInfo(CLINIC_TIMEZONE)
    start = datetime.combine(datetime.now(zone).date() + timedelta(days=2), clock_time(10), zone)
    with app.app_context():
        clinician = Clinician(name="Dr. Run Loop", email="run.loop@example.test")
        clinician.weekly_hours = [
            WorkingHours(weekday=day, start_time=clock_time(7), end_time=clock_time(21))
            for day in range(7)
        ]
        kind = ConsultationType(
            slug="run-loop",
            name="Initial consultation — video",
            mode="video",
            duration_minutes=30,
            slot_interval_minutes=30,
            min_notice_minutes=0,
            horizon_days=30,
        )
        db.session.add_all([clinician, kind])
        db.session.commit()
        book_slot(
            consultation_type_id=kind.id,
            key=slot_key(clinician.id, start.astimezone(UTC)),
            patient=PatientDetails(
                name="Sam Sender",
                email="sam.sender@example.com",
                phone_e164="+12075550123",
                birth_date=date(1980, 1, 2),
            ),
            idempotency_key=uuid.uuid4().hex,
        )
        db.session.remove()
    yield url, app
    with app.app_context():
        db.engine.dispose()


def statuses(app) -> list[str]:
    with app.app_context():
        found = sorted(db.session.scalars(select(OutboxMessage.status)))
        db.session.remove()
    return found


def test_outbox_run_delivers_then_stops_cleanly_on_sigterm(seeded_database):
    url, app = seeded_database
    assert statuses(app) == ["pending"] * 3
    with smtp_server() as (port, handler):
        env = app_env(
            url,
            MICROSITE_MAIL_SERVER="127.0.0.1",
            MICROSITE_MAIL_PORT=str(port),
            MICROSITE_MAIL_TIMEOUT="5",
        )
        process = subprocess.Popen(  # noqa: S603 - our own venv's flask, fixed arguments
            [str(VENV_BIN / "flask"), "--app", "microsite", "outbox", "run", "--interval", "1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            received = handler.wait_for(3, timeout=DELIVERY_WAIT_S)
            assert len(received) == 3, process.poll()
            assert process.poll() is None  # still looping after the pass
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=STOP_WAIT_S)
        finally:
            stop_process_group(process)
    assert process.returncode == 0, err
    assert "outbox: sent 3" in out
    assert out.rstrip().endswith("outbox: stopped")
    assert "Traceback" not in err
    assert statuses(app) == ["sent"] * 3
    assert sorted(rcpt for item in received for rcpt in item.rcpt_tos) == [
        "bookings@bluewater-psychiatry.example",
        "run.loop@example.test",
        "sam.sender@example.com",
    ]


def test_ctrl_c_during_a_pass_lets_it_finish_first(app, monkeypatch):
    # In-process, so the signal lands while a pass is under way: the pass completes (its
    # report is printed) before the command exits 0. SIGINT, not SIGTERM, so that a broken
    # handler fails this test instead of killing the test run.
    import os

    from microsite.services import outbox

    passes = []

    def send_due():
        passes.append(1)
        if len(passes) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-pass
        return outbox.SendReport(sent=1)

    monkeypatch.setattr(outbox, "send_due", send_due)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = app.test_cli_runner().invoke(args=["outbox", "run", "--interval", "30"])
    assert result.exit_code == 0, result.output
    assert result.output == "outbox: sent 1, to retry 0, failed 0, skipped 0\noutbox: stopped\n"
    assert passes == [1]  # no new pass after the signal
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd(caplog):
    caplog.set_level(logging.WARNING, logger="mail.log")
