"""`make screenshots`: the booking, the patient's manage page and the staff console's week view
and booking detail, on a phone (360 x 740) and a desktop (1280 x 800), as PNGs in
docs/screenshots/, shown in README.md. Not part of `make test` (pytest collects `test_*.py`
only); run by name: `pytest tests/e2e/screenshots.py`.

Each shot is the first screen a patient or staff member sees, not the whole page (the phone's
week view is scrolled to the booking). Look at them before committing: a screenshot is only
useful if someone checks it shows what it should. Every name in them is fictional.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import DESKTOP, PHONE
from console import week_with
from live_server import REPO_ROOT, REQUEST_TIMEOUT_S, hidden_fields, new_browser
from patient import (
    PATIENT,
    TIME_LINK,
    expect_confirmation,
    fill_details,
    open_picker,
    press_book,
)
from patient_mail import manage_link
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# The desktop first: the other patients it adds take times the phone's picker shot then lacks,
# and on a phone the first screen shows only the first few times anyway.
SCREENS = {"desktop": DESKTOP, "phone": PHONE}


# Other (fictional) patients, so the week view shows a few bookings.
OTHERS = ["Sam Example", "Rae Sample", "Lee Placeholder"]


def _others_book(hrefs: list[str]) -> None:
    """Some of the picker's later times are booked by others (as a browser without JavaScript
    sends the form); a time that overlaps one taken is passed over."""
    names = iter(OTHERS)
    name = next(names)
    for href in hrefs[2:]:
        browser = new_browser()
        form = browser.get(href, timeout=REQUEST_TIMEOUT_S)
        if form.status_code != 200:
            continue
        body = {**hidden_fields(form.text), **PATIENT, "full_name": name}
        body["email"] = f"{name.split()[0].lower()}@example.com"
        sent = browser.post(href, data=body, allow_redirects=False, timeout=REQUEST_TIMEOUT_S)
        assert sent.status_code == 303, sent.status_code
        name = next(names, None)
        if name is None:
            return


@pytest.mark.parametrize("screen", SCREENS)
def test_take_screenshots(watched, e2e_server, mail, admin, screen):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    options = {"viewport": SCREENS[screen]}
    if screen == "phone":
        options.update(is_mobile=True, has_touch=True)
    page = watched(**options).new_page()

    def shot(name: str) -> None:
        path: Path = SCREENSHOTS / f"{screen}-{name}.png"
        page.screenshot(path=str(path), animations="disabled", caret="hide")

    page.goto("/")
    shot("home")
    page.goto("/book/")
    open_picker(page, "Initial consultation — in person")
    shot("picker")
    later_times = page.locator(TIME_LINK).evaluate_all("links => links.map(a => a.href)")
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    # A patient who typed everything, with two slips: what the error summary is for.
    fill_details(page)
    page.get_by_label("Email address").fill("jane.patient@example")
    page.get_by_label("Mobile phone number").fill("555 01")
    press_book(page)
    expect(page.locator("#error-summary")).to_be_focused()
    shot("form-errors")
    fill_details(page)
    press_book(page)
    reference = expect_confirmation(page)
    shot("confirmation")
    _others_book(later_times)

    page.goto(manage_link(e2e_server, mail, reference))
    expect(page.locator(".reference-code")).to_have_text(reference)
    shot("manage")

    # The console, signed in as the administrator, on the same screen.
    page = watched(storage_state=admin.state, **options).new_page()
    page.goto("/staff/bookings/")
    entry = week_with(page, PATIENT["full_name"])
    entry.scroll_into_view_if_needed()  # on a phone the grid starts below the first screen
    shot("staff-week")
    entry.click()
    page.wait_for_url(re.compile(r"/staff/bookings/\d+$"))
    shot("staff-booking")
