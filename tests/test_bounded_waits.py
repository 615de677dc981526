"""Every wait is bounded, no booking is committed after the deadline, and 503s tell the truth.

In-process checks of the rules; tests/test_fault_drills.py shows the same with real gunicorn
processes and real faults.
"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import UTC, datetime

import pytest
from booking_helpers import VALID_DETAILS, open_form, slot_key_for
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError
from tests_support import csrf_token

from microsite import create_app, deadline, writers_lock
from microsite.access_log import redact_path
from microsite.database import engine_options
from microsite.extensions import db
from microsite.models import Booking
from microsite.views import health

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(name="Dr. Rivera"), make_consultation_type()


def booking_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Booking))


def filled_form(client, type_id: int, key: str) -> dict:
    response, hidden = open_form(client, type_id, key)
    assert hidden, response.status_code
    return {**hidden, **VALID_DETAILS, "csrf_token": csrf_token(response.get_data(as_text=True))}


def page_text(response) -> str:
    return response.get_data(as_text=True)


# --- the request deadline ---------------------------------------------------------------------


def test_a_booking_past_its_deadline_is_not_stored_and_the_same_form_books_once(
    app, client, clinic
):
    _, consultation_type = clinic
    app.config["REQUEST_START_HEADER_TRUSTED"] = True
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    # The proxy says the request reached it 20 s ago: its patient's browser has given up.
    queued_since = f"t={int((time.time() - 20) * 1_000_000)}"

    late = client.post("/book/details", data=form, headers={"X-Request-Start": queued_since})

    assert late.status_code == 503
    assert late.headers["Retry-After"].isdigit()
    assert "Nothing was booked." in page_text(late)
    assert booking_count() == 0
    retried = [client.post("/book/details", data=form) for _ in range(2)]
    assert [r.status_code for r in retried] == [303, 303]
    assert booking_count() == 1


def test_the_proxy_header_is_ignored_unless_trusted(app, client, clinic):
    _, consultation_type = clinic
    assert app.config["REQUEST_START_HEADER_TRUSTED"] is False
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    spoofed = f"t={int((time.time() - 3600) * 1_000_000)}"
    response = client.post("/book/details", data=form, headers={"X-Request-Start": spoofed})
    assert response.status_code == 303
    assert booking_count() == 1


@pytest.mark.parametrize(
    ("header", "queued"),
    [
        ("t=1700000000000000", 5.0),  # microseconds, as nginx's t=${msec}000000-style setups
        ("t=1700000000000", 5.0),  # milliseconds (Heroku)
        ("1700000000.000", 5.0),  # seconds with a fraction (nginx $msec)
        ("t=1700000010000000", 0.0),  # a clock slightly ahead is not negative time
        ("t=12", 0.0),  # nonsense
        ("", 0.0),
    ],
)
def test_the_queue_time_header_is_read_in_any_common_unit(header, queued):
    assert deadline.queued_seconds(header, 1_700_000_005.0) == pytest.approx(queued)


# --- locks and storage ---------------------------------------------------------------------------


def sqlite_path(is_postgres: bool) -> str:
    if is_postgres:
        pytest.skip("SQLite's writers' lock and file checks: this run's database is PostgreSQL")
    return db.engine.url.database


def test_a_write_lock_held_by_another_writer_gives_a_503_at_the_deadline(
    app, client, clinic, is_postgres
):
    path = sqlite_path(is_postgres)
    _, consultation_type = clinic
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    # Our own writers wait in line until their request's deadline, then give up.
    app.config["REQUEST_DEADLINE_SECONDS"] = 0.5
    holder = os.open(f"{path}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, as far as flock knows
        response = client.post("/book/details", data=form)
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    assert response.status_code == 503
    assert "Nothing was booked." in page_text(response)
    assert booking_count() == 0
    app.config["REQUEST_DEADLINE_SECONDS"] = 10
    assert client.post("/book/details", data=form).status_code == 303


def test_a_lock_file_that_cannot_be_opened_gives_a_503_and_recovers(
    client, clinic, is_postgres, monkeypatch
):
    path = sqlite_path(is_postgres)
    _, consultation_type = clinic
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    real_open = os.open

    def read_only_folder(name, *args, **kwargs):
        if str(name).endswith("-writers.lock"):
            raise PermissionError(13, "Permission denied", name)
        return real_open(name, *args, **kwargs)

    # This process has not opened the lock yet, and the folder is read-only (as root ignores
    # file modes, the refusal is simulated here; the fault drills make it real).
    monkeypatch.setattr(writers_lock, "_locks", {})
    monkeypatch.setattr(writers_lock.os, "open", read_only_folder)
    response = client.post("/book/details", data=form)
    assert response.status_code == 503
    assert "Nothing was booked." in page_text(response)
    assert booking_count() == 0
    monkeypatch.setattr(writers_lock.os, "open", real_open)
    assert client.post("/book/details", data=form).status_code == 303
    assert os.path.exists(f"{path}-writers.lock")


def test_a_nearly_full_disk_refuses_bookings_and_readyz_says_so(app, client, clinic, is_postgres):
    sqlite_path(is_postgres)
    _, consultation_type = clinic
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    app.config["STORAGE_MIN_FREE_BYTES"] = 10**18  # more than any disk has free

    response = client.post("/book/details", data=form)
    ready = client.get("/readyz")

    assert response.status_code == 503
    assert "Nothing was booked." in page_text(response)
    assert booking_count() == 0
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["storage"] == {"ok": False, "disk": "nearly full"}
    assert client.get("/healthz").status_code == 200
    app.config["STORAGE_MIN_FREE_BYTES"] = 0
    assert client.get("/readyz").status_code == 200
    assert client.post("/book/details", data=form).status_code == 303


# --- what the 503 page says ----------------------------------------------------------------------


def broken_database(*_args, **_kwargs):
    raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))


def test_a_confirmation_that_cannot_be_loaded_says_the_booking_is_safe(client, clinic):
    _, consultation_type = clinic
    form = filled_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    assert client.post("/book/details", data=form).status_code == 303
    # Every statement fails from here on, however the page reads its booking.
    event.listen(db.engine, "before_cursor_execute", broken_database)
    try:
        response = client.get("/book/confirmed")
    finally:
        event.remove(db.engine, "before_cursor_execute", broken_database)

    text_ = page_text(response)
    assert response.status_code == 503
    assert "Your booking is safe." in text_
    assert "We could not load your booking just now" in text_
    assert "Nothing was booked" not in text_


def test_a_content_page_that_fails_says_something_neutral(app_config, monkeypatch):
    app = create_app(app_config)
    app.add_url_rule("/about-us-broken", "broken", broken_database)
    response = app.test_client().get("/about-us-broken")
    assert response.status_code == 503
    assert "This page is unavailable for a moment" in page_text(response)
    assert "booked" not in page_text(response).lower()


def test_a_commit_whose_outcome_is_unknown_does_not_claim_nothing_was_booked(app_config):
    app_config["WTF_CSRF_ENABLED"] = False
    app = create_app(app_config)

    def lost_during_commit():
        error = OperationalError("COMMIT", {}, Exception("server closed the connection"))
        error.commit_outcome_unknown = True
        raise error

    app.add_url_rule("/book/lost", "lost", lost_during_commit, methods=["POST"])
    response = app.test_client().post("/book/lost")
    assert response.status_code == 503
    assert "may or may not have been made" in page_text(response)
    assert "Nothing was booked" not in page_text(response)


# --- readiness -----------------------------------------------------------------------------------


def test_readyz_answers_within_its_time_limit_when_a_check_hangs(app, client, monkeypatch):
    app.config["READYZ_TIMEOUT_SECONDS"] = 0.2

    def hangs(_budget):
        time.sleep(1.5)
        return {"ok": True}

    monkeypatch.setattr(health, "CHECKS", [*health.CHECKS, ("hanging", hangs)])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["hanging"] == {
        "ok": False,
        "error": "no answer within 0.2 s",
    }
    assert response.get_json()["checks"]["database"] == {"ok": True}


# --- the database's own limits -------------------------------------------------------------------


def test_postgres_sessions_carry_the_time_budget(app, is_postgres):
    if not is_postgres:
        options = engine_options(
            {
                "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@h/d",
                "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}},
                "DB_CONNECT_TIMEOUT_SECONDS": 3,
                "DB_STATEMENT_TIMEOUT_SECONDS": 5,
                "DB_LOCK_TIMEOUT_SECONDS": 3,
                "REQUEST_DEADLINE_SECONDS": 10,
            }
        )
        assert options["connect_args"]["connect_timeout"] == 1  # a deployment's own value wins
        assert "-c statement_timeout=5000" in options["connect_args"]["options"]
        assert "-c lock_timeout=3000" in options["connect_args"]["options"]
        assert options["pool_timeout"] == 3
        return
    with db.engine.connect() as conn:
        assert conn.scalar(text("SHOW statement_timeout")) == "5s"
        assert conn.scalar(text("SHOW lock_timeout")) == "3s"
        assert conn.scalar(text("SHOW idle_in_transaction_session_timeout")) == "10s"


def test_a_statement_over_the_budget_is_cancelled_with_a_503(app_config, is_postgres):
    if not is_postgres:
        pytest.skip("statement_timeout is PostgreSQL's; SQLite statements do not wait on a server")
    app_config["DB_STATEMENT_TIMEOUT_SECONDS"] = 0.5
    app = create_app(app_config)
    app.add_url_rule(
        "/book/slow",
        "slow",
        lambda: str(db.session.execute(text("SELECT pg_sleep(3)")).scalar()),
    )
    response = app.test_client().get("/book/slow")
    assert response.status_code == 503
    with app.app_context():
        db.engine.dispose()


# --- the access log ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/manage/Zx9-secret_Token", "/manage/[redacted]"),
        ("/manage/Zx9secret/cancel", "/manage/[redacted]/cancel"),
        ("/feeds/abcDEF123.ics", "/feeds/[redacted].ics"),
        ("/book/details?email=a@b.c", "/book/details"),
        ("/book/", "/book/"),
    ],
)
def test_access_log_paths_carry_no_token_or_query(path, logged):
    assert redact_path(path) == logged


def test_elapsed_deadline_helpers_outside_a_request_mean_no_deadline(app):
    assert deadline.remaining() is None
    assert deadline.bounded(3.0) == 3.0
    deadline.check()  # no request, no deadline: nothing raised
