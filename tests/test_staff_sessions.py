"""Staff sessions: 15 minutes idle, 8 hours at most, and ended for real (a copied cookie fails)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from staff_support import (
    PASSWORD,
    create_staff,
    current_code,
    fresh_step,
    post_form,
    sign_in,
    sign_out,
    use_fast_hashing,
)

from microsite.services import staff_accounts


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def signed_in(response) -> bool:
    return response.status_code == 200


def copy_of(app, client):
    """Another browser holding a copy of this one's session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def test_idle_for_15_minutes_ends_the_session(client, frozen_clock):
    create_staff()
    sign_in(client, frozen_clock)
    frozen_clock.advance(timedelta(minutes=14, seconds=59))
    assert signed_in(client.get("/staff/bookings/"))  # activity keeps it alive ...
    frozen_clock.advance(timedelta(minutes=14, seconds=59))
    assert signed_in(client.get("/staff/bookings/"))
    frozen_clock.advance(timedelta(minutes=15, seconds=1))  # ... idleness ends it
    response = client.get("/staff/bookings/")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/login")


def test_eight_hours_is_the_longest_session_however_busy(client, frozen_clock):
    create_staff()
    sign_in(client, frozen_clock)
    for _ in range(8 * 6):
        frozen_clock.advance(timedelta(minutes=10))
        assert signed_in(client.get("/staff/bookings/"))
    # Exactly 8 h after sign-in it still works; the next request after that does not.
    frozen_clock.advance(timedelta(minutes=1))
    assert not signed_in(client.get("/staff/bookings/"))


def test_sign_out_ends_the_session_even_for_a_copied_cookie(app, client, frozen_clock):
    create_staff()
    sign_in(client, frozen_clock)
    thief = copy_of(app, client)
    assert signed_in(thief.get("/staff/bookings/"))
    response = sign_out(client)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/login")
    assert not signed_in(client.get("/staff/bookings/"))
    assert not signed_in(thief.get("/staff/bookings/"))


@pytest.mark.parametrize(
    "end_it",
    [
        lambda: staff_accounts.disable_account("desk@clinic.test"),
        lambda: staff_accounts.set_password("desk@clinic.test", "a-brand-new-passphrase-9"),
        lambda: staff_accounts.reset_mfa("desk@clinic.test"),
    ],
    ids=["disable", "password-reset", "mfa-reset"],
)
def test_account_changes_end_every_session(app, client, frozen_clock, end_it):
    create_staff()
    sign_in(client, frozen_clock)
    thief = copy_of(app, client)
    end_it()
    assert not signed_in(client.get("/staff/bookings/"))
    assert not signed_in(thief.get("/staff/bookings/"))


def test_re_enabling_an_account_does_not_revive_its_old_sessions(app, client, frozen_clock):
    """Disabling ends the sessions themselves, not only the account's right to use them."""
    create_staff()
    sign_in(client, frozen_clock)
    thief = copy_of(app, client)
    staff_accounts.disable_account("desk@clinic.test")
    staff_accounts.enable_account("desk@clinic.test")
    assert not signed_in(client.get("/staff/bookings/"))
    assert not signed_in(thief.get("/staff/bookings/"))


def test_the_old_token_stops_working_when_the_second_factor_is_passed(app, client, frozen_clock):
    """Session fixation: the cookie from before the code is not the signed-in one."""
    create_staff()
    sign_in(client, frozen_clock)
    sign_out(client)
    post_form(client, "/staff/login", {"email": "desk@clinic.test", "password": PASSWORD})
    before_code = copy_of(app, client)
    account = staff_accounts.find_account("desk@clinic.test")
    fresh_step(frozen_clock, account.id)
    post_form(client, "/staff/login/code", {"code": current_code(account.totp_secret)})
    assert signed_in(client.get("/staff/bookings/"))
    assert before_code.get("/staff/bookings/").status_code == 303


def test_every_staff_response_is_no_store(client, frozen_clock):
    create_staff()
    for url in ("/staff/login", "/staff/bookings/", "/staff/nowhere"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url
    sign_in(client, frozen_clock)
    for url in ("/staff/", "/staff/bookings/", "/staff/export/", "/staff/bookings/999999"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url


def test_staff_sign_out_leaves_a_patients_confirmation_in_the_same_browser(client, frozen_clock):
    create_staff()
    with client.session_transaction() as cookie_session:
        cookie_session["confirmed_booking_id"] = 42
    sign_in(client, frozen_clock)
    sign_out(client)
    with client.session_transaction() as cookie_session:
        assert cookie_session["confirmed_booking_id"] == 42
        assert not any(key.startswith("staff") for key in cookie_session)
