"""Test support for the staff console: accounts, signing in through the real pages, codes."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher, profiles
from tests_support import csrf_token

from microsite import clock
from microsite.database import write_transaction
from microsite.extensions import db
from microsite.models import StaffAccount
from microsite.services import passwords, staff_accounts, staff_auth
from microsite.views.staff.access import SESSION_KEY

PASSWORD = "harbor-kettle-lantern-42"
SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
RECOVERY_RE = re.compile(r"<li><code>([a-z0-9-]{14})</code></li>")


def use_fast_hashing(monkeypatch) -> None:
    """Argon2id with the cheapest parameters: the same code path, a fraction of the time."""
    monkeypatch.setattr(passwords, "hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
    passwords._dummy_hash.cache_clear()


def create_staff(
    email: str = "desk@clinic.test",
    *,
    role: str = "frontdesk",
    name: str = "Dana Desk",
    clinician_id: int | None = None,
) -> StaffAccount:
    return staff_accounts.create_account(
        email, name=name, role=role, password=PASSWORD, clinician_id=clinician_id
    )


def post_form(client, page_url: str, data: dict, *, to: str | None = None):
    """GET a page for its CSRF token, then POST the form (to `to`, default the same URL)."""
    page = client.get(page_url)
    return client.post(to or page_url, data={"csrf_token": csrf_token(page.text), **data})


def current_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def fresh_step(frozen_clock, account_id: int) -> None:
    """Move the frozen clock past the last accepted step: a code is never accepted twice."""
    db.session.expire_all()
    account = db.session.get(StaffAccount, account_id)
    last = account.totp_last_step
    while last is not None and int(clock.now().timestamp()) // 30 <= last:
        frozen_clock.advance(timedelta(seconds=30))


def sign_in(client, frozen_clock, email: str = "desk@clinic.test", password: str = PASSWORD):
    """Sign in through the pages (password, then enrolment or a code). Returns recovery codes
    when this sign-in enrolled the account, else an empty list."""
    response = post_form(client, "/staff/login", {"email": email, "password": password})
    assert response.status_code == 303, response.text
    account = staff_accounts.find_account(email)
    if account.mfa_enrolled_at is None:
        page = client.get("/staff/login/enrol")
        secret = SECRET_RE.search(page.text).group(1)
        done = client.post(
            "/staff/login/enrol",
            data={"csrf_token": csrf_token(page.text), "code": current_code(secret)},
        )
        assert done.status_code == 200, done.text
        codes = RECOVERY_RE.findall(done.text)
        assert len(codes) == 10
        return codes
    fresh_step(frozen_clock, account.id)
    db.session.expire_all()
    secret = db.session.get(StaffAccount, account.id).totp_secret
    done = post_form(client, "/staff/login/code", {"code": current_code(secret)})
    assert done.status_code == 303, done.text
    return []


def sign_out(client):
    """Press "Sign out" on a console page."""
    page = client.get("/staff/bookings/")
    return client.post("/staff/logout", data={"csrf_token": csrf_token(page.text)})


def quick_sign_in(client, account: StaffAccount) -> None:
    """A signed-in session without the pages (for tests about what comes after sign-in):
    the account counts as enrolled, and the browser holds a fresh session's token."""
    with write_transaction():
        stored = db.session.get(StaffAccount, account.id)
        stored.mfa_enrolled_at = stored.mfa_enrolled_at or clock.now()
        stored.totp_secret = stored.totp_secret or "JBSWY3DPEHPK3PXP"
        new_session = staff_auth._new_session(stored, mfa_passed=True)
    with client.session_transaction() as cookie_session:
        cookie_session[SESSION_KEY] = new_session.token
