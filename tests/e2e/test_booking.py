"""A patient books in a real browser: with JavaScript, without it, by keyboard alone, on a
phone, and through every error state, each page checked by axe and every request recorded.

The server uses the real clock, so no date is named: scenarios take what the picker offers.
"""

from __future__ import annotations

import re

import pytest
import requests
from browser import PHONE, assert_accessible, tab_until
from live_server import hidden_fields
from patient import (
    BIRTH_DATE,
    PATIENT,
    TIME_LINK,
    expect_confirmation,
    expect_failed_submit,
    fill_details,
    open_picker,
    press_book,
)
from playwright.sync_api import expect

pytestmark = pytest.mark.slow

IN_PERSON = "Initial consultation — in person"
VIDEO = "Initial consultation — video"


def _day_name(date_link) -> str:
    """ "Friday, December 4" from a date-strip link's spoken label."""
    return date_link.locator(".visually-hidden").inner_text().split(":", 1)[0]


def test_patient_books_with_javascript(watched):
    page = watched().new_page()
    page.goto("/")
    page.get_by_role("main").get_by_role("link", name="Book a consultation").first.click()
    page.wait_for_url(re.compile(r"/book/$"))
    assert_accessible(page, "/book/")
    open_picker(page, IN_PERSON)
    assert_accessible(page, "picker")

    # Weeks and days change in place: the page is never reloaded, the address follows.
    page.evaluate("window.__stillTheSamePage = true")
    page.get_by_role("link", name="Next week").click()
    expect(page).to_have_url(re.compile(r"week=\d{4}-\d{2}-\d{2}"))
    expect(page.locator("#days-heading")).to_be_focused()
    other_day = page.locator("a.date:not(.date-selected)").first
    day = _day_name(other_day)
    other_day.click()
    expect(page.locator("#times-heading")).to_have_text(f"Free times on {day}")
    expect(page.locator("#times")).to_be_focused()
    expect(page.locator("a.date-selected .visually-hidden")).to_have_text(re.compile(f"^{day}:"))
    assert page.evaluate("window.__stillTheSamePage") is True
    assert_accessible(page, "picker after a swap")

    first_time = page.locator(TIME_LINK).first
    chosen = first_time.inner_text().strip()
    first_time.click()
    page.wait_for_url(re.compile(r"/book/details\?type=\d+&slot=[\w-]+$"))
    expect(page.locator(".chosen-when")).to_contain_text(chosen.split()[0])
    assert_accessible(page, "details form")
    fill_details(page, note="I have tried three antidepressants.")
    press_book(page)
    expect_confirmation(page)
    expect(page.locator(".confirmation")).to_contain_text(day.split(",")[0])
    assert_accessible(page, "confirmation")


def test_patient_books_without_javascript(watched):
    context = watched(java_script_enabled=False)
    page = context.new_page()
    page.goto("/book/")
    open_picker(page, VIDEO)
    # Every picker control is an ordinary link or form: each press loads a page.
    page.get_by_role("link", name="Next week").click()
    page.wait_for_url(re.compile(r"week=\d{4}-\d{2}-\d{2}$"))
    page.get_by_label("Clinician").select_option(index=1)
    page.get_by_role("button", name="Show times").click()
    page.wait_for_url(re.compile(r"clinician=\d+"))
    other_day = page.locator("a.date:not(.date-selected)").first
    day = _day_name(other_day)
    other_day.click()
    page.wait_for_url(re.compile(r"day=\d{4}-\d{2}-\d{2}"))
    expect(page.locator("#times-heading")).to_have_text(f"Free times on {day}")
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    fill_details(page)
    press_book(page)
    expect_confirmation(page)
    assert not any(url.endswith(".js") for url in context.requests), "a script was loaded"


def test_patient_books_with_the_keyboard_alone(watched):
    page = watched().new_page()
    page.goto("/book/")
    tab_until(page, lambda el: el["text"].startswith("Choose a day"), "Choose a day")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/book/\?type="))
    tab_until(page, lambda el: "/book/details" in el["href"], "a free time")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/book/details\?"))

    for field, text in (
        ("full_name", PATIENT["full_name"]),
        ("email", PATIENT["email"]),
        ("phone", PATIENT["phone"]),
    ):
        tab_until(page, lambda el, f=field: el["id"] == f, field)
        page.keyboard.type(text)
    # The date of birth: its three boxes, one Tab apart, in the order they are shown.
    tab_until(page, lambda el: el["id"] == "birth_date-month", "date of birth")
    page.keyboard.type(BIRTH_DATE["month"])
    for part in ("day", "year"):
        page.keyboard.press("Tab")
        expect(page.locator(f"#birth_date-{part}")).to_be_focused()
        page.keyboard.type(BIRTH_DATE[part])
    for box in ("ack_not_emergency", "consent_privacy"):
        tab_until(page, lambda el, b=box: el["id"] == b, box)
        page.keyboard.press("Space")
        expect(page.locator(f"#{box}")).to_be_checked()
    tab_until(page, lambda el: el["text"] == "Book this consultation", "the Book button")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect_confirmation(page)


def test_keyboard_focus_is_never_trapped(watched):
    """Tab goes through the whole booking form and on out of the page, as it should."""
    page = watched().new_page()
    page.goto("/book/")
    open_picker(page, IN_PERSON)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    tab_until(page, lambda el: el["text"] == "Skip to main content", "the skip link")
    tab_until(page, lambda el: el["text"] == "Privacy notice", "the last footer link")
    tab_until(page, lambda el: el["text"] == "Skip to main content", "the page again")


def test_on_a_phone_the_days_and_first_times_are_on_the_first_screen(watched):
    page = watched(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    page.goto("/book/")
    card = page.locator(".type-card").first
    buttons = [card.get_by_role("link", name=re.compile(n)) for n in ("^See the first", "^Choose")]
    first, second = (button.bounding_box() for button in buttons)
    assert first["height"] >= 44
    assert second["height"] >= 44
    below = second["y"] - (first["y"] + first["height"])
    beside = second["x"] - (first["x"] + first["width"])
    apart = max(below, beside)
    assert apart >= 8, f"the two buttons are {apart} px apart"
    assert_accessible(page, "/book/ on a phone")

    buttons[1].tap()
    page.wait_for_url(re.compile(r"/book/\?type=\d+$"))
    screen = page.viewport_size["height"]
    assert page.evaluate("window.scrollY") == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    strip = page.locator(".date-strip").bounding_box()
    assert strip["y"] >= 0
    assert strip["y"] + strip["height"] <= screen
    for box in (d.bounding_box() for d in page.locator("a.date").all()):
        assert box["height"] >= 44
        assert box["y"] + box["height"] <= screen
    time = page.locator(TIME_LINK).first.bounding_box()
    assert time["height"] >= 44
    assert time["y"] + time["height"] <= screen, f"first time ends at {time['y'] + time['height']}"
    assert_accessible(page, "picker on a phone")

    page.locator(TIME_LINK).first.tap()
    page.wait_for_url(re.compile(r"/book/details\?"))
    assert_accessible(page, "details form on a phone")
    fill_details(page)
    press_book(page)
    expect_confirmation(page)
    assert_accessible(page, "confirmation on a phone")


def _book_behind_the_browser(server, type_id: int, key: str) -> bool:
    """Another patient books that time; False once it is taken for every clinician."""
    other = requests.Session()
    form = other.get(
        f"{server.url}/book/details", params={"type": type_id, "slot": key}, timeout=30
    )
    if form.status_code == 409:
        return False
    assert form.status_code == 200, form.status_code
    body = {**hidden_fields(form.text), **PATIENT}
    response = other.post(
        f"{server.url}/book/details", data=body, allow_redirects=False, timeout=30
    )
    assert response.status_code == 303, response.status_code
    return True


def test_invalid_details_are_summarised_focused_and_linked(watched):
    page = watched().new_page()
    page.goto("/book/")
    open_picker(page, IN_PERSON)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    page.get_by_label("Email address").fill("not-an-email")
    press_book(page)
    expect_failed_submit(page, "Your details")
    assert_accessible(page, "form with errors")
    page.locator("#error-summary").get_by_role("link", name="Enter your full name.").click()
    expect(page.get_by_label("Full name")).to_be_focused()
    expect(page.get_by_label("Email address")).to_have_value("not-an-email")


def test_a_time_taken_meanwhile_offers_others_with_none_chosen(watched, e2e_server):
    page = watched().new_page()
    page.goto("/book/")
    open_picker(page, IN_PERSON)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    type_id = int(re.search(r"type=(\d+)", page.url).group(1))
    key = re.search(r"slot=([\w-]+)", page.url).group(1)
    # Other patients take that time (for every clinician free then) while this one types.
    for _ in range(3):
        if not _book_behind_the_browser(e2e_server.server, type_id, key):
            break
    fill_details(page)
    press_book(page)
    expect_failed_submit(page, "That time was just taken")
    radios = page.locator("input[name=slot]")
    assert radios.count() > 1
    assert page.locator("input[name=slot]:checked").count() == 0
    expect(page.locator("#error-summary")).to_contain_text("Your details below are kept.")
    expect(page.get_by_label("Email address")).to_have_value(PATIENT["email"])
    assert_accessible(page, "409 with other times")

    press_book(page)  # pressing again without choosing books nothing
    expect_failed_submit(page, "Please choose a time")
    page.locator("#error-summary").get_by_role("link", name="Choose one of the times.").click()
    expect(radios.first).to_be_focused()
    assert_accessible(page, "409 again, no time chosen")
    label = page.locator(".alternatives label").nth(1)
    chosen = label.inner_text()
    label.click()
    page.get_by_label("I understand this website is not for emergencies.").check()
    page.get_by_label(re.compile("^I have read the privacy notice")).check()
    press_book(page)
    expect_confirmation(page)
    expect(page.locator(".confirmation")).to_contain_text(chosen)


def test_a_time_never_offered_is_refused_with_other_times(watched):
    page = watched().new_page()
    response = page.goto("/book/details?type=1&slot=any-20200106T1400Z")
    assert response.status == 422
    expect(page.get_by_role("heading", level=1)).to_have_text("Please choose another time")
    assert page.title().startswith("Error: ")
    expect(page.locator("#error-summary")).to_be_focused()
    assert page.locator("input[name=slot]:checked").count() == 0
    expect(page.locator("#error-summary")).not_to_contain_text("kept")
    assert_accessible(page, "422 with other times")


def test_a_form_too_large_gets_our_own_413_page(watched):
    """A note pasted far past its limit (the browser's maxlength bypassed, as a script or an
    old browser would): our page, in our words, that says nothing was booked."""
    page = watched().new_page()
    page.goto("/book/")
    open_picker(page, IN_PERSON)
    page.locator(TIME_LINK).first.click()
    page.wait_for_url(re.compile(r"/book/details\?"))
    fill_details(page)
    page.locator("textarea").first.evaluate(
        "(note) => { note.removeAttribute('maxlength'); note.value = 'x'.repeat(200000); }"
    )
    press_book(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("That was more than we can accept")
    expect(page.locator("main")).to_contain_text("Nothing was booked")
    expect(page).to_have_title(re.compile("more than we can accept"))
    assert_accessible(page, "413 page")
