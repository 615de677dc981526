"""Every HTML response, error pages included, carries the strict headers patients' privacy needs."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from microsite.extensions import db


@pytest.mark.parametrize("path", ["/", "/book/", "/no-such-page"])
def test_strict_headers_on_every_page(client, path):
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "object-src 'none'" in csp
    assert "base-uri 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/healthz", "/api/slots", "/robots.txt"])
def test_responses_that_are_not_pages_may_load_nothing(client, path):
    response = client.get(path)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_each_response_gets_its_own_nonce_and_inline_scripts_carry_it(client):
    first = client.get("/")
    second = client.get("/")
    nonce = re.search(r"'nonce-([^']+)'", first.headers["Content-Security-Policy"]).group(1)
    other = re.search(r"'nonce-([^']+)'", second.headers["Content-Security-Policy"]).group(1)
    assert nonce != other
    for script in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", first.get_data(as_text=True)):
        assert f'nonce="{nonce}"' in script


def test_method_not_allowed_is_405_with_a_page_not_a_traceback(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert "Traceback" not in response.get_data(as_text=True)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app, is_postgres):
    if is_postgres:
        pytest.skip("SQLite pragmas: this run's database is PostgreSQL, which has none")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        # Well below gunicorn's 30 s worker timeout: a held lock gives a 503, not a dead worker.
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 3000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
