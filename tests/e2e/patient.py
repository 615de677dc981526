"""A patient's moves on the booking pages, shared by the e2e scenarios and the screenshots.

Only this module knows how the form's fields are reached, so a change to a field (the date of
birth, say) is made here once.
"""

from __future__ import annotations

import re
from datetime import date

from live_server import PATIENT
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import create_engine, text

TIME_LINK = "a.time"
# The patient's date of birth, box by box, as live_server.PATIENT sends it.
BIRTH_DATE = {part: PATIENT[f"birth_date-{part}"] for part in ("month", "day", "year")}
REFERENCE_RE = re.compile(r"^[A-Z0-9]{6}$")


def open_picker(page: Page, type_name: str) -> None:
    """From /book/, "Choose a day" for a consultation type."""
    page.get_by_role("link", name=f"Choose a day for {type_name}").click()
    page.wait_for_url(re.compile(r"/book/\?type=\d+$"))
    expect(page.locator(TIME_LINK).first).to_be_visible()


def open_details_form(page: Page, type_name: str) -> None:
    """From /book/, the details form for the first time the picker offers."""
    page.goto("/book/")
    open_picker(page, type_name)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))


def fill_details(
    page: Page,
    note: str = "",
    full_name: str = PATIENT["full_name"],
    email: str = PATIENT["email"],
    phone: str = PATIENT["phone"],
) -> None:
    page.get_by_label("Full name").fill(full_name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Mobile phone number").fill(phone)
    fill_birth_date(page)
    if note:
        page.get_by_label(re.compile("^Anything you'd like us to know")).fill(note)
    page.get_by_label("I understand this website is not for emergencies.").check()
    page.get_by_label(re.compile("^I have read the privacy notice")).check()


# What a browser's autofill does: every field at once, each with its input and change events.
AUTOFILL_JS = """(values) => {
  for (const [id, value] of Object.entries(values)) {
    const field = document.getElementById(id);
    if (field.type === "checkbox") field.checked = value; else field.value = value;
    field.dispatchEvent(new Event("input", {bubbles: true}));
    field.dispatchEvent(new Event("change", {bubbles: true}));
  }
}"""


def autofill_details(
    page: Page,
    full_name: str = PATIENT["full_name"],
    email: str = PATIENT["email"],
    phone: str = PATIENT["phone"],
) -> None:
    """The details filled in one moment, as the browser's autofill (and the patient's two
    ticks) would: one script call, so the form is complete a moment after it is shown."""
    values = {"full_name": full_name, "email": email, "phone": phone}
    values |= {f"birth_date-{part}": value for part, value in BIRTH_DATE.items()}
    values |= {"ack_not_emergency": True, "consent_privacy": True}
    page.evaluate(AUTOFILL_JS, values)


def date_boxes(page: Page) -> Locator:
    """The date of birth's boxes (Month, Day, Year), in the page's order."""
    return page.get_by_role("group", name="Date of birth").get_by_role("textbox")


def fill_birth_date(page: Page, **parts: str) -> None:
    """The patient's date of birth typed into its boxes, by their labels (`month="07"` and so
    on changes a part)."""
    group = page.get_by_role("group", name="Date of birth")
    for part, value in (BIRTH_DATE | parts).items():
        group.get_by_label(part.capitalize(), exact=True).fill(value)


def booked_birth_date(database_url: str, reference: str) -> date:
    """The date of birth stored with the booking of this reference."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            query = text("SELECT patient_birth_date FROM booking WHERE reference = :reference")
            stored = conn.execute(query, {"reference": reference}).scalar_one()
    finally:
        engine.dispose()
    return date.fromisoformat(str(stored))  # SQLite gives the text, PostgreSQL a date


def press_book(page: Page) -> None:
    page.get_by_role("button", name="Book this consultation").click()
    page.wait_for_load_state()


def expect_failed_submit(page: Page, heading: str) -> None:
    """The h1 says what happened, the title starts with Error:, focus is on the summary."""
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    assert page.title().startswith(f"Error: {heading}")
    expect(page.locator("#error-summary")).to_be_focused()


def expect_confirmation(page: Page) -> str:
    """The confirmation page is shown; its booking reference."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consultation is booked")
    reference = page.locator(".reference-code").inner_text()
    assert REFERENCE_RE.match(reference), reference
    return reference


def book_first_time(page: Page, type_name: str, full_name: str = PATIENT["full_name"]) -> str:
    """From /book/, book the first time the picker offers; the reference."""
    open_details_form(page, type_name)
    fill_details(page, full_name=full_name)
    press_book(page)
    return expect_confirmation(page)
