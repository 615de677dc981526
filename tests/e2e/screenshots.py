"""`make screenshots`: the booking on a phone (360 x 740) and a desktop (1280 x 800), as PNGs in
docs/screenshots/, shown in README.md. Not part of `make test` (pytest collects `test_*.py`
only); run by name: `pytest tests/e2e/screenshots.py`.

Each shot is the first screen a patient sees, not the whole page. Look at them before
committing: a screenshot is only useful if someone checks it shows what it should.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import DESKTOP, PHONE
from live_server import REPO_ROOT
from patient import TIME_LINK, expect_confirmation, fill_details, open_picker, press_book
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
SCREENS = {"phone": PHONE, "desktop": DESKTOP}


@pytest.mark.parametrize("screen", SCREENS)
def test_take_screenshots(watched, screen):
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
    expect_confirmation(page)
    shot("confirmation")
