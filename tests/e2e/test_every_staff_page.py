"""axe on every page of the staff console, at WCAG 2.2 A/AA, in a real browser.

The pages are every GET route of the `staff` blueprint in the app's url_map, so a page added
to the console is checked from the day it exists. A route's URL parameters are filled from a
seeded booking, clinician, type and accounts through PARAMETERS; a route with a parameter
that has no entry there FAILS (it is not skipped) until someone adds one line for it. The
sign-in steps, which come before a session, are each visited in their own state; forms are
also checked showing their errors.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import pyotp
import pytest
from browser import assert_accessible, private_context
from console import ADMIN, CLINICIAN, StaffMember, create_account, enter_password, read_secret
from live_server import CLINIC_TIMEZONE
from patient import TIME_LINK, book_first_time
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from microsite import create_app
from microsite.models import Booking, Clinician, StaffAccount

pytestmark = pytest.mark.slow

VIDEO = "Initial consultation — video"
PATIENT_NAME = "Bo Example-Pages"  # fictional


@dataclass(frozen=True)
class Seeded:
    """What the staff pages' URLs point at, in the e2e database."""

    booking_id: int
    booking_day: date
    clinician_id: int
    type_id: int
    account_ids: dict[str, int]  # staff account email -> id


# A value for each URL parameter of a staff page. A new parameter gets a line here, e.g.
#     "account_id": lambda seeded: seeded.account_ids[CLINICIAN.email],
PARAMETERS: dict[str, Callable[[Seeded], object]] = {
    "booking_id": lambda seeded: seeded.booking_id,
    "day": lambda seeded: seeded.booking_day.isoformat(),
    "clinician_id": lambda seeded: seeded.clinician_id,
    "type_id": lambda seeded: seeded.type_id,
    "account_id": lambda seeded: seeded.account_ids[CLINICIAN.email],
}


def _new_booking_picker(seeded: Seeded) -> str:
    return f"/staff/bookings/new?type={seeded.type_id}"


def _reschedule_picker(seeded: Seeded) -> str:
    return f"/staff/bookings/{seeded.booking_id}/reschedule"


# Pages that need a chosen time in their query: the picker whose first free time leads there.
REACHED_FROM_A_PICKER: dict[str, Callable[[Seeded], str]] = {
    "staff.actions.new_booking_details": _new_booking_picker,
    "staff.actions.confirm_reschedule": _reschedule_picker,
}

# Files, not pages: endpoint -> (the page that links to the file, the file's extension).
DOWNLOADS: dict[str, tuple[Callable[[Seeded], str], str]] = {
    "staff.audit.audit_export": (lambda seeded: "/staff/audit/", ".csv"),
    "staff.bookings.download_ics": (lambda seeded: f"/staff/bookings/{seeded.booking_id}", ".ics"),
}

# Pages in a state their plain URL does not show (label -> path and the status expected).
MORE_PAGES: dict[str, tuple[Callable[[Seeded], str], int]] = {
    "new booking: a type's picker": (_new_booking_picker, 200),
    "bookings found by a search": (lambda seeded: f"/staff/bookings/?q={PATIENT_NAME}", 200),
    "export with days missing": (lambda seeded: "/staff/export/?date_from=&date_to=", 422),
}

# Forms sent as they first appear, empty: label -> (its page, the button that sends it).
FORMS_WITH_ERRORS: dict[str, tuple[Callable[[Seeded], str], str]] = {
    "new clinician": (lambda seeded: "/staff/schedule/clinicians/new", "Save"),
    "new consultation type": (lambda seeded: "/staff/schedule/types/new", "Save"),
    "a booking's note": (lambda seeded: f"/staff/bookings/{seeded.booking_id}", "Add note"),
}


def _staff_get_rules() -> list[Rule]:
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "routes", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("staff.") and "GET" in rule.methods
    ]
    return sorted(rules, key=lambda rule: rule.rule)


STAFF_RULES = _staff_get_rules()


@pytest.fixture(scope="module")
def seeded(browser, e2e_server, admin) -> Seeded:
    """A booking made by a patient in the browser, and a clinician's account not yet set up
    (its first sign-in shows the enrolment page)."""
    with private_context(browser, e2e_server.url) as context:
        reference = book_first_time(context.new_page(), VIDEO, full_name=PATIENT_NAME)
    create_account(e2e_server, CLINICIAN)
    engine = create_engine(e2e_server.database_url)
    try:
        with Session(engine) as session:
            booking = session.scalars(select(Booking).where(Booking.reference == reference)).one()
            return Seeded(
                booking_id=booking.id,
                booking_day=booking.starts_at.astimezone(ZoneInfo(CLINIC_TIMEZONE)).date(),
                clinician_id=session.scalars(select(Clinician.id).order_by(Clinician.id)).first(),
                type_id=booking.consultation_type_id,
                account_ids=dict(
                    session.execute(select(StaffAccount.email, StaffAccount.id)).all()
                ),
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def admin_page(browser, e2e_server, admin) -> Iterator[Page]:
    """One signed-in page for the module's many visits (a context per visit costs time)."""
    with private_context(browser, e2e_server.url, storage_state=admin.state) as context:
        yield context.new_page()


def _path(rule: Rule, seeded: Seeded) -> str:
    """The rule's URL with its parameters filled; fails when one has no value."""
    needed = sorted(rule.arguments - set(rule.defaults or {}))
    missing = [name for name in needed if name not in PARAMETERS]
    assert not missing, (
        f"{rule.rule} ({rule.endpoint}) has URL parameters {missing} with no value: add them "
        "to PARAMETERS in tests/e2e/test_every_staff_page.py"
    )
    built = rule.build({name: PARAMETERS[name](seeded) for name in needed}, append_unknown=False)
    assert built is not None, f"cannot build {rule.rule}"
    return built[1]


def _first_time(page: Page, picker: str, path: str) -> str:
    """The first free time's link on a picker page; it must lead to `path`."""
    page.goto(picker)
    href = page.locator(TIME_LINK).first.get_attribute("href")
    assert href.split("?")[0] == path, href
    return href


def _wrong_code(secret: str) -> str:
    """A 6-digit code that the secret does not give for now or a step either side."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + offset) for offset in (-30, 0, 30)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def _expect_problem(page: Page) -> None:
    expect(page.locator(".error-summary, .field-error, .flash-error").first).to_be_visible()


def _sign_in_page(page: Page, seeded: Seeded) -> None:
    page.goto("/staff/login")
    assert_accessible(page, "sign-in")
    enter_password(page, StaffMember("nobody@clinic.test", "Nobody", "admin"))
    _expect_problem(page)
    assert_accessible(page, "sign-in refused")


def _code_page(page: Page, admin_secret: str) -> None:
    enter_password(page, ADMIN)
    page.wait_for_url(re.compile(r"/staff/login/code$"))
    assert_accessible(page, "second factor")
    page.get_by_label("6-digit code").fill(_wrong_code(admin_secret))
    page.get_by_role("button", name="Sign in").click()
    _expect_problem(page)
    assert_accessible(page, "second factor refused")


def _recovery_page(page: Page) -> None:
    enter_password(page, ADMIN)
    page.get_by_role("link", name="Use a recovery code instead").click()
    page.wait_for_url(re.compile(r"/staff/login/recovery$"))
    assert_accessible(page, "recovery code")
    page.get_by_label("Recovery code").fill("aaaa-bbbb-cccc")
    page.get_by_role("button", name="Sign in").click()
    _expect_problem(page)
    assert_accessible(page, "recovery code refused")


def _enrol_page(page: Page) -> None:
    enter_password(page, CLINICIAN)
    page.wait_for_url(re.compile(r"/staff/login/enrol$"))
    assert_accessible(page, "authenticator set-up")
    page.get_by_label("6-digit code").fill(_wrong_code(read_secret(page)))
    page.get_by_role("button", name="Confirm").click()
    _expect_problem(page)
    assert_accessible(page, "authenticator set-up refused")


SIGN_IN_STEPS: dict[str, Callable[[Page, Seeded, str], None]] = {
    "staff.auth.login": lambda page, seeded, secret: _sign_in_page(page, seeded),
    "staff.auth.second_factor": lambda page, seeded, secret: _code_page(page, secret),
    "staff.auth.recovery": lambda page, seeded, secret: _recovery_page(page),
    "staff.auth.enrol": lambda page, seeded, secret: _enrol_page(page),
}


def _rule_id(rule: Rule) -> str:
    return f"{rule.rule} {rule.endpoint}"


@pytest.mark.parametrize("rule", STAFF_RULES, ids=_rule_id)
def test_every_staff_page_is_accessible(watched, admin, admin_page, seeded, rule):
    if rule.endpoint in SIGN_IN_STEPS:
        SIGN_IN_STEPS[rule.endpoint](watched().new_page(), seeded, admin.totp_secret)
        return
    page = admin_page
    path = _path(rule, seeded)
    if rule.endpoint in DOWNLOADS:
        linked_from, extension = DOWNLOADS[rule.endpoint]
        page.goto(linked_from(seeded))
        with page.expect_download() as download:
            page.locator(f'a[href^="{path}"]').first.click()
        assert download.value.suggested_filename.endswith(extension)
        return
    if rule.endpoint in REACHED_FROM_A_PICKER:
        path = _first_time(page, REACHED_FROM_A_PICKER[rule.endpoint](seeded), path)
    response = page.goto(path)
    assert response.status == 200, f"{path} answered {response.status}"
    assert response.headers["content-type"].startswith("text/html"), (
        f"{path} is not a page ({response.headers['content-type']}): add it to DOWNLOADS"
    )
    assert_accessible(page, path)


@pytest.mark.parametrize("label", MORE_PAGES)
def test_staff_pages_in_other_states_are_accessible(admin_page, seeded, label):
    page = admin_page
    path, status = MORE_PAGES[label]
    response = page.goto(path(seeded))
    assert response.status == status
    if status != 200:
        _expect_problem(page)
    assert_accessible(page, label)


def test_the_book_for_a_caller_form_showing_its_errors_is_accessible(admin_page, seeded):
    page = admin_page
    page.goto(_first_time(page, _new_booking_picker(seeded), "/staff/bookings/new/details"))
    page.get_by_role("button", name="Book this consultation", exact=True).click()
    page.wait_for_load_state()
    _expect_problem(page)
    expect(page).to_have_title(re.compile(r"^Error: "))
    assert_accessible(page, "book for a caller with errors")


@pytest.mark.parametrize("label", FORMS_WITH_ERRORS)
def test_staff_forms_showing_their_errors_are_accessible(admin_page, seeded, label):
    page = admin_page
    path, button = FORMS_WITH_ERRORS[label]
    page.goto(path(seeded))
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()
    _expect_problem(page)
    assert_accessible(page, f"{label} with errors")
