"""Every public page in a real browser, on a phone and a desktop: zero axe-core violations at
WCAG 2.2 A/AA, nothing loaded from another origin, no CSP report, no horizontal scrolling."""

from __future__ import annotations

import pytest
from browser import DESKTOP, PHONE, assert_accessible
from tests_support import PAGE_PATHS

pytestmark = pytest.mark.slow

PUBLIC_PATHS = [*PAGE_PATHS, "/book/", "/no-such-page"]
# On a desktop the pages differ from the phone only by layout, and the layouts are few: the home
# page, a topic page with its side box, the about page, the booking start and an error page.
DESKTOP_PATHS = ["/", "/safety", "/about", "/book/", "/no-such-page"]


@pytest.mark.parametrize(
    ("screen", "viewport", "paths"),
    [("phone", PHONE, PUBLIC_PATHS), ("desktop", DESKTOP, DESKTOP_PATHS)],
)
def test_every_public_page_is_accessible_and_private(watched, screen, viewport, paths):
    page = watched(viewport=viewport, is_mobile=screen == "phone").new_page()
    failures = {}
    for path in paths:
        response = page.goto(path)
        assert response.status == (404 if path == "/no-such-page" else 200), path
        try:
            assert_accessible(page, f"{path} on a {screen}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{path} scrolls sideways ({width} px)"
        except AssertionError as failure:
            failures[path] = str(failure)
    assert failures == {}
