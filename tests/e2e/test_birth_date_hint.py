"""The date-of-birth hint describes the control the patient actually sees, with JavaScript and
without it: three boxes labelled Month, Day and Year, drawn (and tabbed through) in that order
under one "Date of birth" legend, and the hint's example typed into them as shown is the date
booked. A date the form cannot take says what to fix beside the boxes and in the summary, whose
link goes to the first box to correct, and keeps what was typed.

The boxes are ordinary text inputs (GOV.UK's "date input"), the same in every browser and
locale, unlike a date picker, whose parts and their order are the browser's own.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from browser import PHONE, assert_accessible
from patient import (
    BIRTH_DATE,
    booked_birth_date,
    date_boxes,
    expect_confirmation,
    expect_failed_submit,
    fill_birth_date,
    fill_details,
    open_details_form,
    press_book,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

IN_PERSON = "Initial consultation — in person"
HINT_RE = re.compile(r"^For example, (\d+) (\d+) (\d+)\.")
STRPTIME = {"Month": "%m", "Day": "%d", "Year": "%Y"}


def boxes_as_drawn(page: Page) -> list[tuple[str, dict]]:
    """(accessible name, bounding box) of each date box, in the page's (and Tab's) order."""
    boxes = date_boxes(page)
    expect(boxes).to_have_count(3)
    names = boxes.evaluate_all("boxes => boxes.map(box => box.labels[0].innerText)")
    return list(zip(names, [box.bounding_box() for box in boxes.all()], strict=True))


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_hint_example_typed_into_the_boxes_as_shown_is_the_date_booked(
    watched, e2e_server, javascript
):
    page = watched(java_script_enabled=javascript).new_page()
    open_details_form(page, "Initial consultation — in person")
    group = page.get_by_role("group", name="Date of birth")
    hint = page.locator("#birth_date-hint").inner_text()
    expect(group).to_have_accessible_description(hint)
    match = HINT_RE.match(hint)
    assert match, hint
    example = match.group(1, 2, 3)

    # Three boxes on one line, left to right in the page's order, each a tap target.
    drawn = boxes_as_drawn(page)
    labels = [name for name, _ in drawn]
    assert labels == ["Month", "Day", "Year"]
    assert len({round(box["y"]) for _, box in drawn}) == 1, drawn
    lefts = [box["x"] for _, box in drawn]
    assert lefts == sorted(lefts), drawn
    assert all(box["height"] >= 44 for _, box in drawn), drawn
    for part in ("month", "day", "year"):
        box = page.locator(f"#birth_date-{part}")
        expect(box).to_have_attribute("inputmode", "numeric")
        expect(box).to_have_attribute("autocomplete", f"bday-{part}")
        expect(box).to_have_value("")

    # The example typed as the hint shows it: a number, Tab, a number, Tab, a number.
    fill_details(page)
    for box in date_boxes(page).all():
        box.fill("")
    date_boxes(page).first.focus()
    for n, number in enumerate(example):
        if n:
            page.keyboard.press("Tab")
        page.keyboard.type(number)
    press_book(page)
    reference = expect_confirmation(page)
    # ... is the date the hint means, read in the boxes' order.
    in_order = " ".join(STRPTIME[label] for label in labels)
    expected = datetime.strptime(" ".join(example), in_order).date()  # noqa: DTZ007 - a date
    assert booked_birth_date(e2e_server.database_url, reference) == expected


@pytest.mark.parametrize(
    ("typed", "message", "box"),
    [
        ({"year": ""}, "Date of birth must include a year.", "Year"),
        (
            {"month": "02", "day": "30", "year": "1985"},
            "Date of birth must be a real date: February 1985 has 28 days.",
            "Day",
        ),
    ],
    ids=["year-missing", "no-such-day"],
)
def test_a_date_error_names_the_fix_and_links_to_the_box_on_a_phone(
    watched, e2e_server, typed, message, box
):
    options = {"viewport": PHONE, "is_mobile": True, "has_touch": True}
    page = watched(**options).new_page()
    open_details_form(page, IN_PERSON)
    fill_details(page)
    fill_birth_date(page, **typed)
    press_book(page)
    expect_failed_submit(page, "Your details")
    assert_accessible(page, f"date of birth error: {message}")

    group = page.get_by_role("group", name="Date of birth")
    expect(group).to_have_accessible_description(re.compile(rf"^For example, .*{message}$"))
    for part, value in (BIRTH_DATE | typed).items():  # what was typed is kept
        expect(group.get_by_label(part.capitalize(), exact=True)).to_have_value(value)
    invalid = group.locator("[aria-invalid=true]")
    expect(invalid).to_have_count(1)
    expect(invalid).to_have_accessible_name(box)

    # The summary's link goes to the box to fix, which is then below the legend, the hint and
    # the message (all still on screen), ready for typing.
    page.locator("#error-summary").get_by_role("link", name=message).click()
    expect(group.get_by_label(box, exact=True)).to_be_focused()
    for shown in (group.locator("legend"), page.locator("#birth_date-error")):
        top = shown.bounding_box()["y"]
        assert 0 <= top < PHONE["height"], (shown, top)

    fill_birth_date(page)
    press_book(page)
    reference = expect_confirmation(page)
    booked = booked_birth_date(e2e_server.database_url, reference)
    assert booked.isoformat() == "{year}-{month}-{day}".format(**BIRTH_DATE)
