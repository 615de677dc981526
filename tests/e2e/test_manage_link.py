"""A patient books, opens the manage link from their confirmation email, moves the
consultation to another time and then cancels it; the dead link then says so (410). With
JavaScript, and without it. axe checks every page on the way, the 410 page included."""

from __future__ import annotations

import re

import pytest
from browser import assert_accessible
from patient import TIME_LINK, book_first_time
from patient_mail import manage_link
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

IN_PERSON = "Initial consultation — in person"


def _when(page: Page) -> str:
    """The "When" of the booking on the manage page."""
    return page.locator("dt:text-is('When') + dd").inner_text().strip()


def _not_without_javascript(_page: Page, _label: str) -> None:
    pass


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_a_patient_moves_then_cancels_through_the_manage_link(
    watched, e2e_server, mail, javascript
):
    context = watched(java_script_enabled=javascript)
    page = context.new_page()
    # axe is a script: it runs in the JavaScript run, on the same pages the other one sees.
    check = assert_accessible if javascript else _not_without_javascript
    reference = book_first_time(page, IN_PERSON)
    link = manage_link(e2e_server, mail, reference)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your consultation")
    expect(page.locator(".reference-code")).to_have_text(reference)
    booked_for = _when(page)
    check(page, "manage page")

    page.get_by_role("link", name="Choose another time").click()
    page.wait_for_url(re.compile(r"/manage/[\w-]+/reschedule$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new time")
    expect(page.locator(TIME_LINK).first).to_be_visible()
    check(page, "reschedule picker")
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/manage/[\w-]+/reschedule/confirm\?slot=[\w-]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Move your consultation")
    new_time = page.locator(".chosen-when").inner_text().removeprefix("To:").strip()
    assert new_time != booked_for
    check(page, "reschedule confirmation")
    page.get_by_role("button", name="Move my consultation").click()

    page.wait_for_url(re.compile(r"/manage/[\w-]+\?done=moved$"))
    expect(page.get_by_role("status")).to_contain_text("Your consultation has moved")
    assert _when(page) == new_time
    expect(page.locator(".reference-code")).to_have_text(reference)
    check(page, "manage page after the move")

    page.get_by_role("button", name="Cancel this consultation").click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", level=1)).to_have_text("This consultation was cancelled")
    expect(page.locator("main")).to_contain_text(reference)
    check(page, "cancelled")

    response = page.goto(link)
    assert response.status == 410
    expect(page.get_by_role("heading", level=1)).to_have_text("This consultation was cancelled")
    expect(page.get_by_role("link", name="choose a time online")).to_be_visible()
    check(page, "410 page")
    if not javascript:
        assert not any(url.endswith(".js") for url in context.requests), "a script was loaded"
