"""The outbox with real processes: gunicorn workers booking while the mail server hangs, and
two `flask outbox send` commands racing for the same messages.

The servers run on the real clock, so the times booked are tomorrow's. SQLite always;
PostgreSQL when MICROSITE_TEST_DATABASE_URL names an admin database (as in CI).
"""

from __future__ import annotations

import os
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from live_server import (
    CLINIC_TIMEZONE,
    SECRET_KEY,
    LiveServer,
    app_env,
    migrate,
    open_form,
    post_booking,
    postgres_database,
    run_flask,
    slot_key,
)
from smtp_server import black_hole, smtp_server
from sqlalchemy import text

from microsite import create_app
from microsite.extensions import db
from microsite.models import Clinician, ConsultationType, WorkingHours
from microsite.services.booking import PatientDetails, book_slot

pytestmark = pytest.mark.slow

PG_ADMIN_URL = os.environ.get("MICROSITE_TEST_DATABASE_URL", "").strip()
BOOKINGS = 20
MAIL_TIMEOUT_S = 2
SENT_RE = re.compile(r"sent (\d+)")


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def live_database(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('outbox-live') / 'outbox.sqlite3'}"
        migrate(url)
        yield url
        return
    if not PG_ADMIN_URL:
        pytest.skip("MICROSITE_TEST_DATABASE_URL is not set: PostgreSQL process tests run in CI")
    with postgres_database(PG_ADMIN_URL, prefix="microsite_outbox") as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module")
def seed_app(live_database):
    """An app in this process on the same database, to seed and inspect it (never to serve)."""
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": live_database,
            "CLINIC_TIMEZONE": CLINIC_TIMEZONE,
            "MAIL_SEND_IN_BACKGROUND": False,
            # Seeding books one test patient many times; the clinic's policy is tested elsewhere.
            "MAX_UPCOMING_PER_PATIENT": 0,
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def new_clinic(seed_app) -> tuple[int, int]:
    """A clinician working 07:00-21:00 every day and a 30-minute type bookable at once."""
    tag = uuid.uuid4().hex[:8]
    with seed_app.app_context():
        clinician = Clinician(name=f"Dr. Mail {tag}", email=f"{tag}@example.test")
        clinician.weekly_hours = [
            WorkingHours(weekday=day, start_time=clock_time(7), end_time=clock_time(21))
            for day in range(7)
        ]
        consultation_type = ConsultationType(
            slug=f"mail-{tag}",
            name="Initial consultation — video",
            mode="video",
            duration_minutes=30,
            slot_interval_minutes=30,
            min_notice_minutes=0,
            horizon_days=30,
        )
        db.session.add_all([clinician, consultation_type])
        db.session.commit()
        ids = (clinician.id, consultation_type.id)
        db.session.remove()
    return ids


def tomorrows_starts(count: int) -> list[datetime]:
    zone = ZoneInfo(CLINIC_TIMEZONE)
    day: date = datetime.now(zone).date() + timedelta(days=1)
    first = datetime.combine(day, clock_time(8), tzinfo=zone)
    return [(first + timedelta(minutes=30 * i)).astimezone(UTC) for i in range(count)]


def scalar(seed_app, sql: str, **params):
    with seed_app.app_context(), db.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def wait_until_all_due(seed_app, clinician_id: int, timeout: float) -> None:
    """Until no message of this clinic is leased or waiting out a backoff (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = datetime.now(UTC)
        with seed_app.app_context():
            busy = db.session.execute(
                text(
                    "SELECT count(*) FROM outbox_message WHERE clinician_id = :c AND "
                    "status = 'pending' AND (lease_until IS NOT NULL AND lease_until > :now "
                    "OR next_attempt_at > :now)"
                ),
                {
                    "c": clinician_id,
                    "now": now if "postgresql" in str(db.engine.url) else now.replace(tzinfo=None),
                },
            ).scalar()
            db.session.remove()
        if not busy:
            return
        time.sleep(0.25)
    raise AssertionError(f"messages still leased or backing off after {timeout} s")


def test_a_hung_mail_server_neither_fails_nor_slows_bookings_and_loses_nothing(
    live_database, seed_app, tmp_path
):
    clinician_id, type_id = new_clinic(seed_app)
    with black_hole() as hole:
        env = app_env(
            live_database,
            MICROSITE_MAIL_SERVER="127.0.0.1",
            MICROSITE_MAIL_PORT=str(hole),
            MICROSITE_MAIL_TIMEOUT=str(MAIL_TIMEOUT_S),
            MICROSITE_MAIL_LEASE_SECONDS="10",
            MICROSITE_MAIL_RETRY_BASE_SECONDS="1",
        )
        server = LiveServer(env, tmp_path / "gunicorn.log", workers=2)
        with server:
            elapsed, codes = [], []
            for start in tomorrows_starts(BOOKINGS):
                browser, body = open_form(server, type_id, slot_key(clinician_id, start))
                began = time.monotonic()
                response = post_booking(browser, server, body)
                elapsed.append(time.monotonic() - began)
                codes.append(response.status_code)
            log = server.log()
        assert codes == [303] * BOOKINGS
        # Had a response waited for SMTP it would take MAIL_TIMEOUT at least.
        assert max(elapsed) < MAIL_TIMEOUT_S, elapsed
        assert statistics.median(elapsed) < MAIL_TIMEOUT_S / 4, elapsed
        assert "Traceback" not in log, log[-3000:]
    stored = scalar(
        seed_app, "SELECT count(*) FROM booking WHERE clinician_id = :c", c=clinician_id
    )
    assert stored == BOOKINGS
    queued = scalar(
        seed_app,
        "SELECT count(*) FROM outbox_message WHERE clinician_id = :c AND status = 'pending'",
        c=clinician_id,
    )
    assert queued == 3 * BOOKINGS  # nothing sent, nothing lost, nothing failed

    # The killed workers' leases run out; then the mail server is back and cron runs once.
    wait_until_all_due(seed_app, clinician_id, timeout=30)
    with smtp_server() as (port, handler):
        result = run_flask(["outbox", "send"], {**env, "MICROSITE_MAIL_PORT": str(port)})
        received = handler.wait_for(3 * BOOKINGS, timeout=15)
        time.sleep(0.3)  # anything extra would arrive now
        received = list(handler.received)
    assert f"sent {3 * BOOKINGS}" in result.stdout, result.stdout
    kinds = Counter(str(r.message["Subject"]).split(" — ")[0] for r in received)
    assert kinds == {
        "Your consultation is booked": BOOKINGS,
        "New consultation": 2 * BOOKINGS,  # the clinician and the clinic mailbox
    }
    recipients = Counter(r.rcpt_tos for r in received)
    assert (
        recipients[
            (f"{scalar(seed_app, 'SELECT email FROM clinician WHERE id = :c', c=clinician_id)}",)
        ]
        == BOOKINGS
    )
    assert recipients[("bookings@bluewater-psychiatry.example",)] == BOOKINGS
    assert len({(r.rcpt_tos, str(r.message["Subject"])) for r in received}) == 3 * BOOKINGS


def test_two_senders_at_once_deliver_each_message_once(live_database, seed_app):
    clinician_id, type_id = new_clinic(seed_app)
    with seed_app.app_context():
        for index, start in enumerate(tomorrows_starts(BOOKINGS)):
            book_slot(
                consultation_type_id=type_id,
                key=slot_key(clinician_id, start),
                patient=PatientDetails(
                    name="Sam Sender",
                    email=f"patient{index}@example.com",
                    phone_e164="+12075550123",
                    birth_date=date(1980, 1, 2),
                ),
                idempotency_key=uuid.uuid4().hex,
            )
        db.session.remove()
    with smtp_server(delay=0.02) as (port, handler):
        env = app_env(
            live_database,
            MICROSITE_MAIL_SERVER="127.0.0.1",
            MICROSITE_MAIL_PORT=str(port),
            MICROSITE_MAIL_BATCH_SIZE="4",
        )
        outputs: list[str] = []
        barrier = threading.Barrier(2, timeout=30)

        def sender() -> None:
            barrier.wait()
            outputs.append(run_flask(["outbox", "send"], env).stdout)

        threads = [threading.Thread(target=sender) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert not any(thread.is_alive() for thread in threads)
        time.sleep(0.3)
        received = list(handler.received)
    assert len(outputs) == 2
    per_sender = [int(SENT_RE.search(output).group(1)) for output in outputs]
    assert sum(per_sender) == 3 * BOOKINGS, outputs
    assert len(received) == 3 * BOOKINGS
    assert len({(r.rcpt_tos, str(r.message["Subject"])) for r in received}) == 3 * BOOKINGS
    unsent = scalar(
        seed_app,
        "SELECT count(*) FROM outbox_message WHERE clinician_id = :c AND status <> 'sent'",
        c=clinician_id,
    )
    assert unsent == 0
