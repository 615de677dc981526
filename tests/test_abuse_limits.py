"""No one can flood the calendar: rate limits, a form stamp bound to one browser and one
booking, a per-patient limit on upcoming consultations, and a used form that cannot be reused.

The shared test config turns limits off (tests book one patient many times); each test here
turns on what it tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from booking_helpers import VALID_DETAILS, hidden_fields, open_form, submit
from flask import Blueprint
from sqlalchemy import func, select

from microsite import create_app
from microsite.extensions import db
from microsite.models import Booking
from microsite.ratelimits import RATELIMIT_MANAGE, limit_manage, limit_staff_login
from microsite.services import booking as booking_service
from microsite.services.errors import TooManyUpcomingError

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
CLINIC_PHONE = "+1 207 555 0142"


def key(hour_offset: int = 0, clinician_id: int | None = None) -> str:
    return booking_service.slot_key(TUESDAY_9AM + timedelta(hours=hour_offset), clinician_id)


def stored() -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(Booking).where(Booking.status != "cancelled")
    )


def limited_app(app_config, **overrides):
    app_config.update({"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"})
    app_config.update(overrides)
    return create_app(app_config)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    return make_clinician(), make_consultation_type()


# --- rate limits ------------------------------------------------------------------------------


def test_too_many_bookings_from_one_address_get_a_friendly_429_and_nothing_stored(
    app_config, clinic, caplog
):
    _, consultation_type = clinic
    app = limited_app(app_config, RATELIMIT_BOOKING="3 per minute")
    client = app.test_client()
    codes = [submit(client, consultation_type.id, key(n)).status_code for n in range(3)]
    assert codes == [303, 303, 303]
    response = submit(client, consultation_type.id, key(4))
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Nothing was booked" in page
    assert CLINIC_PHONE in page
    assert "Traceback" not in page
    assert 1 <= int(response.headers["Retry-After"]) <= 61  # the window, rounded up
    assert stored() == 3
    hits = [r for r in caplog.records if getattr(r, "event", None) == "ratelimit.hit"]
    assert [h.endpoint for h in hits] == ["booking.details"]
    # Reading is never limited: the patient can still look at times and forms.
    assert client.get(f"/book/details?type={consultation_type.id}&slot={key(5)}").status_code == 200


def test_a_spoofed_x_forwarded_for_does_not_escape_the_limit(app_config, clinic):
    _, consultation_type = clinic
    app = limited_app(app_config, RATELIMIT_BOOKING="2 per minute")
    client = app.test_client()
    codes = []
    for n in range(5):
        _, hidden = open_form(client, consultation_type.id, key(n))
        response = client.post(
            "/book/details",
            data={**hidden, **VALID_DETAILS},
            headers={"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"203.0.113.{n}"},
        )
        codes.append(response.status_code)
    assert codes == [303, 303, 429, 429, 429]
    assert stored() == 2


def test_limits_can_be_turned_off_for_load_tests(app_config, clinic):
    _, consultation_type = clinic
    app = limited_app(app_config, RATELIMIT_ENABLED=False, RATELIMIT_BOOKING="1 per minute")
    client = app.test_client()
    codes = [submit(client, consultation_type.id, key(n)).status_code for n in range(3)]
    assert codes == [303, 303, 303]


def test_manage_and_staff_sign_in_limits_apply_to_the_routes_they_decorate(app_config):
    app = limited_app(app_config, RATELIMIT_MANAGE="2 per minute", RATELIMIT_STAFF_LOGIN="1/minute")
    probe = Blueprint("probe", __name__)

    @probe.post("/probe/manage")
    @limit_manage
    def manage():
        return "changed"

    @probe.post("/probe/sign-in")
    @limit_staff_login
    def sign_in():
        return "signed in"

    app.register_blueprint(probe)
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert RATELIMIT_MANAGE == "RATELIMIT_MANAGE"
    assert [client.post("/probe/manage").status_code for _ in range(3)] == [200, 200, 429]
    assert [client.post("/probe/sign-in").status_code for _ in range(2)] == [200, 429]


# --- the form's "shown at" stamp --------------------------------------------------------------


def test_a_stamp_copied_to_another_browser_is_refused(app_config, clinic):
    _, consultation_type = clinic
    app_config["WTF_CSRF_ENABLED"] = False  # CSRF is session-bound too; test the stamp alone
    app = create_app(app_config)
    page = app.test_client().get(f"/book/details?type={consultation_type.id}&slot={key()}")
    hidden = hidden_fields(page.get_data(as_text=True))
    assert hidden["started"]
    response = app.test_client().post("/book/details", data={**hidden, **VALID_DETAILS})
    assert response.status_code == 422
    assert "Please check your details" in response.get_data(as_text=True)
    assert stored() == 0


def test_a_stamp_expires(client, clinic, frozen_clock):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, key())
    frozen_clock.advance(timedelta(hours=2, seconds=1))
    response = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert response.status_code == 422
    assert stored() == 0


def test_a_form_shown_again_after_an_error_keeps_working(client, clinic):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, key())
    refused = client.post("/book/details", data={**hidden, **VALID_DETAILS, "phone": "12"})
    assert refused.status_code == 422
    response = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert response.status_code == 303
    assert stored() == 1


def test_one_stamp_makes_one_booking(client, clinic):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, key())
    assert client.post("/book/details", data={**hidden, **VALID_DETAILS}).status_code == 303
    # A script keeps the stamp and sends new idempotency keys for other times: refused.
    for n in range(1, 4):
        again = {**hidden, **VALID_DETAILS, "slot": key(n), "idempotency_key": uuid.uuid4().hex}
        assert client.post("/book/details", data=again).status_code == 422
    assert stored() == 1


# --- the same form with other details ---------------------------------------------------------


@pytest.mark.parametrize(
    "change", [{"slot": "later"}, {"full_name": "Someone Else"}, {"note": "Another note"}]
)
def test_the_same_form_with_another_time_or_details_is_a_clear_422(client, clinic, change):
    _, consultation_type = clinic
    _, hidden = open_form(client, consultation_type.id, key())
    assert client.post("/book/details", data={**hidden, **VALID_DETAILS}).status_code == 303
    if change.get("slot") == "later":
        change = {"slot": key(3)}
    response = client.post("/book/details", data={**hidden, **VALID_DETAILS, **change})
    assert response.status_code == 422
    assert "This form was already used" in response.get_data(as_text=True)
    assert stored() == 1
    same = client.post("/book/details", data={**hidden, **VALID_DETAILS})
    assert same.status_code == 303  # the untouched resend still shows its confirmation


# --- at most MAX_UPCOMING_PER_PATIENT upcoming consultations ----------------------------------


@pytest.fixture
def one_each(app_config):
    app_config["MAX_UPCOMING_PER_PATIENT"] = 1
    app = create_app(app_config)
    with app.app_context():
        yield app


@pytest.mark.parametrize(
    "second",
    [
        {"phone": "(207) 555-0199"},  # same email, another phone
        {"email": "JANE.PATIENT@example.com", "phone": "(207) 555-0199"},  # email in capitals
        {"email": "someone.else@example.com"},  # same phone, another email
    ],
)
def test_a_second_upcoming_booking_points_to_the_manage_link_and_the_phone(
    one_each, clinic, second
):
    _, consultation_type = clinic
    client = one_each.test_client()
    assert submit(client, consultation_type.id, key()).status_code == 303
    response = submit(client, consultation_type.id, key(3), **second)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "You already have an upcoming consultation" in page
    assert "link in your confirmation email" in page
    assert CLINIC_PHONE in page
    assert stored() == 1


def test_another_patient_and_past_or_cancelled_bookings_do_not_count(
    one_each, clinic, make_booking, frozen_clock
):
    clinician, consultation_type = clinic
    make_booking(
        clinician, consultation_type, TUESDAY_9AM - timedelta(days=7),
        patient_email="jane.patient@example.com",
    )  # fmt: skip
    make_booking(
        clinician, consultation_type, TUESDAY_9AM + timedelta(hours=5),
        patient_email="jane.patient@example.com", status="cancelled",
    )  # fmt: skip
    client = one_each.test_client()
    assert submit(client, consultation_type.id, key()).status_code == 303
    other = {"email": "other@example.com", "phone": "(207) 555-0177"}
    assert submit(client, consultation_type.id, key(2), **other).status_code == 303


def test_staff_booking_for_a_caller_may_override_the_limit(one_each, clinic):
    _, consultation_type = clinic
    caller = booking_service.PatientDetails(
        name="Caller", email="caller@example.com", phone_e164="+12075550111",
        birth_date=date(1970, 5, 5),
    )  # fmt: skip

    def book(n: int, **options):
        return booking_service.book_slot(
            consultation_type_id=consultation_type.id,
            key=key(2 * n),
            patient=caller,
            idempotency_key=uuid.uuid4().hex,
            **options,
        )

    book(0)
    with pytest.raises(TooManyUpcomingError):
        book(1)
    assert book(1, override_upcoming_limit=True, actor="staff:1").id
    assert stored() == 2


def test_the_bot_guard_is_on_unless_a_load_test_turns_it_off(app_config, clinic):
    _, consultation_type = clinic
    for guard, expected in ((True, 422), (False, 303)):
        app_config["BOOKING_BOT_GUARD"] = guard
        client = create_app(app_config).test_client()
        _, hidden = open_form(client, consultation_type.id, key())
        replayed = {**hidden, **VALID_DETAILS, "idempotency_key": uuid.uuid4().hex}
        assert client.post("/book/details", data=replayed).status_code == expected
