"""Staff calendar feeds: what a subscribed calendar receives, and when it gets a 304.

Clock frozen at Monday 30 Nov 2026 08:00 EST (13:00 UTC); the default consultation type books
60 days ahead, so a feed covers 31 Oct .. 30 Jan (whole UTC days).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import vobject
from click.testing import CliRunner
from icalendar import Calendar
from sqlalchemy import event

from microsite.extensions import db
from microsite.services import feeds

NOW = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "data" / "feeds" / "clinic_feed.ics"
REGENERATE = os.environ.get("MICROSITE_REGENERATE_GOLDEN") == "1"
PATIENT_NAME = "Pat Example"


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    okafor = make_clinician(name="Dr. Amara Okafor", email="a.okafor@clinic.test")
    reyes = make_clinician(name="Dr. Daniel Reyes", email="D.Reyes@clinic.test")
    in_person = make_consultation_type(horizon_days=60)
    video = make_consultation_type(mode="video", name="Initial consultation — video")
    return okafor, reyes, in_person, video


def feed_path(token: str) -> str:
    return feeds.FEED_PATH.format(token=token)


def events_of(body: bytes) -> dict[str, dict]:
    """UID -> the event's properties, read by icalendar and cross-checked by vobject."""
    parsed = Calendar.from_ical(body)
    by_icalendar = {
        str(e["UID"]): {
            "status": str(e["STATUS"]),
            "sequence": int(e["SEQUENCE"]),
            "summary": str(e["SUMMARY"]),
            "start": e.decoded("DTSTART"),
        }
        for e in parsed.walk("VEVENT")
    }
    other = vobject.readOne(body.decode("utf-8"))
    by_vobject = {
        e.uid.value: {
            "status": e.status.value,
            "sequence": int(e.sequence.value),
            "summary": e.summary.value,
            "start": e.dtstart.value,
        }
        for e in other.contents.get("vevent", [])
    }
    assert by_icalendar == by_vobject
    return by_icalendar


def test_a_clinicians_feed_lists_their_bookings_without_patient_data(client, clinic, make_booking):
    okafor, reyes, in_person, video = clinic
    mine = make_booking(okafor, in_person, NOW + timedelta(days=1))
    my_video = make_booking(okafor, video, NOW + timedelta(days=2))
    theirs = make_booking(reyes, in_person, NOW + timedelta(days=1))
    token = feeds.create_feed(okafor.id)

    response = client.get(feed_path(token))

    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    body = response.get_data()
    events = events_of(body)
    assert set(events) == {mine.uid, my_video.uid}
    assert theirs.uid not in events
    assert events[mine.uid]["summary"] == f"Consultation — Bluewater, ref {mine.reference}"
    assert PATIENT_NAME.encode() not in body
    assert b"pat@example.test" not in body
    assert b"ketamine" not in body.lower()
    calendar = Calendar.from_ical(body)
    assert str(calendar["X-WR-CALNAME"]) == "Bluewater — Dr. Amara Okafor"
    assert str(calendar["NAME"]) == "Bluewater — Dr. Amara Okafor"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in body
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in body
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["ETag"].startswith('"')
    assert response.headers["Last-Modified"] == "Mon, 30 Nov 2026 13:00:00 GMT"


def test_the_clinic_feed_has_every_clinician(client, clinic, make_booking):
    okafor, reyes, in_person, _video = clinic
    a = make_booking(okafor, in_person, NOW + timedelta(days=1))
    b = make_booking(reyes, in_person, NOW + timedelta(days=1))
    body = client.get(feed_path(feeds.create_feed(None))).get_data()
    assert set(events_of(body)) == {a.uid, b.uid}
    assert str(Calendar.from_ical(body)["X-WR-CALNAME"]) == "Bluewater"


def test_the_window_is_30_days_back_to_the_horizon(client, clinic, make_booking):
    okafor, _reyes, in_person, _video = clinic
    too_old = make_booking(okafor, in_person, NOW - timedelta(days=31))
    recent = make_booking(okafor, in_person, NOW - timedelta(days=29))
    last = make_booking(okafor, in_person, NOW + timedelta(days=60))
    beyond = make_booking(okafor, in_person, NOW + timedelta(days=62))
    events = events_of(client.get(feed_path(feeds.create_feed(okafor.id))).get_data())
    assert set(events) == {recent.uid, last.uid}
    assert too_old.uid not in events
    assert beyond.uid not in events


def test_a_cancelled_booking_stays_30_days_as_cancelled_then_goes(
    client, clinic, make_booking, frozen_clock
):
    okafor, _reyes, in_person, _video = clinic
    booking = make_booking(
        okafor,
        in_person,
        NOW + timedelta(days=45),
        status="cancelled",
        sequence=1,
        cancelled_at=NOW,
    )
    path = feed_path(feeds.create_feed(okafor.id))

    entry = events_of(client.get(path).get_data())[booking.uid]
    assert entry["status"] == "CANCELLED"
    assert entry["sequence"] == 1

    frozen_clock.set(NOW + timedelta(days=29))
    assert events_of(client.get(path).get_data())[booking.uid]["status"] == "CANCELLED"
    frozen_clock.set(NOW + timedelta(days=31))  # the appointment itself is still ahead
    assert booking.uid not in events_of(client.get(path).get_data())


def test_if_none_match_gets_304_from_one_select_without_building(
    client, clinic, make_booking, monkeypatch
):
    okafor, _reyes, in_person, _video = clinic
    make_booking(okafor, in_person, NOW + timedelta(days=1))
    path = feed_path(feeds.create_feed(okafor.id))
    first = client.get(path)

    def must_not_build(_state):
        raise AssertionError("a 304 must not build the calendar")

    monkeypatch.setattr(feeds, "build_feed_calendar", must_not_build)
    # The validator runs on a raw DBAPI connection (no ORM events), so count what the database
    # itself is asked on SQLite, and on every database that nothing else goes through SQLAlchemy.
    orm_statements, sqlite_statements = [], []

    def count_orm(_conn, _cursor, statement, *_args):
        if not statement.startswith("BEGIN"):  # SQLite's own BEGIN is not a query
            orm_statements.append(statement)

    def trace_sqlite(dbapi_connection, _record, _proxy):
        if hasattr(dbapi_connection, "set_trace_callback"):
            dbapi_connection.set_trace_callback(sqlite_statements.append)

    event.listen(db.engine, "before_cursor_execute", count_orm)
    event.listen(db.engine.pool, "checkout", trace_sqlite)
    try:
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    finally:
        event.remove(db.engine, "before_cursor_execute", count_orm)
        event.remove(db.engine.pool, "checkout", trace_sqlite)

    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert orm_statements == []
    if db.engine.dialect.name == "sqlite":
        assert len(sqlite_statements) == 1, sqlite_statements
        assert sqlite_statements[0].startswith("SELECT")


def test_if_modified_since_gets_304(client, clinic, make_booking):
    okafor, _reyes, in_person, _video = clinic
    make_booking(okafor, in_person, NOW + timedelta(days=1))
    path = feed_path(feeds.create_feed(okafor.id))
    first = client.get(path)
    again = client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert again.status_code == 304
    earlier = client.get(path, headers={"If-Modified-Since": "Sun, 29 Nov 2026 13:00:00 GMT"})
    assert earlier.status_code == 200


def test_a_change_gives_200_with_a_new_etag(client, clinic, make_booking, frozen_clock):
    okafor, _reyes, in_person, _video = clinic
    booking = make_booking(okafor, in_person, NOW + timedelta(days=1))
    path = feed_path(feeds.create_feed(okafor.id))
    first = client.get(path)

    frozen_clock.advance(timedelta(minutes=3))
    booking.status, booking.sequence, booking.cancelled_at = "cancelled", 1, frozen_clock()
    db.session.commit()
    changed = client.get(
        path,
        headers={
            "If-None-Match": first.headers["ETag"],
            "If-Modified-Since": first.headers["Last-Modified"],
        },
    )

    assert changed.status_code == 200
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert changed.headers["Last-Modified"] == "Mon, 30 Nov 2026 13:03:00 GMT"
    assert events_of(changed.get_data())[booking.uid]["status"] == "CANCELLED"
    # The new validator then holds.
    assert client.get(path, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_a_new_booking_changes_the_etag_even_in_the_same_instant(client, clinic, make_booking):
    okafor, _reyes, in_person, _video = clinic
    make_booking(okafor, in_person, NOW + timedelta(days=1))
    path = feed_path(feeds.create_feed(okafor.id))
    first = client.get(path)
    make_booking(okafor, in_person, NOW + timedelta(days=2))  # same frozen updated_at
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    assert len(events_of(again.get_data())) == 2


def test_the_window_moving_to_a_new_day_changes_the_etag(client, clinic, frozen_clock):
    okafor = clinic[0]
    path = feed_path(feeds.create_feed(okafor.id))
    first = client.get(path)
    frozen_clock.advance(timedelta(hours=11))  # 00:00 UTC, Tuesday
    assert client.get(path, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


def test_unknown_and_revoked_tokens_are_404(client, clinic):
    okafor = clinic[0]
    assert client.get(feed_path("no-such-token")).status_code == 404
    token = feeds.create_feed(okafor.id)
    assert client.get(feed_path(token)).status_code == 200
    assert feeds.revoke_feed(okafor.id) is True
    assert client.get(feed_path(token)).status_code == 404
    assert feeds.revoke_feed(okafor.id) is False


def test_renewing_ends_the_old_url_and_keeps_other_feeds(client, clinic):
    okafor, reyes, _in_person, _video = clinic
    old = feeds.create_feed(okafor.id)
    other = feeds.create_feed(reyes.id)
    clinic_feed = feeds.create_feed(None)
    new = feeds.create_feed(okafor.id)
    assert client.get(feed_path(old)).status_code == 404
    assert client.get(feed_path(new)).status_code == 200
    assert client.get(feed_path(other)).status_code == 200
    assert client.get(feed_path(clinic_feed)).status_code == 200


def test_only_a_hash_of_the_token_is_stored(clinic):
    from microsite.models import FeedToken

    token = feeds.create_feed(clinic[0].id)
    stored = db.session.scalars(db.select(FeedToken.token_hash)).all()
    assert stored == [feeds.hash_token(token)]
    assert token not in stored[0]
    assert len(token) >= 43  # 32 random bytes


# --- commands -----------------------------------------------------------------------------------


@pytest.fixture
def public_site(app_config):
    app_config.update(SITE_URL="https://book.bluewater.example/")


def run(app, *args):
    return CliRunner().invoke(app.cli, list(args), catch_exceptions=False)


def test_feeds_create_prints_both_urls_from_site_url(public_site, app, client, clinic):
    result = run(app, "feeds", "create", "d.reyes@CLINIC.test")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    https = next(line for line in lines if line.startswith("https://"))
    webcal = next(line for line in lines if line.startswith("webcal://"))
    assert https.startswith("https://book.bluewater.example/feeds/")
    assert webcal == "webcal://" + https.removeprefix("https://")
    assert client.get(https.removeprefix("https://book.bluewater.example")).status_code == 200


def test_feeds_create_clinic_and_revoke(public_site, app, client, clinic):
    created = run(app, "feeds", "create", "--clinic")
    assert created.exit_code == 0, created.output
    https = next(w for w in created.output.split() if w.startswith("https://"))
    path = https.removeprefix("https://book.bluewater.example")
    assert client.get(path).status_code == 200
    revoked = run(app, "feeds", "revoke", "--clinic")
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    assert client.get(path).status_code == 404


def test_feeds_commands_refuse_unclear_owners(app, clinic):
    assert run(app, "feeds", "create").exit_code == 2
    assert run(app, "feeds", "create", "a.okafor@clinic.test", "--clinic").exit_code == 2
    unknown = run(app, "feeds", "revoke", "nobody@clinic.test")
    assert unknown.exit_code == 1
    assert "no single clinician" in unknown.output


def test_export_ics_writes_the_days_asked_for(app, clinic, make_booking, tmp_path):
    okafor, reyes, in_person, _video = clinic
    before = make_booking(okafor, in_person, datetime(2026, 12, 1, 4, 30, tzinfo=UTC))  # 30 Nov
    inside = make_booking(okafor, in_person, datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    last_day = make_booking(okafor, in_person, datetime(2026, 12, 3, 4, 0, tzinfo=UTC))  # 2 Dec
    after = make_booking(okafor, in_person, datetime(2026, 12, 3, 5, 0, tzinfo=UTC))  # 3 Dec
    other = make_booking(reyes, in_person, datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    out = tmp_path / "export.ics"

    result = run(
        app, "bookings", "export-ics", "--from", "2026-12-01", "--to", "2026-12-02", str(out)
    )
    assert result.exit_code == 0, result.output
    assert set(events_of(out.read_bytes())) == {inside.uid, last_day.uid, other.uid}
    assert before.uid not in events_of(out.read_bytes())
    assert after.uid not in events_of(out.read_bytes())

    only = tmp_path / "okafor.ics"
    result = run(
        app, "bookings", "export-ics", "--from", "2026-12-01", "--to", "2026-12-02",
        "--clinician", "a.okafor@clinic.test", str(only),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert set(events_of(only.read_bytes())) == {inside.uid, last_day.uid}
    to_stdout = run(
        app, "bookings", "export-ics", "--from", "2026-12-01", "--to", "2026-12-01", "-"
    )
    assert to_stdout.exit_code == 0
    assert set(events_of(to_stdout.stdout_bytes)) == {inside.uid}
    backwards = run(
        app, "bookings", "export-ics", "--from", "2026-12-02", "--to", "2026-12-01", str(out)
    )
    assert backwards.exit_code == 2


# --- golden file ---------------------------------------------------------------------------------


@pytest.fixture
def golden_settings(app_config):
    """Pinned here, so a new default elsewhere does not silently change the golden file."""
    app_config.update(
        SITE_URL="https://book.bluewater.example",
        CLINIC_SHORT_NAME="Bluewater",
        CLINIC_PHONE="+1 207 555 0142",
        CLINIC_STREET="100 Harbor Street, Suite 200",
        CLINIC_CITY="Portland",
        CLINIC_REGION="ME",
        CLINIC_POSTCODE="04101",
        ICS_PRODID="-//Bluewater Psychiatry//Booking microsite//EN",
    )


def test_the_clinic_feed_matches_its_golden_file(golden_settings, client, clinic, make_booking):
    """The whole feed, byte for byte. After a deliberate change, regenerate it with
    MICROSITE_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_feeds.py -k golden
    and review the diff of tests/data/feeds/clinic_feed.ics before committing it."""
    okafor, reyes, in_person, video = clinic
    make_booking(okafor, in_person, NOW + timedelta(days=1), uid="golden-1@bluewater.example",
                 reference="GLD2A3")  # fmt: skip
    make_booking(reyes, video, NOW + timedelta(days=2), uid="golden-2@bluewater.example",
                 reference="GLD4B5")  # fmt: skip
    make_booking(okafor, in_person, NOW + timedelta(days=3), uid="golden-3@bluewater.example",
                 reference="GLD6C7", status="cancelled", sequence=2,
                 cancelled_at=NOW)  # fmt: skip
    body = client.get(feed_path(feeds.create_feed(None))).get_data()
    if REGENERATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(body)
        pytest.skip("golden file regenerated: review its diff")
    assert body == GOLDEN.read_bytes()


def test_the_same_etag_always_means_the_same_bytes_within_a_day(
    client, clinic, make_booking, frozen_clock
):
    okafor, _reyes, in_person, _video = clinic
    make_booking(
        okafor, in_person, NOW + timedelta(days=45), status="cancelled", sequence=1,
        cancelled_at=NOW,
    )  # fmt: skip
    path = feed_path(feeds.create_feed(okafor.id))
    frozen_clock.set(datetime(2026, 12, 30, 1, 0, tzinfo=UTC))  # 30 days minus 12 hours later
    morning = client.get(path)
    frozen_clock.set(datetime(2026, 12, 30, 20, 0, tzinfo=UTC))  # past 30 days, same UTC day
    evening = client.get(path)
    assert evening.headers["ETag"] == morning.headers["ETag"]
    assert evening.get_data() == morning.get_data()  # the cancelled entry leaves tomorrow
    frozen_clock.set(datetime(2026, 12, 31, 0, 0, tzinfo=UTC))
    assert client.get(path, headers={"If-None-Match": morning.headers["ETag"]}).status_code == 200
