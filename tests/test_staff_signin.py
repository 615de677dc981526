"""Staff sign-in: one message for unknown and wrong, throttles, lockout, TOTP, recovery codes."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from staff_support import (
    PASSWORD,
    RECOVERY_RE,
    SECRET_RE,
    create_staff,
    current_code,
    fresh_step,
    post_form,
    sign_in,
    sign_out,
    use_fast_hashing,
)
from tests_support import csrf_token

from microsite.extensions import db
from microsite.models import StaffAccount
from microsite.services import passwords, staff_accounts
from microsite.services.staff_auth import SIGN_IN_FAILED, SIGN_IN_THROTTLED


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def try_password(client, email, password):
    return post_form(client, "/staff/login", {"email": email, "password": password})


def account(email="desk@clinic.test") -> StaffAccount:
    db.session.expire_all()
    return staff_accounts.find_account(email)


def test_the_login_page_is_a_form_with_labels_and_csrf(client):
    page = client.get("/staff/login")
    assert page.status_code == 200
    assert '<label for="email">' in page.text
    assert '<label for="password">' in page.text
    assert 'name="csrf_token"' in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_a_post_without_the_csrf_token_is_refused(client, frozen_clock):
    create_staff()
    response = client.post("/staff/login", data={"email": "desk@clinic.test", "password": PASSWORD})
    assert response.status_code == 400
    assert account().failed_logins == 0


def test_unknown_account_and_wrong_password_get_the_same_answer(client, frozen_clock, monkeypatch):
    create_staff()
    checked = []
    real_verify = passwords.verify_password
    monkeypatch.setattr(
        passwords, "verify_password", lambda h, p: checked.append(h) or real_verify(h, p)
    )
    unknown = try_password(client, "ghost@clinic.test", PASSWORD)
    wrong = try_password(client, "desk@clinic.test", "not-the-password-at-all")
    assert unknown.status_code == wrong.status_code == 200
    assert SIGN_IN_FAILED in unknown.text
    assert SIGN_IN_FAILED in wrong.text
    # The unknown email was checked against a real Argon2id hash too: the same work, the same time.
    assert len(checked) == 2
    assert all(h.startswith("$argon2id$") for h in checked)
    assert checked[0] != account().password_hash


def test_password_then_enrolment_shows_qr_secret_and_ten_recovery_codes(client, frozen_clock):
    create_staff()
    response = try_password(client, "desk@clinic.test", PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/login/code")
    # Not signed in yet: the console itself still sends back to the second factor.
    assert client.get("/staff/bookings/").headers["Location"].endswith("/staff/login/code")
    assert client.get("/staff/login/code").headers["Location"].endswith("/staff/login/enrol")
    page = client.get("/staff/login/enrol")
    secret = SECRET_RE.search(page.text).group(1)
    assert "<svg" in page.text
    assert "<img" not in page.text
    assert "http" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    )
    wrong = client.post(
        "/staff/login/enrol", data={"csrf_token": csrf_token(page.text), "code": "000000"}
    )
    assert "That code did not work" in wrong.text
    assert account().mfa_enrolled_at is None
    done = client.post(
        "/staff/login/enrol",
        data={"csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).at(frozen_clock())},
    )
    assert len(RECOVERY_RE.findall(done.text)) == 10
    assert "shown only now" in done.text
    assert account().mfa_enrolled_at is not None
    assert client.get("/staff/bookings/").status_code == 200


def test_a_code_is_accepted_once_and_only_near_its_time(client, frozen_clock):
    create_staff()
    sign_in(client, frozen_clock)
    sign_out(client)
    secret = account().totp_secret
    # The same code again (a replay), in the same 30 seconds: refused.
    try_password(client, "desk@clinic.test", PASSWORD)
    replay = post_form(client, "/staff/login/code", {"code": current_code(secret)})
    assert replay.status_code == 200
    assert "That code did not work" in replay.text
    # A code from two minutes ago: refused. The current one after the step: accepted.
    frozen_clock.advance(timedelta(seconds=30))
    old = pyotp.TOTP(secret).at(frozen_clock() - timedelta(minutes=2))
    assert "did not work" in post_form(client, "/staff/login/code", {"code": old}).text
    ok = post_form(client, "/staff/login/code", {"code": current_code(secret)})
    assert ok.status_code == 303
    assert client.get("/staff/bookings/").status_code == 200


def test_recovery_codes_work_once_each(client, frozen_clock):
    create_staff()
    codes = sign_in(client, frozen_clock)
    stored = [
        r[0] for r in db.session.execute(db.text("SELECT code_hash FROM staff_recovery_code"))
    ]
    assert len(stored) == 10
    assert not set(codes) & set(stored)
    sign_out(client)

    try_password(client, "desk@clinic.test", PASSWORD)
    used = post_form(client, "/staff/login/recovery", {"code": codes[0].upper()})
    assert used.status_code == 303
    assert client.get("/staff/bookings/").status_code == 200
    sign_out(client)

    try_password(client, "desk@clinic.test", PASSWORD)
    again = post_form(client, "/staff/login/recovery", {"code": codes[0]})
    assert "has been used already" in again.text
    assert client.get("/staff/bookings/").status_code == 303


def test_too_many_wrong_codes_send_back_to_the_password(client, frozen_clock, app):
    create_staff()
    sign_in(client, frozen_clock)
    sign_out(client)
    try_password(client, "desk@clinic.test", PASSWORD)
    for _ in range(app.config["STAFF_MFA_MAX_FAILURES"]):
        post_form(client, "/staff/login/code", {"code": "123456"})
    response = client.get("/staff/login/code")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/staff/login")
    assert account().failed_logins == 1


def test_per_account_throttle_pauses_known_and_unknown_emails_alike(client, frozen_clock, app):
    create_staff()
    limit = app.config["STAFF_LOGIN_MAX_PER_ACCOUNT"]
    for email in ("desk@clinic.test", "ghost@clinic.test"):
        for _ in range(limit):
            assert SIGN_IN_FAILED in try_password(client, email, "wrong-password-here").text
        paused = try_password(client, email, PASSWORD if email.startswith("desk") else "x" * 12)
        assert paused.status_code == 429
        assert SIGN_IN_THROTTLED in paused.text
    # The right password during the pause does not get in; after the window it does.
    frozen_clock.advance(timedelta(minutes=app.config["STAFF_LOGIN_WINDOW_MINUTES"], seconds=1))
    assert try_password(client, "desk@clinic.test", PASSWORD).status_code == 303


def test_per_address_throttle(client, frozen_clock, app):
    app.config["STAFF_LOGIN_MAX_PER_ADDRESS"] = 3
    for n in range(3):
        try_password(client, f"guess{n}@clinic.test", "wrong-password-here")
    create_staff()
    paused = try_password(client, "desk@clinic.test", PASSWORD)
    assert paused.status_code == 429
    other_address = app.test_client()
    page = other_address.get("/staff/login", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    response = other_address.post(
        "/staff/login",
        data={
            "csrf_token": csrf_token(page.text),
            "email": "desk@clinic.test",
            "password": PASSWORD,
        },
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert response.status_code == 303


def test_lockout_holds_until_an_admin_unlocks(client, frozen_clock, app):
    app.config["STAFF_LOGIN_MAX_PER_ACCOUNT"] = 1000  # only the lockout is under test here
    create_staff()
    for _ in range(app.config["STAFF_LOCKOUT_AFTER"]):
        try_password(client, "desk@clinic.test", "wrong-password-here")
    assert account().locked_at is not None
    frozen_clock.advance(timedelta(days=2))
    locked = try_password(client, "desk@clinic.test", PASSWORD)
    assert locked.status_code == 200
    assert SIGN_IN_FAILED in locked.text
    result = app.test_cli_runner().invoke(args=["staff", "unlock", "desk@clinic.test"])
    assert result.exit_code == 0
    assert try_password(client, "desk@clinic.test", PASSWORD).status_code == 303


def test_a_disabled_account_cannot_sign_in(client, frozen_clock):
    create_staff()
    staff_accounts.disable_account("desk@clinic.test")
    response = try_password(client, "desk@clinic.test", PASSWORD)
    assert SIGN_IN_FAILED in response.text


def test_reset_mfa_enrols_again_with_a_new_secret(client, frozen_clock):
    create_staff()
    sign_in(client, frozen_clock)
    old_secret = account().totp_secret
    staff_accounts.reset_mfa("desk@clinic.test")
    assert client.get("/staff/bookings/").status_code == 303  # its session ended
    codes = sign_in(client, frozen_clock)
    assert len(codes) == 10
    assert account().totp_secret != old_secret


def test_fresh_step_helper_moves_past_the_used_step(app, frozen_clock):
    create_staff()
    acc = account()
    acc.totp_last_step = int(frozen_clock().timestamp()) // 30
    db.session.commit()
    before = frozen_clock()
    fresh_step(frozen_clock, acc.id)
    assert frozen_clock() - before == timedelta(seconds=30)
