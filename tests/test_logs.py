"""Logs: one structured line per request and per event, with a request id and no patient data."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
from booking_helpers import slot_key_for, submit
from live_server import free_port, hidden_fields
from sqlalchemy.exc import OperationalError
from werkzeug.serving import make_server

from microsite import create_app, logs
from microsite.extensions import db
from microsite.models import Booking
from microsite.services import booking as booking_service
from microsite.services import manage_links

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def schedule(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(), make_consultation_type()


@pytest.fixture
def json_lines():
    """The lines the production handler writes while the test runs, parsed."""
    stream = io.StringIO()
    handler = logs.make_handler("json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logs.REQUEST_LOGGER]


def test_each_request_has_one_line_with_its_id_status_and_duration(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/faq?utm_source=newsletter")
    [line] = request_lines(caplog)
    assert line.method == "GET"
    assert line.path == "/faq"  # no query string
    assert line.status == 200
    assert line.duration_ms >= 0
    assert line.request_id == response.headers["X-Request-Id"]
    assert len(line.request_id) >= 8


def test_a_request_id_from_the_proxy_is_kept_only_if_it_looks_like_one(client):
    good = client.get("/faq", headers={"X-Request-Id": "nginx-5f3a9c2e71"})
    assert good.headers["X-Request-Id"] == "nginx-5f3a9c2e71"
    for bad in ("short", "has spaces in it", '"}{"injected": 1', "x" * 65):
        response = client.get("/faq", headers={"X-Request-Id": bad})
        assert response.headers["X-Request-Id"] != bad
        assert response.headers["X-Request-Id"].isalnum()


def test_the_error_page_shows_the_same_request_id_as_the_header(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] in response.get_data(as_text=True)


def test_health_probes_are_logged_below_info(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/healthz")
    assert request_lines(caplog) == []
    caplog.set_level(logging.DEBUG)
    client.get("/healthz")
    assert [r.path for r in request_lines(caplog)] == ["/healthz"]


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/manage/Vq3kP9x_secret-token", "/manage/…"),
        ("/manage/Vq3kP9x_secret-token/cancel", "/manage/…/cancel"),
        ("/feeds/Zk2m8Q_feed-token.ics", "/feeds/….ics"),
    ],
)
def test_secret_link_segments_are_redacted(client, caplog, path, logged):
    caplog.set_level(logging.INFO)
    client.get(path + "?email=someone@example.com")
    [line] = request_lines(caplog)
    assert line.path == logged


def test_a_booking_line_and_event_carry_the_booking_id(client, schedule, caplog, json_lines):
    clinician, consultation_type = schedule
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM, clinician.id))
    assert response.status_code == 303
    booking = db.session.scalars(db.select(Booking)).one()
    lines = json_lines()
    [post] = [x for x in lines if x.get("event") == "http.request" and x["method"] == "POST"]
    assert post["path"] == "/book/details"
    assert post["status"] == 303
    assert post["booking_id"] == booking.id
    assert post["request_id"] == response.headers["X-Request-Id"]
    [created] = [x for x in lines if x.get("event") == "booking.created"]
    assert created["booking_id"] == booking.id
    assert created["message"] == "booking created"
    assert created["level"] == "INFO"
    # The event was logged inside the request: the request id ties the two lines together.
    assert created["request_id"] == post["request_id"]
    client.get("/book/confirmed")
    confirmed = [x for x in json_lines() if x.get("path") == "/book/confirmed"]
    assert confirmed[0]["booking_id"] == booking.id


def test_text_format_shows_the_event_fields():
    record = logging.makeLogRecord(
        {"name": "microsite.x", "msg": "booking created", "levelno": 20, "levelname": "INFO"}
    )
    record.event, record.booking_id = "booking.created", 7
    line = logs.make_formatter("text").format(record)
    assert "booking created" in line
    assert "booking_id=7" in line
    assert "event=booking.created" in line


def test_a_misspelt_log_format_stops_the_app(app_config):
    app_config["LOG_FORMAT"] = "jsonl"
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        create_app(app_config)


def test_outside_testing_one_json_handler_serves_every_logger(app_config):
    """The factory installs its handler once on the root logger, however many apps it builds."""
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    config = {**app_config, "TESTING": False, "LOG_LEVEL": "DEBUG"}
    try:
        create_app(config)
        app = create_app(config)
        ours = [h for h in root.handlers if getattr(h, "_microsite", False)]
        assert len(ours) == 1
        assert isinstance(ours[0].formatter, logs.JsonFormatter)
        assert root.level == logging.DEBUG
        # Rows fetched by SQLAlchemy hold names: its loggers stay quiet at any LOG_LEVEL.
        assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
        assert logs.default_handler not in app.logger.handlers
    finally:
        for handler in root.handlers[:]:
            if handler not in before_handlers:
                root.removeHandler(handler)
        root.setLevel(before_level)


# --- no patient data in any log line ----------------------------------------------------------

RECOGNISABLE_PATIENT = {
    "full_name": "Zebulon Quixote-Marchbanks",
    "email": "zeb.marchbanks@example.com",
    "phone": "(207) 555-0199",
    "birth_date-month": "03",
    "birth_date-day": "14",
    "birth_date-year": "1971",
    "note": "Xyzzyplugh: I stopped taking lithium in May.",
    "consent_privacy": "y",
    "ack_not_emergency": "y",
}
MANAGE_TOKEN = "Mng7Qp2LxV9tRk4Wz8Yb3Nc6Hd1Jf5Gs"
FEED_TOKEN = "Fd8Kw3Zp6Lq1Vx4Tn9Rb2Mc7Hy5Js0Ge"
FORBIDDEN = [
    "Zebulon",
    "Marchbanks",
    "zeb.marchbanks",
    "555-0199",
    "5550199",
    "1971-03-14",
    "03/14/1971",
    "Xyzzyplugh",
    "lithium",
    MANAGE_TOKEN,
    FEED_TOKEN,
    "utm_campaign",
    "email=",
]


@pytest.fixture
def werkzeug_server(app):
    """The app behind Werkzeug's own server (as `make run` serves it), so its lines are logged."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.parametrize("sql_logging", [False, True], ids=["root-debug", "sql-statements-too"])
def test_booking_rescheduling_and_cancelling_leave_no_patient_data_in_any_log_line(
    app, schedule, werkzeug_server, caplog, json_lines, sql_logging
):
    if sql_logging:  # what an operator sees after turning SQL statement logging on
        caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)  # last: it also sets the capturing handler's level
    clinician, consultation_type = schedule
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    browser = requests.Session()
    timeout = 30

    # A patient's browser may carry their own details in a query string.
    found = browser.get(
        f"{werkzeug_server}/book/",
        params={"type": consultation_type.id, "email": RECOGNISABLE_PATIENT["email"]},
        timeout=timeout,
    )
    assert found.status_code == 200
    form = browser.get(
        f"{werkzeug_server}/book/details",
        params={"type": consultation_type.id, "slot": key, "utm_campaign": "x"},
        timeout=timeout,
    )
    body = {**hidden_fields(form.text), **RECOGNISABLE_PATIENT}
    booked = browser.post(
        f"{werkzeug_server}/book/details", data=body, allow_redirects=False, timeout=timeout
    )
    assert booked.status_code == 303, booked.text[:300]
    assert browser.get(f"{werkzeug_server}/book/confirmed", timeout=timeout).status_code == 200
    calendar_file = browser.get(f"{werkzeug_server}/book/confirmed/consultation.ics", timeout=30)
    assert calendar_file.status_code == 200
    db.session.rollback()  # end this thread's read snapshot: the server thread booked since
    booking = db.session.scalars(db.select(Booking)).one()
    assert booking.patient_name == RECOGNISABLE_PATIENT["full_name"]

    # Secret links: whatever these routes answer today, their tokens never reach a log.
    browser.get(f"{werkzeug_server}/manage/{MANAGE_TOKEN}", timeout=timeout)
    browser.get(f"{werkzeug_server}/feeds/{FEED_TOKEN}.ics", timeout=timeout)

    # The patient's real manage link, as their confirmation email carries it: move the
    # booking to another time through it, then cancel through it.
    manage_token = manage_links.issue_link(booking.id)
    db.session.commit()
    manage = f"{werkzeug_server}/manage/{manage_token}"
    assert browser.get(manage, timeout=timeout).status_code == 200
    assert browser.get(f"{manage}/reschedule", timeout=timeout).status_code == 200
    new_key = slot_key_for(TUESDAY_9AM + timedelta(hours=2), clinician.id)
    confirm = browser.get(f"{manage}/reschedule/confirm", params={"slot": new_key}, timeout=30)
    assert confirm.status_code == 200, confirm.text[:300]
    moved = browser.post(
        f"{manage}/reschedule/confirm",
        data=hidden_fields(confirm.text),
        allow_redirects=False,
        timeout=timeout,
    )
    assert moved.status_code == 303, moved.text[:300]
    shown = browser.get(manage, timeout=timeout)
    cancelled = browser.post(
        f"{manage}/cancel", data=hidden_fields(shown.text), allow_redirects=False, timeout=30
    )
    assert cancelled.status_code == 303, cancelled.text[:300]
    db.session.rollback()
    assert db.session.get(Booking, booking.id).status == "cancelled"
    forbidden = [*FORBIDDEN, manage_token]

    # The test's own HTTP client (urllib3) logs the URLs it requests: those are not the site's.
    records = [r for r in caplog.records if not r.name.startswith("urllib3")]
    texts = [record.getMessage() for record in records]
    searched = texts + [
        json.dumps(x) for x in json_lines() if not x["logger"].startswith("urllib3")
    ]
    for text in searched:
        for value in forbidden:
            assert value.lower() not in text.lower(), f"{value!r} logged: {text[:300]}"

    # And the logs were really there to search: every source spoke.
    names = {record.name for record in records}
    assert "werkzeug" in names
    assert logs.REQUEST_LOGGER in names
    events = {getattr(record, "event", None) for record in records}
    assert {"booking.created", "booking.rescheduled", "booking.cancelled", "http.request"} <= events
    werkzeug_lines = [t for r, t in zip(records, texts, strict=False) if r.name == "werkzeug"]
    assert any('"GET /manage/… HTTP/1.1"' in line for line in werkzeug_lines)
    assert any('"GET /book/details HTTP/1.1"' in line for line in werkzeug_lines)
    request_paths = {r.path for r in records if r.name == logs.REQUEST_LOGGER}
    assert {"/manage/…", "/feeds/….ics", "/book/details"} <= request_paths
    if sql_logging:
        sql = [t for r, t in zip(records, texts, strict=False) if r.name.startswith("sqlalchemy")]
        assert any("INSERT INTO booking " in line for line in sql)


def test_an_outage_line_names_the_databases_error_but_never_the_statement_or_patient(
    client, schedule, caplog, json_lines, monkeypatch
):
    """The operator can tell a read-only file from a busy lock; the patient's details stay out."""
    readonly = sqlite3.connect(":memory:")
    readonly.execute("PRAGMA query_only = 1")
    try:
        readonly.execute("CREATE TABLE t (x)")
    except sqlite3.OperationalError as error:
        real_sqlite_error = error
    readonly.close()

    def refused(*_args, **_kwargs):
        raise OperationalError(
            "INSERT INTO booking (email) VALUES (?)", ("ann@example.org",), real_sqlite_error
        )

    monkeypatch.setattr(booking_service, "book_slot", refused)
    clinician, consultation_type = schedule
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM, clinician.id))
    assert response.status_code == 503
    [line] = [x for x in json_lines() if x.get("event") == "db.unavailable"]
    assert line["db_error"] == "SQLITE_READONLY"
    assert line["db_message"] == "attempt to write a readonly database"
    assert "ann@example.org" not in json.dumps(line)
    assert "INSERT" not in json.dumps(line)
