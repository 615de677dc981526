"""The booking refusals a patient can meet with the guards on, each reached in a real browser the
way a patient reaches it: a form sent too quickly (autofill), the same form sent again with a
change, a second upcoming consultation, too many presses of "Book", and the database away.

Each page is checked by axe and says in our words what happened and what to do; what it says
was (not) booked is held to the database; every request is recorded (no other origin, no CSP
report). The scenarios share one server with the guards on (guarded_server.py); each is its own
patient, from its own address.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from browser import Watched, assert_accessible, watched_contexts
from guarded_server import BOOKINGS_PER_MINUTE, MIN_FILL_SECONDS, GuardedServer, guarded_server
from patient import (
    autofill_details,
    expect_confirmation,
    expect_failed_submit,
    fill_details,
    open_details_form,
    press_book,
)
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.slow

IN_PERSON = "Initial consultation — in person"
VIDEO = "Initial consultation — video"
NOT_FOR_EMERGENCIES = "I understand this website is not for emergencies."
_numbers = itertools.count(41)  # (207) 555-0141 on: fictional numbers the phone check accepts


@dataclass
class NewPatient:
    """One patient's recorded browser, and the details they type (theirs alone)."""

    browser: Watched
    details: dict[str, str]

    @property
    def email(self) -> str:
        return self.details["email"]

    def open_form(self, type_name: str) -> tuple[Page, float]:
        """A new tab on the details form for the first free time; when it was on screen."""
        page = self.browser.new_page()
        open_details_form(page, type_name)
        return page, time.monotonic()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[GuardedServer]:
    with guarded_server(tmp_path_factory.mktemp("e2e-guarded")) as server:
        yield server


@pytest.fixture
def patient(browser, guarded) -> Iterator[NewPatient]:
    """A new patient, in a browser with an address of its own (from TEST-NET-1), sent as the
    clinic's proxy sends it (X-Forwarded-For)."""
    n = next(_numbers)
    details = {
        "full_name": f"Pat Example {n}",
        "email": f"pat.example.{n}@example.com",
        "phone": f"(207) 555-01{n:02d}",
    }
    with watched_contexts(browser, guarded.url) as open_context:
        context = open_context(extra_http_headers={"X-Forwarded-For": f"192.0.2.{n}"})
        yield NewPatient(context, details)


def press_book_for_status(page: Page) -> int:
    """Press "Book this consultation"; the HTTP status of the page the POST answered with."""
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        press_book(page)
    return posted.value.status


def take_the_time_a_person_takes(shown_at: float) -> None:
    """Let the form have been on screen as long as the bot guard expects of a person."""
    time.sleep(max(0.0, MIN_FILL_SECONDS - (time.monotonic() - shown_at)))


def lose_the_next_answer(page: Page) -> list[int]:
    """The next booking POST reaches the server, but the patient presses Stop (or Esc) before
    its answer comes: the form stays on screen as they left it. The list gets the status the
    server answered with."""
    answered: list[int] = []

    def reach_the_server_then_stop(route: Route) -> None:
        answered.append(route.fetch(max_redirects=0).status)
        route.abort("aborted")  # what Stop does: no error page, the form stays

    page.route("**/book/details", reach_the_server_then_stop, times=1)
    return answered


def expect_refusal_page(page: Page, heading: str, *phrases: str):
    """Our own page for a refused press: its heading, a title that starts with it, and the
    phrases in its main content (returned, for what a test checks further)."""
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page).to_have_title(re.compile("^" + re.escape(heading)))
    main = page.get_by_role("main")
    for phrase in phrases:
        expect(main).to_contain_text(phrase)
    return main


def test_a_form_sent_at_once_asks_to_check_and_press_book_again(patient, guarded):
    """Autofill fills the form in a moment and the patient presses Book straight away: the bot
    guard's page says to check and press Book again, keeps the time and the details, and the
    next press (after a person's pause) books that time."""
    page, _shown_at = patient.open_form(IN_PERSON)
    chosen = page.locator(".chosen-when").inner_text()
    autofill_details(page, **patient.details)
    assert press_book_for_status(page) == 422
    expect_failed_submit(page, "Please check your details")
    expect(page.locator("#error-summary")).to_have_text(
        "Please check your details and press “Book this consultation” again."
    )
    expect(page.locator(".chosen-when")).to_have_text(chosen)
    expect(page.get_by_label("Email address")).to_have_value(patient.email)
    expect(page.get_by_label(NOT_FOR_EMERGENCIES)).to_be_checked()
    assert_accessible(page, "form sent too quickly")
    assert guarded.notes_booked_by(patient.email) == []

    take_the_time_a_person_takes(time.monotonic())  # from the page that asked them to check
    press_book(page)
    expect_confirmation(page)
    expect(page.locator(".confirmation")).to_contain_text(chosen)
    assert guarded.notes_booked_by(patient.email) == [""]


def test_the_same_form_sent_again_with_a_change_books_nothing_new(patient, guarded):
    """Book is pressed, the answer is lost, the patient changes the note and presses Book again:
    that form has booked already, so the page says nothing new was booked or changed."""
    page, shown_at = patient.open_form(IN_PERSON)
    fill_details(page, note="I take sertraline.", **patient.details)
    take_the_time_a_person_takes(shown_at)
    answered = lose_the_next_answer(page)
    with page.expect_event("requestfailed"):
        page.get_by_role("button", name="Book this consultation").click()
    assert answered == [303]  # it booked
    expect(page.get_by_role("heading", level=1)).to_have_text("Your details")

    note = page.get_by_label(re.compile("^Anything you'd like us to know"))
    note.fill("I take sertraline daily.")
    assert press_book_for_status(page) == 422
    main = expect_refusal_page(
        page,
        "This form was already used",
        "Nothing new was booked or changed.",
        "Your earlier booking stands",
    )
    expect(main.get_by_role("link", name="Start a new booking")).to_be_visible()
    assert_accessible(page, "form already used")
    assert guarded.notes_booked_by(patient.email) == ["I take sertraline."]


def test_a_patient_with_an_upcoming_consultation_is_told_and_books_no_second(patient, guarded):
    """One form open in each of two tabs: the patient books in the first, then in the second."""
    first, _ = patient.open_form(IN_PERSON)
    fill_details(first, **patient.details)
    second, shown_at = patient.open_form(VIDEO)
    fill_details(second, **patient.details)
    take_the_time_a_person_takes(shown_at)
    press_book(first)
    expect_confirmation(first)

    assert press_book_for_status(second) == 409
    expect_refusal_page(
        second,
        "You already have a consultation booked",
        "Nothing new was booked.",
        "You already have an upcoming consultation with us.",
        "use the link in your confirmation email",
    )
    assert_accessible(second, "upcoming limit reached")
    assert guarded.notes_booked_by(patient.email) == [""]


def test_pressing_book_too_often_gets_our_page_asking_to_wait(patient, guarded):
    """A mistake the patient keeps sending: after the limit, our 429 page, and the next press
    (with the details now right) books nothing."""
    page, shown_at = patient.open_form(IN_PERSON)
    fill_details(page, **{**patient.details, "email": "pat.example.com"})
    for _ in range(BOOKINGS_PER_MINUTE):
        assert press_book_for_status(page) == 422
        expect_failed_submit(page, "Your details")
    page.get_by_label("Email address").fill(patient.email)
    take_the_time_a_person_takes(shown_at)

    assert press_book_for_status(page) == 429
    expect_refusal_page(
        page,
        "Please wait a moment",
        "Nothing was booked or changed.",
        "Please wait a minute and try again.",
    )
    assert_accessible(page, "429 page")
    assert guarded.notes_booked_by(patient.email) == []


def test_with_the_database_away_the_page_says_nothing_was_booked(patient, guarded):
    page, shown_at = patient.open_form(IN_PERSON)
    fill_details(page, **patient.details)
    take_the_time_a_person_takes(shown_at)
    with guarded.database_away():
        assert press_book_for_status(page) == 503
        main = expect_refusal_page(
            page,
            "We can't take bookings right now",
            "Nothing was booked.",
            "we will book your consultation by phone",
        )
        expect(main.get_by_role("link", name="Try booking again")).to_be_visible()
        assert_accessible(page, "503 page")
    assert guarded.notes_booked_by(patient.email) == []
