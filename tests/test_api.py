"""GET /api/slots: free slots as JSON, and a clear 400 for every bad parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from booking_helpers import submit

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(name="Dr. Rivera"), make_consultation_type()


def test_slots_are_listed_with_utc_and_local_times(client, clinic):
    clinician, consultation_type = clinic
    response = client.get(f"/api/slots?type={consultation_type.id}&from=2026-12-01&days=1")
    assert response.status_code == 200
    body = response.get_json()
    assert body["timezone"] == "America/New_York"
    first = body["slots"][0]
    assert first["start"] == "2026-12-01T14:00:00Z"
    assert first["end"] == "2026-12-01T15:00:00Z"
    assert first["local_time"] == "9:00 AM EST"
    assert first["local_date"] == "2026-12-01"
    assert first["clinician"] == {"id": clinician.id, "name": "Dr. Rivera"}
    # 09:00 to 16:00 starts on a 30-minute grid for a 60-minute consultation.
    assert len(body["slots"]) == 15
    assert body["slots"][-1]["local_time"] == "4:00 PM EST"


def test_the_key_from_the_api_books_that_slot(client, clinic):
    _, consultation_type = clinic
    body = client.get(f"/api/slots?type={consultation_type.id}&from=2026-12-01&days=1").get_json()
    key = body["slots"][3]["key"]
    assert submit(client, consultation_type.id, key).status_code == 303
    again = client.get(f"/api/slots?type={consultation_type.id}&from=2026-12-01&days=1")
    starts = [slot["start"] for slot in again.get_json()["slots"]]
    assert body["slots"][3]["start"] not in starts


def test_one_clinician_can_be_asked_for(client, clinic, make_clinician):
    _, consultation_type = clinic
    other = make_clinician(name="Dr. Other", hours=[(1, *_hours(13, 14))])
    url = f"/api/slots?type={consultation_type.id}&from=2026-12-01&days=1&clinician={other.id}"
    body = client.get(url).get_json()
    assert [s["local_time"] for s in body["slots"]] == ["1:00 PM EST"]
    assert body["slots"][0]["key"].startswith(f"{other.id}-")


def _hours(start: int, end: int):
    from datetime import time

    return time(start), time(end)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "'type' is required"),
        ("type=abc", "'type' must be a positive whole number"),
        ("type=999", "'type'"),
        ("type={type}&from=2026-13-01", "'from' must be a date"),
        ("type={type}&days=0", "'days' must be between 1 and 31"),
        ("type={type}&days=400", "'days' must be between 1 and 31"),
        ("type={type}&days=-3", "'days' must be a positive whole number"),
        ("type={type}&clinician=999", "'clinician' is not a clinician"),
    ],
)
def test_bad_parameters_get_400_json_with_a_message(client, clinic, query, message):
    _, consultation_type = clinic
    response = client.get("/api/slots?" + query.format(type=consultation_type.id))
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_unknown_api_url_is_json_404(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["status"] == 404
