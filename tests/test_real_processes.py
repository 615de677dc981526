"""With real gunicorn workers and real `flask` commands, one clinician is never booked twice.

The module's tests share one `gunicorn -w 4 wsgi:app` (separate processes, threads from
gunicorn.conf.py), each test with a new clinician of its own. Each fills the booking form the
way a browser does (GET the form, send back its hidden fields and CSRF token) from many threads
at once, and checks what a patient would notice: one confirmation, everyone else told the time
was "just taken", never a server error. The server runs on the real clock, so the times booked
are tomorrow's, in the clinic's zone.

SQLite always; PostgreSQL when MICROSITE_TEST_DATABASE_URL names an admin database (as in CI).
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pytest
import requests
from live_server import (
    BACKENDS,
    OVERLAPPING_PAIRS_SQL,
    REFERENCE_RE,
    REPO_ROOT,
    REQUEST_TIMEOUT_S,
    VENV_BIN,
    Clinic,
    LiveServer,
    all_at_once,
    app_env,
    assert_clean_server_log,
    migrated_database,
    open_forms,
    post_booking,
    query,
    seed_app_on,
    seed_clinic,
    slot_key,
    tomorrow_at,
)

from microsite.extensions import db
from microsite.models import Booking

pytestmark = pytest.mark.slow

RACERS = 50


# --- one migrated database and one gunicorn per module and backend; a clinic per test ---------


@pytest.fixture(scope="module", params=BACKENDS)
def live_database(request, tmp_path_factory) -> Iterator[str]:
    """The URL of a fresh database migrated by `flask db upgrade`, removed afterwards."""
    with migrated_database(request.param, tmp_path_factory.mktemp("live")) as url:
        yield url


@pytest.fixture(scope="module")
def seed_app(live_database):
    with seed_app_on(live_database) as app:
        yield app


@pytest.fixture(scope="module")
def shared_server(live_database, tmp_path_factory) -> Iterator[LiveServer]:
    """gunicorn with 4 workers (gthread, gunicorn.conf.py) on a free port, for the module."""
    log = tmp_path_factory.mktemp("live-server") / "gunicorn.log"
    with LiveServer(app_env(live_database), log, workers=4) as live:
        yield live


@pytest.fixture
def server(shared_server) -> Iterator[LiveServer]:
    """The module's server; its log must stay clean while this test runs. Each test books its
    own new clinician, so what earlier tests booked never meets it."""
    mark = shared_server.log_mark()
    yield shared_server
    assert_clean_server_log(shared_server, since=mark)


def active_bookings(seed_app, clinician_id: int) -> list:
    return query(
        seed_app,
        "SELECT id, reference, starts_at FROM booking "
        "WHERE clinician_id = :clinician AND status <> 'cancelled'",
        clinician=clinician_id,
    )


def assert_only_booked_or_taken(responses: list[requests.Response]) -> None:
    codes = Counter(response.status_code for response in responses)
    assert set(codes) <= {303, 409}, codes
    for response in responses:
        if response.status_code == 409:
            assert "just taken" in response.text
        else:
            assert response.headers["Location"].endswith("/book/confirmed")


# --- the tests -----------------------------------------------------------------------------------


def test_fifty_patients_racing_for_one_slot_get_one_booking(server, seed_app):
    clinic = seed_clinic(seed_app, slot_interval_minutes=30)
    key = slot_key(clinic.clinician_id, tomorrow_at(10))
    forms = open_forms(server, clinic.type_id, [key] * RACERS)

    responses = all_at_once(
        [lambda b=browser, d=body: post_booking(b, server, d) for browser, body in forms]
    )

    assert Counter(r.status_code for r in responses) == {303: 1, 409: RACERS - 1}
    assert_only_booked_or_taken(responses)
    rows = query(
        seed_app, "SELECT count(*) FROM booking WHERE clinician_id = :c", c=clinic.clinician_id
    )
    assert rows[0][0] == 1


def test_fifty_patients_racing_for_overlapping_times_get_one_booking(server, seed_app):
    clinic = seed_clinic(seed_app, slot_interval_minutes=15)
    starts = [tomorrow_at(10, minute) for minute in (0, 15, 30, 45)]  # 60 minutes: all overlap
    keys = [slot_key(clinic.clinician_id, starts[i % len(starts)]) for i in range(RACERS)]
    forms = open_forms(server, clinic.type_id, keys)

    responses = all_at_once(
        [lambda b=browser, d=body: post_booking(b, server, d) for browser, body in forms]
    )

    assert_only_booked_or_taken(responses)
    assert sum(r.status_code == 303 for r in responses) == 1
    assert len(active_bookings(seed_app, clinic.clinician_id)) == 1
    assert query(seed_app, OVERLAPPING_PAIRS_SQL)[0][0] == 0


def test_a_cancellation_racing_rebookings_frees_the_slot_for_exactly_one(
    server, seed_app, live_database
):
    clinic = seed_clinic(seed_app, slot_interval_minutes=30)
    start = tomorrow_at(11)
    key = slot_key(clinic.clinician_id, start)
    # Ten patients opened the form while the time was free; then someone booked it.
    forms = open_forms(server, clinic.type_id, [key] * 10)
    original = insert_booking(seed_app, clinic, start)
    cancel_finished = threading.Event()

    def keep_trying(browser: requests.Session, body: dict) -> list[requests.Response]:
        """Resend while the cancellation runs, and once more after it has surely committed."""
        responses = []
        while True:
            cancel_was_done = cancel_finished.is_set()
            responses.append(post_booking(browser, server, body))
            if responses[-1].status_code != 409 or cancel_was_done:
                return responses
            time.sleep(0.05)

    with ThreadPoolExecutor(max_workers=10) as pool:
        cancel = subprocess.Popen(
            [str(VENV_BIN / "flask"), "--app", "microsite", "bookings", "cancel", original],
            cwd=REPO_ROOT,
            env=app_env(live_database),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            futures = [pool.submit(keep_trying, browser, body) for browser, body in forms]
            # A flask command starting on a loaded machine, then queueing for the write lock.
            output, _ = cancel.communicate(timeout=2 * REQUEST_TIMEOUT_S)
        finally:
            cancel_finished.set()
            if cancel.poll() is None:
                cancel.kill()
                cancel.wait()
        outcomes = [future.result(timeout=2 * REQUEST_TIMEOUT_S) for future in futures]

    assert cancel.returncode == 0, output
    assert f"Booking {original} is cancelled." in output
    every_response = [response for responses in outcomes for response in responses]
    assert_only_booked_or_taken(every_response)
    assert sum(responses[-1].status_code == 303 for responses in outcomes) == 1
    status = query(seed_app, "SELECT status FROM booking WHERE reference = :r", r=original)
    assert status[0][0] == "cancelled"
    active = active_bookings(seed_app, clinic.clinician_id)
    assert len(active) == 1
    assert active[0].reference != original
    assert query(seed_app, OVERLAPPING_PAIRS_SQL)[0][0] == 0


def test_one_form_sent_ten_times_at_once_makes_one_booking_and_one_confirmation(server, seed_app):
    clinic = seed_clinic(seed_app, slot_interval_minutes=30)
    key = slot_key(clinic.clinician_id, tomorrow_at(12))
    [(browser, body)] = open_forms(server, clinic.type_id, [key])
    cookies = browser.cookies.get_dict()

    def send() -> requests.Response:
        return requests.post(
            f"{server.url}/book/details",
            data=body,
            cookies=cookies,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT_S,
        )

    responses = all_at_once([send] * 10)

    assert [r.status_code for r in responses] == [303] * 10
    references = []
    for response in responses:
        own_cookies = response.cookies.get_dict()
        assert "session" in own_cookies, "a confirmation must set its own session cookie"
        confirmed = requests.get(
            f"{server.url}/book/confirmed", cookies=own_cookies, timeout=REQUEST_TIMEOUT_S
        )
        assert confirmed.status_code == 200
        references.append(REFERENCE_RE.search(confirmed.text).group(1))
    rows = active_bookings(seed_app, clinic.clinician_id)
    assert len(rows) == 1
    assert references == [rows[0].reference] * 10


def insert_booking(seed_app, clinic: Clinic, start: datetime) -> str:
    """A confirmed booking written through the models; returns its reference."""
    reference = uuid.uuid4().hex[:6].upper()
    with seed_app.app_context():
        db.session.add(
            Booking(
                uid=f"{uuid.uuid4()}@test",
                reference=reference,
                clinician_id=clinic.clinician_id,
                consultation_type_id=clinic.type_id,
                starts_at=start,
                ends_at=start + timedelta(minutes=60),
                patient_name="Pat Example",
                patient_email="pat@example.test",
                patient_phone="+12075550143",
                patient_birth_date=date(1980, 1, 2),
            )
        )
        db.session.commit()
        db.session.remove()
    return reference
