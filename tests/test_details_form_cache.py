"""The details form is rendered once per type and filled in per response: nothing leaks.

The suite's default config turns the schedule cache off, which would render every form afresh;
these tests turn it on, so the second browser is served the stored page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from booking_helpers import (
    VALID_DETAILS,
    birth_date_boxes,
    input_attributes,
    open_form,
    slot_key_for,
)
from sqlalchemy import func, select

from microsite.extensions import db
from microsite.models import Booking

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 09:00 EST, the first bookable time
TUESDAY_10AM = TUESDAY_9AM + timedelta(hours=1)  # after the 60-minute 9:00 one
PER_VISITOR = ("csrf_token", "idempotency_key", "started")


@pytest.fixture
def clinic(app_config, frozen_clock, make_clinician, make_consultation_type):
    app_config.update(SCHEDULE_CACHE_SECONDS=600)
    return make_clinician(name="Dr. Rivera"), make_consultation_type()


def booking_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Booking))


def test_each_browser_gets_its_own_tokens_and_its_own_time(app, clinic):
    clinician, consultation_type = clinic
    first, second = app.test_client(), app.test_client()
    key_a = slot_key_for(TUESDAY_9AM, clinician.id)
    key_b = slot_key_for(TUESDAY_10AM, clinician.id)
    page_a, hidden_a = open_form(first, consultation_type.id, key_a)
    page_b, hidden_b = open_form(second, consultation_type.id, key_b)

    html_a, html_b = page_a.get_data(as_text=True), page_b.get_data(as_text=True)
    assert "Tuesday, December 1, 2026 at 9:00 AM EST" in html_a
    assert "Tuesday, December 1, 2026 at 10:00 AM EST" in html_b
    assert "9:00 AM" not in html_b
    assert (hidden_a["slot"], hidden_b["slot"]) == (key_a, key_b)
    assert "day=2026-12-01" in html_b
    for name in PER_VISITOR:
        assert hidden_a[name]
        assert hidden_b[name]
        assert hidden_a[name] != hidden_b[name], name
    # Each browser books with its own form.
    assert first.post("/book/details", data={**hidden_a, **VALID_DETAILS}).status_code == 303
    assert second.post("/book/details", data={**hidden_b, **VALID_DETAILS}).status_code == 303
    assert booking_count() == 2


def test_a_date_of_birth_typed_in_one_browser_never_shows_in_another(app, clinic):
    clinician, consultation_type = clinic
    first, second = app.test_client(), app.test_client()
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    _, hidden = open_form(first, consultation_type.id, key)
    typed = birth_date_boxes("07", "19", "1963")
    refused = first.post("/book/details", data={**hidden, **VALID_DETAILS, **typed, "phone": ""})
    assert refused.status_code == 422
    for name, value in typed.items():  # kept for the one who typed it
        assert input_attributes(refused.get_data(as_text=True), name)["value"] == value

    page, _ = open_form(second, consultation_type.id, key)
    html = page.get_data(as_text=True)
    for name in typed:
        assert input_attributes(html, name)["value"] == ""
    assert "1963" not in html


def test_the_same_browser_gets_a_new_form_identity_each_time(client, clinic):
    clinician, consultation_type = clinic
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    _, once = open_form(client, consultation_type.id, key)
    _, again = open_form(client, consultation_type.id, key)
    assert once["idempotency_key"] != again["idempotency_key"]
    assert once["started"] != again["started"]


def test_a_form_from_the_stored_page_works_only_in_its_own_browser(app, clinic):
    clinician, consultation_type = clinic
    first, second = app.test_client(), app.test_client()
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    _, hidden_a = open_form(first, consultation_type.id, key)
    open_form(second, consultation_type.id, key)  # the second browser has a session of its own
    response = second.post("/book/details", data={**hidden_a, **VALID_DETAILS})
    assert response.status_code == 400
    assert booking_count() == 0


def test_the_stored_form_still_refuses_a_time_taken_since(app, clinic, make_booking):
    clinician, consultation_type = clinic
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    first, _ = open_form(app.test_client(), consultation_type.id, key)
    assert first.status_code == 200
    make_booking(clinician, consultation_type, TUESDAY_9AM)

    again, _ = open_form(app.test_client(), consultation_type.id, key)
    html = again.get_data(as_text=True)
    assert again.status_code == 409
    assert "That time was just taken" in html
    assert "Tuesday, December 1, 2026 at 10:00 AM EST" in html  # a nearby free time


def test_the_form_sends_back_the_type_as_it_was_asked_for(client, clinic):
    clinician, consultation_type = clinic
    key = slot_key_for(TUESDAY_9AM, clinician.id)
    _, plain = open_form(client, consultation_type.id, key)
    _, padded = open_form(client, f"0{consultation_type.id}", key)
    assert plain["consultation_type"] == str(consultation_type.id)
    assert padded["consultation_type"] == f"0{consultation_type.id}"
