"""A patient books; a front-desk member signs in for the first time (password, then setting
up the authenticator from the key the page shows, then the recovery codes) and finds that
booking in the week view and opens it — all with the keyboard, focus visible at every stop.
axe checks the recovery codes page here, the one page only this path reaches; the others are
checked with the rest of the console in test_every_staff_page.py."""

from __future__ import annotations

import re

import pytest
from browser import assert_accessible, tab_until
from console import (
    FRONT_DESK,
    PASSWORD,
    WEEKS_AHEAD,
    create_account,
    current_code,
    read_recovery_codes,
    read_secret,
)
from patient import book_first_time
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

VIDEO = "Initial consultation — video"
PATIENT_NAME = "Ada Example-Console"  # fictional, and found nowhere else in the week


def test_front_desk_signs_in_with_a_second_factor_and_opens_a_new_booking(watched, e2e_server):
    reference = book_first_time(watched().new_page(), VIDEO, full_name=PATIENT_NAME)
    create_account(e2e_server, FRONT_DESK)

    page = watched().new_page()
    page.goto("/staff/login")
    tab_until(page, lambda el: el["id"] == "email", "the email field")
    page.keyboard.type(FRONT_DESK.email)
    tab_until(page, lambda el: el["id"] == "password", "the password field")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/staff/login/enrol$"))
    secret = read_secret(page)
    tab_until(page, lambda el: el["id"] == "code", "the code field")
    page.keyboard.type(current_code(secret))
    page.keyboard.press("Enter")
    read_recovery_codes(page)
    assert_accessible(page, "recovery codes")
    tab_until(page, lambda el: el["text"].startswith("I have saved them"), "continue")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/day/\d{4}-\d{2}-\d{2}$"))

    tab_until(page, lambda el: el["text"] == "Week", "the Week link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/week/\d{4}-\d{2}-\d{2}$"))
    entry = page.locator(".cal-col a", has_text=PATIENT_NAME)
    for _ in range(WEEKS_AHEAD):
        if entry.count():
            break
        tab_until(page, lambda el: el["text"].startswith("Next week"), "Next week")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(VIDEO)

    tab_until(
        page,
        lambda el: "/staff/bookings/" in el["href"] and PATIENT_NAME in el["text"],
        "the new booking's link",
    )
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/bookings/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(PATIENT_NAME)
    expect(page.locator("dt:text-is('Reference') + dd")).to_have_text(reference)
