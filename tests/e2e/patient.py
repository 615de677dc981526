"""A patient's moves on the booking pages, shared by the e2e scenarios and the screenshots.

Only this module knows how the form's fields are reached, so a change to a field (the date of
birth, say) is made here once.
"""

from __future__ import annotations

import re

from live_server import PATIENT
from playwright.sync_api import Page, expect

TIME_LINK = "a.time"
REFERENCE_RE = re.compile(r"^[A-Z0-9]{6}$")


def open_picker(page: Page, type_name: str) -> None:
    """From /book/, "Choose a day" for a consultation type."""
    page.get_by_role("link", name=f"Choose a day for {type_name}").click()
    page.wait_for_url(re.compile(r"/book/\?type=\d+$"))
    expect(page.locator(TIME_LINK).first).to_be_visible()


def fill_details(page: Page, note: str = "", full_name: str = PATIENT["full_name"]) -> None:
    page.get_by_label("Full name").fill(full_name)
    page.get_by_label("Email address").fill(PATIENT["email"])
    page.get_by_label("Mobile phone number").fill(PATIENT["phone"])
    fill_birth_date(page)
    if note:
        page.get_by_label(re.compile("^Anything you'd like us to know")).fill(note)
    page.get_by_label("I understand this website is not for emergencies.").check()
    page.get_by_label(re.compile("^I have read the privacy notice")).check()


def fill_birth_date(page: Page) -> None:
    page.get_by_label("Date of birth").fill(PATIENT["birth_date"])


def press_book(page: Page) -> None:
    page.get_by_role("button", name="Book this consultation").click()
    page.wait_for_load_state()


def expect_confirmation(page: Page) -> str:
    """The confirmation page is shown; its booking reference."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consultation is booked")
    reference = page.locator(".reference-code").inner_text()
    assert REFERENCE_RE.match(reference), reference
    return reference


def book_first_time(page: Page, type_name: str, full_name: str = PATIENT["full_name"]) -> str:
    """From /book/, book the first time the picker offers; the reference."""
    page.goto("/book/")
    open_picker(page, type_name)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    fill_details(page, full_name=full_name)
    press_book(page)
    return expect_confirmation(page)
