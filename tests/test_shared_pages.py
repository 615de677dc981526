"""Pages rendered once and reused: a fresh nonce, the right headers, and nothing personal."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from booking_helpers import VALID_DETAILS, open_form, submit
from flask import render_template_string, session, template_rendered
from sqlalchemy import select

from microsite import page_cache
from microsite.extensions import db
from microsite.models import Booking

NONCE_IN_HEADER = re.compile(r"'nonce-([^']+)'")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>")
TUESDAY = "2026-12-01"
TUESDAY_9AM_KEY = "any-20261201T1400Z"  # 09:00 EST


@pytest.fixture
def app_config(app_config):
    # The production defaults for the caches (the suite turns them off elsewhere).
    app_config.update(SLOT_CACHE_SECONDS=2, SCHEDULE_CACHE_SECONDS=2)
    return app_config


@pytest.fixture
def consultation_type(app, frozen_clock, make_clinician, make_consultation_type):
    make_clinician()
    return make_consultation_type()


@pytest.fixture
def renders(app):
    """Names of the templates rendered, request by request."""
    names: list[str] = []

    def record(_sender, template, context, **_extra):
        names.append(template.name)

    template_rendered.connect(record, app)
    yield names
    template_rendered.disconnect(record, app)


def picker_url(type_id: int) -> str:
    return f"/book/?type={type_id}&week={TUESDAY}&day={TUESDAY}"


def shared_paths(type_id: int) -> list[str]:
    return ["/", "/faq", "/privacy", "/book/", picker_url(type_id)]


def nonces(response) -> tuple[str, list[str]]:
    """The CSP header's nonce, and the nonce of every inline script in the page."""
    header = NONCE_IN_HEADER.search(response.headers["Content-Security-Policy"]).group(1)
    scripts = INLINE_SCRIPT.findall(response.get_data(as_text=True))
    return header, [re.search(r'nonce="([^"]*)"', tag).group(1) for tag in scripts]


def test_a_reused_page_gets_a_fresh_nonce_matching_its_header(client, consultation_type, renders):
    for path in shared_paths(consultation_type.id):
        first = client.get(path)
        renders.clear()
        second = client.get(path)
        assert renders == [], f"{path} was rendered again instead of reused"
        (nonce_1, in_page_1), (nonce_2, in_page_2) = nonces(first), nonces(second)
        assert nonce_1 != nonce_2
        assert in_page_1, f"{path} has no inline script to check"
        assert set(in_page_1) == {nonce_1}
        assert set(in_page_2) == {nonce_2}
        # Apart from the nonce, the reused page is the page.
        html_2 = second.get_data(as_text=True).replace(nonce_2, nonce_1)
        assert html_2 == first.get_data(as_text=True)


def test_a_reused_page_carries_the_same_headers(client, consultation_type):
    for path in shared_paths(consultation_type.id):
        first, second = client.get(path), client.get(path)
        assert first.status_code == second.status_code == 200
        for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"):
            assert second.headers[name] == first.headers[name]
        assert second.headers.get("Cache-Control") == first.headers.get("Cache-Control")
        assert "unsafe-inline" not in second.headers["Content-Security-Policy"]
        assert "Set-Cookie" not in second.headers  # nothing about this visitor was stored
    # The booking steps stay out of browser and proxy caches, reused or not.
    assert client.get(picker_url(consultation_type.id)).headers["Cache-Control"] == "no-store"


def test_a_page_with_a_csrf_token_is_never_shared(app):
    form = '<form method="post"><input name="csrf_token" value="{{ csrf_token() }}"></form>'
    app.add_url_rule(
        "/test/form",
        "test_form",
        lambda: page_cache.shared_html(("form",), lambda: render_template_string(form)),
    )
    tokens = []
    for _ in range(2):
        html = app.test_client().get("/test/form").get_data(as_text=True)
        tokens.append(re.search(r'value="([^"]+)"', html).group(1))
    assert tokens[0] != tokens[1]


def test_a_page_that_reads_the_session_is_never_shared(app):
    def remember():
        session["name"] = "Jane Q. Patient"
        return "ok"

    greeting = "Hello {{ session.get('name', 'visitor') }}"
    app.add_url_rule("/test/remember", "test_remember", remember)
    app.add_url_rule(
        "/test/greeting",
        "test_greeting",
        lambda: page_cache.shared_html(("greeting",), lambda: render_template_string(greeting)),
    )
    patient, stranger = app.test_client(), app.test_client()
    patient.get("/test/remember")
    assert patient.get("/test/greeting").get_data(as_text=True) == "Hello Jane Q. Patient"
    assert stranger.get("/test/greeting").get_data(as_text=True) == "Hello visitor"


def test_no_form_token_or_patient_detail_reaches_a_second_client(app, consultation_type):
    patient, stranger = app.test_client(), app.test_client()
    response, patient_fields = open_form(patient, consultation_type.id, TUESDAY_9AM_KEY)
    assert submit(patient, consultation_type.id, TUESDAY_9AM_KEY).status_code == 303
    reference = db.session.scalars(select(Booking.reference)).one()
    assert reference in patient.get("/book/confirmed").get_data(as_text=True)

    _, stranger_fields = open_form(stranger, consultation_type.id, "any-20261201T1500Z")
    assert stranger_fields["csrf_token"] != patient_fields["csrf_token"]
    for path in [*shared_paths(consultation_type.id), "/book/details"]:
        html = stranger.get(path).get_data(as_text=True)
        for private in (
            VALID_DETAILS["full_name"],
            VALID_DETAILS["email"],
            VALID_DETAILS["note"],
            patient_fields["csrf_token"],
            reference,
        ):
            assert private not in html, f"{path} showed a detail of another visitor"
    assert stranger.get("/book/confirmed").status_code == 404


def test_the_reused_picker_forgets_a_time_this_process_booked(client, consultation_type):
    url = picker_url(consultation_type.id)
    assert f"slot={TUESDAY_9AM_KEY}" in client.get(url).get_data(as_text=True)
    assert submit(client, consultation_type.id, TUESDAY_9AM_KEY).status_code == 303
    assert f"slot={TUESDAY_9AM_KEY}" not in client.get(url).get_data(as_text=True)


def test_an_edited_consultation_type_shows_once_the_schedule_cache_expires(
    client, consultation_type, frozen_clock
):
    assert "Initial consultation — in person" in client.get("/book/").get_data(as_text=True)
    consultation_type.name = "First consultation at the clinic"
    db.session.commit()  # as staff would, from another process
    frozen_clock.advance(timedelta(seconds=2))
    html = client.get("/book/").get_data(as_text=True)
    assert "First consultation at the clinic" in html
    assert "Initial consultation — in person" not in html


def test_an_unknown_type_is_a_404_every_time_not_a_stored_page(client, consultation_type):
    for _ in range(2):
        assert client.get(f"/book/?type={consultation_type.id + 1000}").status_code == 404
    assert client.get(picker_url(consultation_type.id)).status_code == 200
