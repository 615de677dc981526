"""A patient books through the pages without JavaScript; every bad input is refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from booking_helpers import (
    VALID_DETAILS,
    birth_date_boxes,
    input_attributes,
    open_form,
    slot_key_for,
    submit,
)
from icalendar import Calendar
from sqlalchemy import func, select
from tests_support import csrf_token

from microsite.extensions import db
from microsite.models import Booking

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST, the first bookable time
TUESDAY_930AM = TUESDAY_9AM + timedelta(minutes=30)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    """One clinician Mon-Fri 09:00-17:00; a 60-min type on a 30-min grid, 12 h notice."""
    clinician = make_clinician(name="Dr. Rivera")
    consultation_type = make_consultation_type()
    return clinician, consultation_type


def booking_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Booking))


def test_patient_books_without_javascript(client, clinic):
    clinician, consultation_type = clinic
    start = client.get("/book/")
    assert consultation_type.name in start.get_data(as_text=True)

    picker = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    assert "Free times on Tuesday, December 1" in picker
    assert "Monday, November 30" in picker
    assert "No free times" in picker
    assert "Eastern Time (EST)" in picker
    key = slot_key_for(TUESDAY_9AM)
    assert f"slot={key}" in picker

    response = submit(client, consultation_type.id, key)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/book/confirmed")

    page = client.get("/book/confirmed").get_data(as_text=True)
    booking = db.session.scalars(select(Booking)).one()
    assert booking.reference in page
    assert "Tuesday, December 1, 2026 at 9:00 AM EST" in page
    assert clinician.name in page
    assert booking.patient_phone == "+12075550123"
    assert booking.starts_at == TUESDAY_9AM
    assert booking.clinician_id == clinician.id


def test_confirmation_reference_is_short_and_unambiguous(client, clinic):
    _, consultation_type = clinic
    submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    reference = db.session.scalars(select(Booking.reference)).one()
    assert len(reference) == 6
    assert not set(reference) & set("0O1I")


def test_no_patient_data_in_any_url(client, clinic):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    urls = [response.headers["Location"], *_links(page)]
    for url in urls:
        for value in ("Jane", "Patient", "jane.patient", "0123", "1984"):
            assert value not in url, url


def main_content(html: str) -> str:
    """What the patient reads: the page's <main>, without per-response details like nonces."""
    return html.split("<main", 1)[1].split("</main>", 1)[0]


def _links(html: str) -> list[str]:
    import re

    return re.findall(r'(?:href|src|action)="([^"]*)"', html)


def test_calendar_download_is_the_booked_time_and_private(client, clinic):
    _, consultation_type = clinic
    submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    response = client.get("/book/confirmed/consultation.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    event = Calendar.from_ical(response.data).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == TUESDAY_9AM
    assert event.decoded("DTEND") == TUESDAY_9AM + timedelta(hours=1)
    summary = str(event["SUMMARY"])
    assert "Jane" not in summary
    assert "ketamine" not in summary.lower()
    booking = db.session.scalars(select(Booking)).one()
    assert str(event["UID"]) == booking.uid
    assert booking.reference in summary


def test_confirmation_page_needs_the_booking_session(client, clinic):
    assert client.get("/book/confirmed").status_code == 404
    assert client.get("/book/confirmed/consultation.ics").status_code == 404


def test_resent_post_gives_one_booking_and_the_same_confirmation(client, clinic):
    _, consultation_type = clinic
    response, hidden = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    data = {**hidden, **VALID_DETAILS, "csrf_token": csrf_token(response.get_data(as_text=True))}
    first = client.post("/book/details", data=data)
    first_page = client.get("/book/confirmed").get_data(as_text=True)
    second = client.post("/book/details", data=data)
    second_page = client.get("/book/confirmed").get_data(as_text=True)
    assert first.status_code == second.status_code == 303
    assert booking_count() == 1
    assert main_content(first_page) == main_content(second_page)


def test_second_patient_for_a_taken_time_gets_409_with_other_times(app, clinic):
    _, consultation_type = clinic
    key = slot_key_for(TUESDAY_9AM, clinic[0].id)
    first, second = app.test_client(), app.test_client()
    _, hidden_a = open_form(first, consultation_type.id, key)
    page_b, hidden_b = open_form(second, consultation_type.id, key)
    assert first.post("/book/details", data={**hidden_a, **VALID_DETAILS}).status_code == 303
    response = second.post("/book/details", data={**hidden_b, **VALID_DETAILS})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "That time was just taken" in html
    # Nearby free times are offered, and what the patient typed is kept.
    assert "Tuesday, December 1, 2026 at 10:00 AM EST" in html
    assert 'value="jane.patient@example.com"' in html
    assert input_attributes(html, "birth_date-year")["value"] == "1984"
    assert booking_count() == 1


def test_form_for_a_time_that_is_already_taken_says_so(client, clinic, make_booking):
    clinician, consultation_type = clinic
    make_booking(clinician, consultation_type, TUESDAY_9AM)
    response, _ = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        pytest.param(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), "already passed", id="past"),
        pytest.param(datetime(2026, 11, 30, 15, 0, tzinfo=UTC), "too soon", id="min-notice"),
        pytest.param(datetime(2027, 3, 1, 14, 0, tzinfo=UTC), "that far ahead", id="horizon"),
        pytest.param(datetime(2026, 12, 1, 14, 10, tzinfo=UTC), "not one we offer", id="off-grid"),
        pytest.param(datetime(2026, 12, 5, 14, 0, tzinfo=UTC), "not one we offer", id="saturday"),
    ],
)
def test_times_that_were_never_bookable_are_refused_with_422(client, clinic, start, message):
    _, consultation_type = clinic
    # The form was opened for a good time; the time sent back is another one.
    response = submit(
        client, consultation_type.id, slot_key_for(TUESDAY_9AM), slot=slot_key_for(start)
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert booking_count() == 0


@pytest.mark.parametrize("key", ["garbage", "", "any-2026", "7-20261201T1400", "99-20261201T1400Z"])
def test_slot_keys_never_offered_are_refused_with_422(client, clinic, key):
    _, consultation_type = clinic
    response, hidden = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    data = {**hidden, **VALID_DETAILS, "slot": key}
    response = client.post("/book/details", data=data)
    assert response.status_code == 422
    assert booking_count() == 0


@pytest.mark.parametrize(
    ("field", "sent", "message"),
    [
        ("full_name", {"full_name": ""}, "Enter your full name."),
        ("full_name", {"full_name": "x" * 121}, "120 characters or fewer"),
        ("email", {"email": "not-an-email"}, "Enter an email address in the right format"),
        ("phone", {"phone": "12345"}, "Enter a valid phone number"),
        ("phone", {"phone": ""}, "Enter your mobile phone number."),
        ("birth_date", birth_date_boxes("", "", ""), "Enter your date of birth."),
        ("birth_date", birth_date_boxes("01", "01", "2030"), "Date of birth must be in the past."),
        ("birth_date", birth_date_boxes("01", "01", "1850"), "Check the year"),
        ("note", {"note": "x" * 501}, "500 characters or fewer"),
        ("consent_privacy", {"consent_privacy": None}, "privacy notice"),
        ("ack_not_emergency", {"ack_not_emergency": None}, "not for emergencies"),
    ],
)
def test_each_invalid_field_gets_its_own_message_and_nothing_is_stored(
    client, clinic, field, sent, message
):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), **sent)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert f'id="{field}-error"' in html
    assert booking_count() == 0


def test_phone_numbers_are_stored_in_e164(client, clinic):
    _, consultation_type = clinic
    submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), phone="+44 7911 123456")
    assert db.session.scalars(select(Booking.patient_phone)).one() == "+447911123456"


def test_a_body_over_64_kb_is_refused_with_413(client, clinic):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), note="x" * 70_000)
    assert response.status_code == 413
    assert booking_count() == 0


def test_post_without_csrf_token_is_refused(client, clinic):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    hidden.pop("csrf_token")
    response = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert response.status_code == 400
    assert booking_count() == 0


def test_honeypot_filled_books_nothing(client, clinic):
    _, consultation_type = clinic
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM), website="spam")
    assert response.status_code == 422
    assert booking_count() == 0


def test_form_sent_back_faster_than_a_person_can_fill_it_books_nothing(
    app_config, database_url, frozen_clock, make_clinician, make_consultation_type
):
    from microsite import create_app

    app_config["BOOKING_MIN_FILL_SECONDS"] = 3
    app = create_app(app_config)
    with app.app_context():
        make_clinician()
        consultation_type = make_consultation_type()
        client = app.test_client()
        key = slot_key_for(TUESDAY_9AM)
        too_fast = submit(client, consultation_type.id, key)
        assert too_fast.status_code == 422
        assert booking_count() == 0
        response, hidden = open_form(client, consultation_type.id, key)
        frozen_clock.advance(timedelta(seconds=10))
        slow = client.post("/book/details", data={**hidden, **VALID_DETAILS})
        assert slow.status_code == 303
        assert booking_count() == 1


def test_any_clinician_books_the_free_one(
    client, frozen_clock, make_clinician, make_booking, make_consultation_type
):
    busy = make_clinician(name="Dr. Busy")
    free = make_clinician(name="Dr. Free")
    consultation_type = make_consultation_type()
    make_booking(busy, consultation_type, TUESDAY_9AM)
    response = submit(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    assert response.status_code == 303
    newest = db.session.scalars(select(Booking).order_by(Booking.id.desc())).first()
    assert newest.clinician_id == free.id


def test_first_available_jumps_to_the_first_free_day(client, clinic):
    _, consultation_type = clinic
    response = client.get(f"/book/first-available?type={consultation_type.id}")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Free times on Tuesday, December 1" in page


def test_days_without_free_times_are_shown_as_such(client, clinic, make_booking):
    clinician, consultation_type = clinic
    # Fill Wednesday completely.
    wednesday_9am = TUESDAY_9AM + timedelta(days=1)
    for hour in range(8):
        make_booking(clinician, consultation_type, wednesday_9am + timedelta(hours=hour))
    page = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    wednesday = page.split("Wednesday, December 2", 1)[1].split("</li>", 1)[0]
    assert "No free times" in wednesday


def test_week_navigation_moves_a_week_and_stops_at_this_week(client, clinic):
    _, consultation_type = clinic
    page = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    assert "Previous week" not in page
    assert "week=2026-12-07" in page
    later = client.get(f"/book/?type={consultation_type.id}&week=2026-12-07").get_data(as_text=True)
    assert "Free times on Monday, December 7" in later
    assert "Previous week" in later


def test_unknown_consultation_type_is_404(client, clinic):
    assert client.get("/book/?type=999").status_code == 404
    assert client.get("/book/details?type=999&slot=any-20261201T1400Z").status_code == 404


def test_booking_pages_are_not_cached(client, clinic):
    _, consultation_type = clinic
    response = client.get(f"/book/?type={consultation_type.id}")
    assert response.headers["Cache-Control"] == "no-store"


def test_hidden_fields_include_an_idempotency_key(client, clinic):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    assert len(hidden["idempotency_key"]) >= 16
    _, again = open_form(client, consultation_type.id, slot_key_for(TUESDAY_9AM))
    assert again["idempotency_key"] != hidden["idempotency_key"]


def test_closed_day_has_no_times(client, clinic, app):
    from microsite.models import Closure

    _, consultation_type = clinic
    db.session.add(
        Closure(
            starts_at=datetime(2026, 12, 1, 5, 0, tzinfo=UTC),
            ends_at=datetime(2026, 12, 2, 5, 0, tzinfo=UTC),
            reason="Staff training",
        )
    )
    db.session.commit()
    page = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    assert "Free times on Wednesday, December 2" in page
    tuesday = page.split("Tuesday, December 1", 1)[1].split("</li>", 1)[0]
    assert "No free times" in tuesday


def test_picker_opens_on_the_first_free_week_when_this_week_is_over(client, clinic, frozen_clock):
    _, consultation_type = clinic
    frozen_clock.set(datetime(2026, 12, 6, 1, 0, tzinfo=UTC))  # Saturday Dec 5, 8 PM local
    page = client.get(f"/book/?type={consultation_type.id}").get_data(as_text=True)
    assert "Week of December 7" in page
    assert "Free times on Monday, December 7" in page
