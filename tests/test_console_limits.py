"""The rate limits on the real routes: staff sign-in, and the patient's manage-link changes.

The shared test config turns limits off; each test here builds an app with them on (as
tests/test_abuse_limits.py does), with limits small enough to reach in a few requests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from staff_support import PASSWORD, create_staff, use_fast_hashing
from tests_support import csrf_token

from microsite import create_app
from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import Booking
from microsite.services import booking as booking_service
from microsite.services import manage_links

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def limited_client(app_config, **limits):
    app_config.update({"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://", **limits})
    return create_app(app_config).test_client()


@pytest.fixture
def booking_token(app, frozen_clock, make_clinician, make_consultation_type):
    clinician, kind = make_clinician(), make_consultation_type()
    booking = booking_service.book_slot(
        consultation_type_id=kind.id,
        key=booking_service.slot_key(TUESDAY_9AM, clinician.id),
        patient=booking_service.PatientDetails(
            name="Pat Example",
            email="pat@example.com",
            phone_e164="+12075550123",
            birth_date=date(1980, 1, 2),
        ),
        idempotency_key=uuid.uuid4().hex,
    )
    with write_transaction():
        token = manage_links.issue_link(booking.id)
    return booking, token


def test_staff_sign_in_attempts_are_limited_and_the_page_stays_readable(app, app_config):
    create_staff()
    client = limited_client(app_config, RATELIMIT_STAFF_LOGIN="2 per minute")

    def attempt():
        page = client.get("/staff/login")
        return client.post(
            "/staff/login",
            data={
                "csrf_token": csrf_token(page.text),
                "email": "desk@clinic.test",
                "password": "not the password",
            },
        )

    first, second, third = attempt(), attempt(), attempt()
    assert first.status_code != 429
    assert second.status_code != 429
    assert third.status_code == 429
    assert "Retry-After" in third.headers
    # Refused before the view: even the right password is not tried now.
    page = client.get("/staff/login")
    assert page.status_code == 200  # reading the page is never limited
    right = client.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(page.text),
            "email": "desk@clinic.test",
            "password": PASSWORD,
        },
    )
    assert right.status_code == 429


def test_manage_link_cancel_posts_are_limited(app, app_config, booking_token):
    booking, token = booking_token
    client = limited_client(app_config, RATELIMIT_MANAGE="1 per minute")
    page = client.get(f"/manage/{token}")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text)}
    # A form replayed without its token still counts, and still changes nothing.
    assert client.post(f"/manage/{token}/cancel", data={}).status_code == 400
    assert client.post(f"/manage/{token}/cancel", data=data).status_code == 429
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "confirmed"
    assert client.get(f"/manage/{token}").status_code == 200


def test_manage_link_reschedule_posts_are_limited(app, app_config, booking_token):
    booking, token = booking_token
    client = limited_client(app_config, RATELIMIT_MANAGE="2 per minute")
    not_offered = "1-20261201T1407Z"  # a time the clinic never offers
    url = f"/manage/{token}/reschedule/confirm"
    page = client.get(f"{url}?slot={not_offered}")
    data = {"csrf_token": csrf_token(page.text), "slot": not_offered}
    codes = [client.post(url, data=data).status_code for _ in range(3)]
    assert codes[:2] == [422, 422]
    assert codes[2] == 429
    # Looking at the confirm page (GET) is not limited.
    assert client.get(f"{url}?slot={not_offered}").status_code == 422
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).starts_at == TUESDAY_9AM
