"""Access to /staff/: every route behind sign-in and the second factor, roles, 404s."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from staff_support import PASSWORD, create_staff, post_form, quick_sign_in, use_fast_hashing
from tests_support import MONDAY_8AM_EST, csrf_token

from microsite import create_app
from microsite.extensions import db
from microsite.models import AuditEvent
from microsite.models.staff import ROLE_ADMIN, STAFF_ROLES

SAMPLE_VALUES = {"int": "1", "default": "2026-11-30", "string": "2026-11-30"}
OPEN = {"staff.auth.login"}


def staff_routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, example URL) for every route the app has under /staff/."""
    # Only the URL map is read: any config will do.
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff/"):
            continue
        url = re.sub(
            r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
            lambda m: SAMPLE_VALUES[m.group(1) or "default"],
            rule.rule,
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, url))
    return routes


ROUTES = staff_routes()
# Whole areas are admin-only: a route added to one of them is in this set by its name alone,
# and the marking test below fails until its view says @roles(ROLE_ADMIN).
ADMIN_AREAS = ("staff.schedule.", "staff.accounts.")
ADMIN_ONLY = {"staff.audit.audit_list", "staff.audit.audit_export"} | {
    endpoint for endpoint, _method, _url in ROUTES if endpoint.startswith(ADMIN_AREAS)
}


def test_the_route_list_is_real():
    endpoints = {endpoint for endpoint, _method, _url in ROUTES}
    assert {"staff.bookings.detail", "staff.calendar.week", "staff.auth.login"} <= endpoints
    assert len(ROUTES) >= 15
    # The accounts pages, every action by POST, are among them.
    account_routes = {(e, m) for e, m, _url in ROUTES if e.startswith("staff.accounts.")}
    assert {
        ("staff.accounts.list_accounts", "GET"),
        ("staff.accounts.new_account", "POST"),
        ("staff.accounts.disable", "POST"),
        ("staff.accounts.enable", "POST"),
        ("staff.accounts.unlock", "POST"),
        ("staff.accounts.reset_mfa", "POST"),
        ("staff.accounts.change_role", "POST"),
        ("staff.accounts.set_password", "POST"),
    } <= account_routes


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def request(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    token = csrf_token(client.get("/staff/login").text)
    return client.open(url, method=method, data={"csrf_token": token})


@pytest.mark.parametrize(("endpoint", "method", "url"), ROUTES, ids=lambda v: str(v))
def test_every_staff_route_without_a_session_goes_to_the_sign_in_page(
    client, endpoint, method, url
):
    if endpoint in OPEN:
        assert request(client, method, url).status_code in (200, 422)
        return
    response = request(client, method, url)
    assert response.status_code == 303, (endpoint, response.status_code)
    assert response.headers["Location"].endswith("/staff/login")
    assert response.headers["Cache-Control"] == "no-store"


# The sign-in pages themselves are open in between; every other page waits for the code.
AFTER_SIGN_IN = [route for route in ROUTES if not route[0].startswith("staff.auth.")]


@pytest.mark.parametrize(("endpoint", "method", "url"), AFTER_SIGN_IN, ids=lambda v: str(v))
def test_every_staff_route_after_only_the_password_asks_for_the_code(
    client, frozen_clock, endpoint, method, url
):
    create_staff()
    post_form(client, "/staff/login", {"email": "desk@clinic.test", "password": PASSWORD})
    response = request(client, method, url)
    assert response.status_code == 303, endpoint
    assert response.headers["Location"].endswith("/staff/login/code")


def role_routes():
    for endpoint, method, url in ROUTES:
        if endpoint in ADMIN_ONLY:
            for role in set(STAFF_ROLES) - {ROLE_ADMIN}:
                yield endpoint, method, url, role


@pytest.mark.parametrize(("endpoint", "method", "url", "role"), list(role_routes()))
def test_admin_pages_are_403_for_other_roles(
    client, frozen_clock, make_clinician, endpoint, method, url, role
):
    clinician = make_clinician(email="desk@clinic.test")
    account = create_staff(role=role, clinician_id=clinician.id if role == "clinician" else None)
    quick_sign_in(client, account)
    assert request(client, method, url).status_code == 403


def test_the_admin_only_pages_are_marked_admin_only(app):
    marked = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint.startswith("staff.") and getattr(view, "staff_roles", None) == {ROLE_ADMIN}
    }
    assert marked == ADMIN_ONLY


def test_admin_can_open_the_admin_pages(client, frozen_clock):
    quick_sign_in(client, create_staff(role="admin"))
    assert client.get("/staff/audit/").status_code == 200
    assert client.get("/staff/audit/export.csv").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/staff/bookings/999999",
        "/staff/bookings/999999/consultation.ics",
        "/staff/day/2026-02-30",
        "/staff/week/not-a-day",
        "/staff/day/2026-11-30x/sheet",
    ],
)
def test_unknown_ids_and_days_are_404(client, frozen_clock, url):
    quick_sign_in(client, create_staff())
    assert client.get(url).status_code == 404


def test_post_to_an_unknown_booking_is_404(client, frozen_clock):
    quick_sign_in(client, create_staff())
    for url in ("/staff/bookings/999999/attendance", "/staff/bookings/999999/notes"):
        assert (
            post_form(client, "/staff/bookings/", {"status": "attended"}, to=url).status_code == 404
        )


@pytest.fixture
def two_clinicians_bookings(make_clinician, make_consultation_type, make_booking):
    mine = make_clinician(name="Dr Mine", email="mine@clinic.test")
    theirs = make_clinician(name="Dr Theirs", email="theirs@clinic.test")
    kind = make_consultation_type()
    start = MONDAY_8AM_EST + timedelta(hours=2)
    return (
        make_booking(mine, kind, start, patient_name="Mine Patient"),
        make_booking(theirs, kind, start, patient_name="Theirs Patient"),
    )


def test_a_clinician_sees_only_their_own_bookings(client, frozen_clock, two_clinicians_bookings):
    mine, theirs = two_clinicians_bookings
    quick_sign_in(client, create_staff("mine@clinic.test", role="clinician"))
    assert client.get(f"/staff/bookings/{mine.id}").status_code == 200
    for url in (f"/staff/bookings/{theirs.id}", f"/staff/bookings/{theirs.id}/consultation.ics"):
        assert client.get(url).status_code == 404
    note = post_form(
        client, f"/staff/bookings/{mine.id}", {"body": "x"}, to=f"/staff/bookings/{theirs.id}/notes"
    )
    assert note.status_code == 404
    for url in ("/staff/day/2026-11-30", "/staff/week/2026-11-30", "/staff/day/2026-11-30/sheet"):
        page = client.get(url).text
        assert "Mine Patient" in page, url
        assert "Theirs Patient" not in page, url
    listed = client.get("/staff/bookings/").text
    assert "Mine Patient" in listed
    assert "Theirs Patient" not in listed
    export = client.get("/staff/export/?date_from=2026-11-30&date_to=2026-11-30").data.decode()
    assert "Mine Patient" in export
    assert "Theirs Patient" not in export


def test_clinicians_see_all_when_configured(app, client, frozen_clock, two_clinicians_bookings):
    app.config["STAFF_CLINICIANS_SEE_ALL"] = True
    _mine, theirs = two_clinicians_bookings
    quick_sign_in(client, create_staff("mine@clinic.test", role="clinician"))
    assert client.get(f"/staff/bookings/{theirs.id}").status_code == 200


def test_front_desk_sees_every_booking(client, frozen_clock, two_clinicians_bookings):
    quick_sign_in(client, create_staff())
    for booking in two_clinicians_bookings:
        assert client.get(f"/staff/bookings/{booking.id}").status_code == 200


def test_state_changes_need_post_and_csrf(client, frozen_clock, two_clinicians_bookings):
    mine, _ = two_clinicians_bookings
    quick_sign_in(client, create_staff())
    assert client.get(f"/staff/bookings/{mine.id}/attendance").status_code == 405
    assert client.get("/staff/logout").status_code == 405
    no_token = client.post(f"/staff/bookings/{mine.id}/notes", data={"body": "hello"})
    assert no_token.status_code == 400


# Every form of the console, the sign-in steps included: without its CSRF token, refused.
POST_ROUTES = [route for route in ROUTES if route[1] == "POST"]


@pytest.mark.parametrize(("endpoint", "method", "url"), POST_ROUTES, ids=lambda v: str(v))
def test_every_staff_post_without_its_csrf_token_is_refused(
    client, frozen_clock, endpoint, method, url
):
    admin = create_staff(role="admin")
    quick_sign_in(client, admin)
    audit_rows = db.session.scalar(select(func.count()).select_from(AuditEvent))
    response = client.post(url, data={"body": "hello", "reason": "no token"})
    assert response.status_code == 400, (endpoint, response.status_code)
    assert "no-store" in response.headers["Cache-Control"]
    # Refused before the view: nothing was recorded, and the admin is still signed in.
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows
    assert client.get("/staff/bookings/").status_code == 200
