"""Forwarded headers count only from the proxies the operator configured (PROXY_FIX_X_*)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from booking_helpers import slot_key_for
from flask import request

from microsite import create_app

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
SPOOFED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
}


def app_with(app_config, **settings):
    # The forwarded host names below are trusted here, so the 400 for an unknown host
    # (tests/test_hosts.py) does not hide what ProxyFix did with them.
    hosts = [*app_config["TRUSTED_HOSTS"], "www.bluewater-psychiatry.example", "evil.example"]
    app = create_app({**app_config, "TRUSTED_HOSTS": hosts, **settings})

    # What the rate limiter, HSTS and url_for see of the client (Flask-Limiter keys on
    # request.remote_addr).
    @app.get("/_seen")
    def seen():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return app


def booking_form_url(make_clinician, make_consultation_type) -> str:
    clinician, consultation_type = make_clinician(), make_consultation_type()
    return (
        f"/book/details?type={consultation_type.id}&slot={slot_key_for(TUESDAY_9AM, clinician.id)}"
    )


def test_without_a_configured_proxy_forwarded_headers_are_ignored(
    app_config, frozen_clock, make_clinician, make_consultation_type
):
    client = app_with(app_config).test_client()
    seen = client.get("/_seen", headers=SPOOFED).get_json()
    assert seen == {"remote_addr": "127.0.0.1", "scheme": "http", "host": "localhost"}
    page = client.get(booking_form_url(make_clinician, make_consultation_type), headers=SPOOFED)
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page.headers
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("session=")
    assert "Secure" not in cookie


def test_behind_one_trusted_proxy_the_client_and_https_are_seen(
    app_config, frozen_clock, make_clinician, make_consultation_type
):
    client = app_with(
        app_config, PROXY_FIX_X_FOR=1, PROXY_FIX_X_PROTO=1, PROXY_FIX_X_HOST=1
    ).test_client()
    # The client sent its own X-Forwarded-For; the proxy appended the address it saw.
    headers = {**SPOOFED, "X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    headers["X-Forwarded-Host"] = "www.bluewater-psychiatry.example"
    seen = client.get("/_seen", headers=headers).get_json()
    assert seen == {
        "remote_addr": "203.0.113.7",  # the one the proxy saw, not the one the client made up
        "scheme": "https",
        "host": "www.bluewater-psychiatry.example",
    }
    page = client.get(booking_form_url(make_clinician, make_consultation_type), headers=headers)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "Path=/" in cookie
    assert "Domain=" not in cookie


def test_a_plain_http_request_through_the_proxy_gets_no_hsts(app_config):
    client = app_with(app_config, PROXY_FIX_X_PROTO=1).test_client()
    response = client.get("/faq", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("setting", ["PROXY_FIX_X_FOR", "PROXY_FIX_X_HOST"])
def test_trusting_one_header_does_not_trust_the_others(app_config, setting):
    client = app_with(app_config, **{setting: 1}).test_client()
    seen = client.get("/_seen", headers=SPOOFED).get_json()
    assert seen["scheme"] == "http"
    if setting == "PROXY_FIX_X_FOR":
        assert seen == {"remote_addr": "203.0.113.7", "scheme": "http", "host": "localhost"}
    else:
        assert seen == {"remote_addr": "127.0.0.1", "scheme": "http", "host": "evil.example"}


def test_an_operator_who_names_the_cookie_keeps_that_name(app_config):
    app = create_app({**app_config, "SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_NAME": "bw"})
    assert app.config["SESSION_COOKIE_NAME"] == "bw"
    secure_only = create_app({**app_config, "SESSION_COOKIE_SECURE": True})
    assert secure_only.config["SESSION_COOKIE_NAME"] == "__Host-session"
