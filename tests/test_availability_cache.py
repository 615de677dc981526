"""The slot list may be reused for a moment, but never once a booking changed in this process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from booking_helpers import submit

from microsite import create_app

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
URL = "/api/slots?type={type}&from=2026-12-01&days=1"


@pytest.fixture
def cached_app(app_config, frozen_clock):
    app_config["SLOT_CACHE_SECONDS"] = 2
    app = create_app(app_config)
    with app.app_context():
        yield app


@pytest.fixture
def clinic(cached_app, make_clinician, make_consultation_type):
    return make_clinician(), make_consultation_type()


def starts(client, consultation_type) -> list[str]:
    body = client.get(URL.format(type=consultation_type.id)).get_json()
    return [slot["start"] for slot in body["slots"]]


def test_a_booking_made_here_shows_at_once(cached_app, clinic):
    _, consultation_type = clinic
    client = cached_app.test_client()
    assert "2026-12-01T14:00:00Z" in starts(client, consultation_type)
    assert submit(client, consultation_type.id, "any-20261201T1400Z").status_code == 303
    assert "2026-12-01T14:00:00Z" not in starts(client, consultation_type)


def test_a_booking_from_elsewhere_shows_once_the_cache_expires(
    cached_app, clinic, make_booking, frozen_clock
):
    clinician, consultation_type = clinic
    client = cached_app.test_client()
    assert "2026-12-01T14:00:00Z" in starts(client, consultation_type)
    make_booking(clinician, consultation_type, TUESDAY_9AM)  # as another server would
    assert "2026-12-01T14:00:00Z" in starts(client, consultation_type)  # reused answer
    frozen_clock.advance(timedelta(seconds=3))
    assert "2026-12-01T14:00:00Z" not in starts(client, consultation_type)


def test_a_stale_list_never_double_books(cached_app, clinic, make_booking):
    clinician, consultation_type = clinic
    client = cached_app.test_client()
    starts(client, consultation_type)
    make_booking(clinician, consultation_type, TUESDAY_9AM)
    assert "2026-12-01T14:00:00Z" in starts(client, consultation_type)  # stale
    # Choosing that time from the stale list re-checks it (no check of that day was kept).
    response = client.get(f"/book/details?type={consultation_type.id}&slot=any-20261201T1400Z")
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)


DETAILS = "/book/details?type={type}&slot=any-20261201T1400Z"


def test_a_chosen_time_taken_here_is_refused_at_once(cached_app, clinic):
    _, consultation_type = clinic
    client, other = cached_app.test_client(), cached_app.test_client()
    assert client.get(DETAILS.format(type=consultation_type.id)).status_code == 200
    assert submit(other, consultation_type.id, "any-20261201T1400Z").status_code == 303
    response = client.get(DETAILS.format(type=consultation_type.id))
    assert response.status_code == 409
    assert "just taken" in response.get_data(as_text=True)


def test_a_chosen_time_taken_elsewhere_is_refused_by_the_booking_then_by_the_form(
    cached_app, clinic, make_booking, frozen_clock
):
    clinician, consultation_type = clinic
    client = cached_app.test_client()
    assert client.get(DETAILS.format(type=consultation_type.id)).status_code == 200
    make_booking(clinician, consultation_type, TUESDAY_9AM)  # as another server would
    # For SLOT_CACHE_SECONDS the form may still open, like the list it came from...
    assert client.get(DETAILS.format(type=consultation_type.id)).status_code == 200
    # ...but the booking is judged under the write lock: nothing is double-booked.
    refused = submit(client, consultation_type.id, "any-20261201T1400Z")
    assert refused.status_code == 409
    assert "just taken" in refused.get_data(as_text=True)
    frozen_clock.advance(timedelta(seconds=3))
    assert client.get(DETAILS.format(type=consultation_type.id)).status_code == 409
