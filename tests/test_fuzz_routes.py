"""Hypothesis sends arbitrary and extreme values to every parameter of every public route:
never a 5xx, and never a stored booking for a refused request. Runs on SQLite and PostgreSQL.

`ROUTES` names each route's parameters; a route added to the app without an entry here fails
`test_every_public_route_is_fuzzed`, so the fuzz cannot silently fall behind the site.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

import pytest
from booking_helpers import hidden_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from microsite.extensions import db
from microsite.models import Booking, Clinician, ConsultationType, WorkingHours

# Each public route: (its path with {segment} for a path parameter, its query parameters).
ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "static": ("/static/{segment}", ()),
    "pages.home": ("/", ()),
    "pages.ketamine_therapy": ("/ketamine-therapy", ()),
    "pages.how_it_works": ("/how-it-works", ()),
    "pages.safety": ("/safety", ()),
    "pages.who_it_may_help": ("/who-it-may-help", ()),
    "pages.what_to_expect": ("/what-to-expect", ()),
    "pages.faq": ("/faq", ()),
    "pages.about": ("/about", ()),
    "pages.privacy": ("/privacy", ()),
    "pages.sitemap": ("/sitemap.xml", ()),
    "pages.robots": ("/robots.txt", ()),
    "pages.favicon": ("/favicon.ico", ()),
    "booking.start": ("/book/", ("type", "clinician", "week", "day")),
    "booking.first_available": ("/book/first-available", ("type", "clinician")),
    "booking.details": ("/book/details", ("type", "slot")),
    "booking.confirmed": ("/book/confirmed", ()),
    "booking.confirmed_ics": ("/book/confirmed/consultation.ics", ()),
    "api.slots": ("/api/slots", ("type", "from", "days", "clinician")),
    "health.healthz": ("/healthz", ()),
    "health.readyz": ("/readyz", ()),
    # Behind a secret link: fuzzed with a real one ({manage}, {feed}), so every parameter
    # reaches the page rather than stopping at "no such link".
    "manage.show": ("/manage/{manage}", ("done",)),
    "manage.download": ("/manage/{manage}/consultation.ics", ()),
    "manage.reschedule": ("/manage/{manage}/reschedule", ("clinician", "week", "day")),
    "manage.confirm_reschedule": ("/manage/{manage}/reschedule/confirm", ("slot",)),
    "manage.cancel": ("/manage/{manage}/cancel", ()),  # POST only: a GET must be a calm 405
    "feeds.feed": ("/feeds/{feed}.ics", ()),
}
# The staff console is not public: tests/test_staff_access.py walks every /staff/ route.
NOT_PUBLIC_PREFIX = "staff."
FORM_FIELDS = (
    "full_name",
    "email",
    "phone",
    "birth_date-month",
    "birth_date-day",
    "birth_date-year",
    "note",
    "ack_not_emergency",
    "consent_privacy",
    "consultation_type",
    "slot",
    "idempotency_key",
    "started",
    "website",
)
EXAMPLES_PER_ROUTE = 40  # routes with parameters
EXAMPLES_PER_PLAIN_ROUTE = 5  # routes without: arbitrary query strings (and path segments)
FORM_EXAMPLES = 80

_extreme_ints = st.sampled_from(
    [0, -1, 1, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63), 10**40]
)
# Year 1 to 9999, and the very ends of that range, where date arithmetic overflows.
_datetimes = st.one_of(
    st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)]),  # noqa: DTZ001
    st.datetimes(),
)
_dates = st.one_of(st.sampled_from([date.min, date.max]), st.dates())
VALUES = st.one_of(
    st.text(max_size=40),  # any unicode, control characters and NUL included
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    _extreme_ints.map(str),
    _dates.map(lambda d: d.isoformat()),
    _dates.map(lambda d: f"{d.month:02d}/{d.day:02d}/{d.year:04d}"),
    st.sampled_from(["", " ", "\x00", "%00", "1e9", "NaN", "-0", "١٢", "0x10", "9" * 300]),
    st.text(min_size=200, max_size=2000),
)


def strategies(clinician_id: int, type_id: int) -> dict[str, st.SearchStrategy[str]]:
    """Per parameter: mostly values of its own shape (real, extreme, malformed), so examples
    reach past the first check into the engine; sometimes anything at all."""
    extreme_ids = _extreme_ints.map(str)
    types = st.one_of(st.just(str(type_id)), extreme_ids)
    clinicians = st.one_of(st.just(str(clinician_id)), extreme_ids)
    who = st.one_of(st.just("any"), clinicians, st.integers(-5, 5).map(str))
    # strftime's %Y does not pad years before 1000: pad by hand, as a client might.
    slot_keys = st.builds(lambda w, t: f"{w}-{t.year:04d}{t:%m%dT%H%M}Z", who, _datetimes)
    days = st.one_of(_dates.map(lambda d: d.isoformat()), st.integers(-40, 400).map(str))
    shaped = {
        "type": types,
        "consultation_type": types,
        "clinician": clinicians,
        "slot": slot_keys,
        "week": days,
        "day": days,
        "from": days,
        "days": days,
        # The date of birth's three boxes: numbers around and beyond their ranges.
        "birth_date-month": st.integers(-1, 13).map(str),
        "birth_date-day": st.integers(-1, 32).map(str),
        "birth_date-year": st.one_of(_dates.map(lambda d: str(d.year)), _extreme_ints.map(str)),
    }
    return {name: st.one_of(shape, shape, VALUES) for name, shape in shaped.items()}


FUZZ = settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def clinic(app, frozen_clock):
    clinician = Clinician(name="Dr. Fuzz", email="fuzz@example.test")
    clinician.weekly_hours = [
        WorkingHours(weekday=w, start_time=time(9), end_time=time(17)) for w in range(5)
    ]
    consultation_type = ConsultationType(
        slug="fuzz", name="Consultation", mode="video", duration_minutes=60
    )
    db.session.add_all([clinician, consultation_type])
    db.session.commit()
    return clinician.id, consultation_type.id


@pytest.fixture
def links(clinic, make_booking) -> dict[str, str]:
    """A live manage link (a booking next Tuesday) and a clinic feed link."""
    from microsite.services import feeds, manage_links

    clinician_id, type_id = clinic
    booking = make_booking(
        db.session.get(Clinician, clinician_id),
        db.session.get(ConsultationType, type_id),
        TUESDAY_9AM + timedelta(days=7),
    )
    manage = manage_links.issue_link(booking.id)
    db.session.commit()
    return {"manage": manage, "feed": feeds.create_feed(None)}


def bookings() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Booking))


def assert_no_server_error(response) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data()[:500])


def test_every_public_route_is_fuzzed(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert {e for e in endpoints if not e.startswith(NOT_PUBLIC_PREFIX)} == set(ROUTES)


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_no_query_or_path_value_gives_a_server_error(client, clinic, links, endpoint):
    path, names = ROUTES[endpoint]
    shaped = strategies(*clinic)
    # Every parameter the route reads, plus one it does not ("" stands for left empty).
    params = st.fixed_dictionaries(
        {name: shaped.get(name, VALUES) for name in names}, optional={"extra": VALUES}
    )

    @settings(FUZZ, max_examples=EXAMPLES_PER_ROUTE if names else EXAMPLES_PER_PLAIN_ROUTE)
    @given(params=params, segment=VALUES)
    def check(params: dict[str, str], segment: str) -> None:
        url = path.format(segment=quote(segment, safe=""), **links)
        before = bookings()
        response = client.get(url, query_string=params)
        assert_no_server_error(response)
        assert bookings() == before  # no state change on GET

    check()


def test_no_form_value_gives_a_server_error_or_a_stored_refusal(client, clinic):
    clinician_id, type_id = clinic
    page = client.get(f"/book/details?type={type_id}&slot={clinician_id}-20261201T1400Z")
    assert page.status_code == 200
    genuine = hidden_fields(page.get_data(as_text=True))
    genuine.update(
        full_name="Jane Q. Patient",
        email="jane@example.com",
        phone="(207) 555-0123",
        **{"birth_date-month": "05", "birth_date-day": "06", "birth_date-year": "1984"},
        note="",
        ack_not_emergency="y",
        consent_privacy="y",
    )
    # Each example replaces some fields of a genuine form with arbitrary values, so both the
    # validation of each field and the booking behind a valid form are reached.
    shaped = strategies(clinician_id, type_id)
    changes = st.fixed_dictionaries(
        {}, optional={name: shaped.get(name, VALUES) for name in FORM_FIELDS}
    )

    @settings(FUZZ, max_examples=FORM_EXAMPLES)
    @given(changes=changes)
    def check(changes: dict[str, str]) -> None:
        before = bookings()
        response = client.post("/book/details", data={**genuine, **changes})
        assert_no_server_error(response)
        if response.status_code != 303:
            assert bookings() == before, response.status_code

    check()
