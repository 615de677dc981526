"""The date-of-birth hint describes the control the patient actually sees, with JavaScript and
without it: the parts in the hint's order, and the hint's example typed as shown giving that
date.

The control is the browser's own date field, drawn by Chromium: its parts (month, day, year)
are not in the page's DOM, so they are read from Chromium's accessibility tree, which is what a
screen reader announces and mirrors what is drawn.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from patient import open_details_form
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow

HINT_RE = re.compile(r"^(\w+), (\w+) and (\w+), for example (\d+)/(\d+)/(\d+)\.")
STRPTIME = {"Month": "%m", "Day": "%d", "Year": "%Y"}


def date_parts(page: Page, selector: str) -> list[tuple[str, int]]:
    """(name, value) of each part of a date field, in the order the browser draws them."""
    cdp = page.context.new_cdp_session(page)
    try:
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        parts = cdp.send("Accessibility.queryAXTree", {"nodeId": node, "role": "spinbutton"})
    finally:
        cdp.detach()
    return [(p["name"]["value"].split()[0], int(p["value"]["value"])) for p in parts["nodes"]]


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_birth_date_hint_matches_the_control_the_patient_sees(watched, javascript):
    page = watched(java_script_enabled=javascript).new_page()
    open_details_form(page, "Initial consultation — in person")
    field = page.get_by_label("Date of birth")
    hint = page.locator("#birth_date-hint")
    expect(field).to_have_accessible_description(hint.inner_text())
    match = HINT_RE.match(hint.inner_text())
    assert match, hint.inner_text()
    order = [word.capitalize() for word in match.group(1, 2, 3)]
    numbers = [int(n) for n in match.group(4, 5, 6)]
    example = "/".join(match.group(4, 5, 6))

    # The parts the browser shows, empty and in the hint's order.
    assert date_parts(page, "#birth_date") == [(name, 0) for name in order]
    # The example typed as the hint shows it fills each part with its own number...
    field.focus()
    page.keyboard.type(example)
    assert date_parts(page, "#birth_date") == list(zip(order, numbers, strict=True))
    # ... and is the date the hint means, read in the hint's order.
    in_order = "/".join(STRPTIME[name] for name in order)
    expected = datetime.strptime(example, in_order).date()  # noqa: DTZ007 - a date, no time
    expect(field).to_have_value(expected.isoformat())
