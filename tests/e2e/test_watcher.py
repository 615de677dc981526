"""The privacy watcher itself: it must notice what the other scenarios say never happens."""

from __future__ import annotations

import time

import pytest
from browser import Watched

pytestmark = pytest.mark.slow


def test_the_watcher_reports_a_blocked_foreign_image(browser, e2e_server):
    watched = Watched.open(browser, e2e_server.url, base_url=e2e_server.url)
    try:
        page = watched.new_page()
        page.goto("/")
        # Another origin (a loopback address nobody serves): the CSP must refuse it.
        page.evaluate(
            """() => { const img = document.createElement("img");
                       img.src = "http://127.0.0.2:9/tracker.png";
                       document.body.append(img); }"""
        )
        deadline = time.monotonic() + 5
        while not watched.csp_violations and time.monotonic() < deadline:
            page.wait_for_timeout(50)
    finally:
        watched.close()
    assert any("127.0.0.2" in report for report in watched.csp_violations)
    assert watched.foreign_requests() == ["http://127.0.0.2:9/tracker.png"]
    with pytest.raises(AssertionError, match="another origin"):
        watched.assert_private()
    watched.requests.remove("http://127.0.0.2:9/tracker.png")
    with pytest.raises(AssertionError, match="Content-Security-Policy"):
        watched.assert_private()


def test_the_watcher_tells_the_site_from_other_origins(browser, e2e_server):
    watched = Watched.open(browser, e2e_server.url)
    watched.close()
    own = e2e_server.url
    watched.requests = [f"{own}/", f"{own}/static/css/site.css", "data:image/png;base64,AA"]
    assert watched.foreign_requests() == []
    # A look-alike host that starts with the site's address is still another origin.
    watched.requests += ["https://cdn.example/x.js", f"{own}.evil.example/x"]
    assert watched.foreign_requests() == ["https://cdn.example/x.js", f"{own}.evil.example/x"]
