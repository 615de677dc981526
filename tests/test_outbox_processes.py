"""The outbox with real processes: gunicorn workers booking while the mail server hangs, and
two `flask outbox send` commands racing for the same messages.

The servers run on the real clock, so the times booked are tomorrow's. SQLite always;
PostgreSQL when MICROSITE_TEST_DATABASE_URL names an admin database (as in CI).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from live_server import (
    BACKENDS,
    LiveServer,
    app_env,
    migrated_database,
    open_form,
    post_booking,
    run_flask,
    scalar,
    seed_app_on,
    seed_clinic,
    slot_key,
    tomorrow_at,
)
from smtp_server import black_hole, smtp_server
from sqlalchemy import text

from microsite.extensions import db
from microsite.services.booking import PatientDetails, book_slot

pytestmark = pytest.mark.slow

BOOKINGS = 20
MAIL_TIMEOUT_S = 2
SENT_RE = re.compile(r"sent (\d+)")


@pytest.fixture(scope="module", params=BACKENDS)
def live_database(request, tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("outbox-live")
    with migrated_database(request.param, folder, prefix="microsite_outbox") as url:
        yield url


@pytest.fixture(scope="module")
def seed_app(live_database):
    # Seeding books one test patient many times; the clinic's policy is tested elsewhere.
    with seed_app_on(
        live_database, MAIL_SEND_IN_BACKGROUND=False, MAX_UPCOMING_PER_PATIENT=0
    ) as app:
        yield app


def new_clinic(seed_app) -> tuple[int, int]:
    """A clinician working 07:00-21:00 every day and a 30-minute video type bookable at once."""
    return seed_clinic(seed_app, duration_minutes=30, slot_interval_minutes=30, mode="video")


def tomorrows_starts(count: int) -> list[datetime]:
    """`count` back-to-back half hours from 08:00 tomorrow, clinic time."""
    first = tomorrow_at(8)
    return [first + timedelta(minutes=30 * i) for i in range(count)]


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
