"""The console's accounts pages: admins list, create, disable, unlock, re-role and reset accounts.

Each action is checked the way an admin and the affected person would notice it: the page, the
sign-in that now works or fails, the sessions that end, and the audit row it leaves.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from staff_support import (
    PASSWORD,
    create_staff,
    post_form,
    quick_sign_in,
    sign_in,
    use_fast_hashing,
)

from microsite.extensions import db
from microsite.models import AuditEvent, StaffAccount
from microsite.services import passwords, staff_accounts
from microsite.services.staff_accounts import StaffAccountError
from microsite.services.staff_auth import SIGN_IN_FAILED

NEW_PASSWORD = "copper-meadow-violin-81"


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


@pytest.fixture
def admin(client, frozen_clock):
    """A signed-in admin in `client`; returns the account."""
    account = create_staff("admin@clinic.test", role="admin", name="Ada Admin")
    quick_sign_in(client, account)
    return account


@pytest.fixture
def desk(app, frozen_clock):
    """The front-desk account, signed in through the pages in a browser of its own."""
    account = create_staff("desk@clinic.test")
    browser = app.test_client()
    sign_in(browser, frozen_clock)
    return account, browser


def stored(email: str) -> StaffAccount:
    db.session.expire_all()
    return staff_accounts.find_account(email)


def is_signed_in(browser) -> bool:
    return browser.get("/staff/bookings/").status_code == 200


def audit_rows(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def press(client, account_id: int, action: str, data: dict | None = None):
    """Press a button (or submit a form) on an account's page."""
    url = f"/staff/accounts/{account_id}"
    return post_form(client, url, data or {}, to=f"{url}/{action}")


def try_password(app, email: str, password: str):
    return post_form(app.test_client(), "/staff/login", {"email": email, "password": password})


def assert_audited(action: str, actor: StaffAccount, target_id: int) -> None:
    """One row of this action by the admin in the console, naming the account by its id."""
    rows = [r for r in audit_rows(action) if r.actor_account_id is not None]
    assert [(r.actor_account_id, r.detail.split()[:2]) for r in rows] == [
        (actor.id, ["account", str(target_id)])
    ]
    for row in rows:  # no email, no password, no name
        assert "@" not in row.detail
        assert PASSWORD not in row.detail
        assert NEW_PASSWORD not in row.detail


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_each_account_and_its_state(client, admin, desk, make_clinician):
    clinician = make_clinician(name="Dr Okafor", email="okafor@clinic.test")
    create_staff(
        "okafor@clinic.test", role="clinician", name="Dr Okafor", clinician_id=clinician.id
    )
    staff_accounts.disable_account("okafor@clinic.test")
    page = client.get("/staff/accounts/")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<tr>\s*<td><a[^>]*>([^<]+)</a>.*?</tr>", page.text, re.S)
    }
    assert set(rows) == {"Ada Admin", "Dana Desk", "Dr Okafor"}
    assert "desk@clinic.test" in rows["Dana Desk"]
    assert "Front desk" in rows["Dana Desk"]
    assert "Enabled" in rows["Dana Desk"]
    assert "Set up" in rows["Dana Desk"]  # enrolled at its sign-in
    assert "Never" not in rows["Dana Desk"]  # ... which is its last sign-in
    assert "Clinician" in rows["Dr Okafor"]
    assert "<td>Dr Okafor</td>" in rows["Dr Okafor"]  # the linked clinician
    assert "Disabled" in rows["Dr Okafor"]
    assert "Not set up yet" in rows["Dr Okafor"]
    assert "Never" in rows["Dr Okafor"]


def test_only_admins_see_the_accounts_link(client, frozen_clock):
    desk = create_staff()
    quick_sign_in(client, desk)
    assert "/staff/accounts/" not in client.get("/staff/bookings/").text
    assert client.get("/staff/accounts/").status_code == 403
    admin = create_staff("admin@clinic.test", role="admin")
    quick_sign_in(client, admin)
    assert 'href="/staff/accounts/"' in client.get("/staff/bookings/").text


def test_markup_in_a_name_shows_as_text_and_pages_keep_the_csp(client, admin):
    markup = '<script>alert("x")</script><b>Bo</b>'
    created = post_form(
        client,
        "/staff/accounts/new",
        {
            "name": markup,
            "email": "bo@clinic.test",
            "role": "frontdesk",
            "clinician": "",
            "password": PASSWORD,
            "repeat": PASSWORD,
        },
    )
    assert created.status_code == 303
    bo = stored("bo@clinic.test")
    for url in ("/staff/accounts/", f"/staff/accounts/{bo.id}", "/staff/accounts/new"):
        page = client.get(url)
        assert markup not in page.text, url
        assert "<b>Bo</b>" not in page.text, url
        csp = page.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        for tag in re.findall(r"<script\b[^>]*>", page.text):
            assert f'nonce="{nonce}"' in tag, (url, tag)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/staff/accounts/").text


@pytest.mark.parametrize(
    "url",
    [
        "/staff/accounts/999999",
        "/staff/accounts/999999/disable",
        "/staff/accounts/999999/enable",
        "/staff/accounts/999999/unlock",
        "/staff/accounts/999999/reset-mfa",
        "/staff/accounts/999999/role",
        "/staff/accounts/999999/password",
    ],
)
def test_unknown_accounts_are_404(client, admin, url):
    if url.count("/") == 3:
        assert client.get(url).status_code == 404
    else:
        data = {"role": "admin", "clinician": "", "password": NEW_PASSWORD, "repeat": NEW_PASSWORD}
        assert post_form(client, "/staff/accounts/", data, to=url).status_code == 404


def test_every_action_needs_the_csrf_token(client, admin, desk):
    account, browser = desk
    for action in ("disable", "reset-mfa", "password", "role"):
        response = client.post(
            f"/staff/accounts/{account.id}/{action}",
            data={"role": "admin", "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
        )
        assert response.status_code == 400, action
    refused = client.post(
        "/staff/accounts/new",
        data={"name": "X", "email": "x@clinic.test", "role": "admin"}
        | {"password": PASSWORD, "repeat": PASSWORD},
    )
    assert refused.status_code == 400
    assert stored("x@clinic.test") is None
    assert stored("desk@clinic.test").role == "frontdesk"
    assert is_signed_in(browser)  # nothing happened to it
    assert audit_rows("account.disabled") == []


def test_the_actions_are_post_only(client, admin, desk):
    account, _browser = desk
    for action in ("disable", "enable", "unlock", "reset-mfa", "role", "password"):
        assert client.get(f"/staff/accounts/{account.id}/{action}").status_code == 405


# --- create ------------------------------------------------------------------------------


def new_account(client, **fields):
    data = {
        "name": "Noor New",
        "email": "Noor@Clinic.test",
        "role": "frontdesk",
        "clinician": "",
        "password": PASSWORD,
        "repeat": PASSWORD,
    } | fields
    return post_form(client, "/staff/accounts/new", data)


def test_an_admin_creates_an_account_that_can_sign_in_and_enrol(app, client, admin):
    response = new_account(client)
    assert response.status_code == 303
    noor = stored("noor@clinic.test")
    assert response.headers["Location"].endswith(f"/staff/accounts/{noor.id}")
    assert (noor.name, noor.role, noor.is_active) == ("Noor New", "frontdesk", True)
    assert noor.password_hash.startswith("$argon2id$")
    assert noor.mfa_enrolled_at is None
    assert_audited("account.created", admin, noor.id)
    page = client.get(response.headers["Location"])
    assert "Created the account of Noor New" in page.text
    signed_in = try_password(app, "noor@clinic.test", PASSWORD)
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"].endswith("/staff/login/code")  # then: enrol


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "short-pw", "repeat": "short-pw"}, "at least 12 characters"),
        ({"password": "password1234", "repeat": "password1234"}, "too common"),
        ({"password": "noor@clinic.test", "repeat": "noor@clinic.test"}, "name or email"),
        ({"repeat": "something-else-entirely"}, "not the same"),
        ({"role": "clinician"}, "Choose the clinician"),
        ({"email": "desk@clinic.test"}, "exists already"),
        ({"email": "not-an-address"}, "needs an email address"),
        ({"role": "root"}, "Not a valid choice"),
        ({"name": ""}, "Enter the person"),
    ],
)
def test_create_refuses_what_the_command_line_refuses(client, admin, fields, message):
    create_staff("desk@clinic.test")
    response = new_account(client, **fields)
    assert response.status_code == 422
    assert message in response.text
    assert PASSWORD not in response.text  # a password field is never filled in again
    email = fields.get("email", "noor@clinic.test")
    assert stored(email) is None or email == "desk@clinic.test"
    assert len(audit_rows("account.created")) == 2  # the two made by create_staff only


def test_a_clinician_account_is_linked_to_the_chosen_clinician(client, admin, make_clinician):
    clinician = make_clinician(name="Dr Okafor", email="okafor@clinic.test")
    response = new_account(client, role="clinician", clinician=str(clinician.id))
    assert response.status_code == 303
    assert stored("noor@clinic.test").clinician_id == clinician.id
    refused = new_account(client, email="b@clinic.test", clinician=str(clinician.id))
    assert refused.status_code == 422
    assert "Only a clinician account is linked" in refused.text


# --- disable, enable, unlock -------------------------------------------------------------


def test_disabling_ends_every_session_and_stops_sign_in(app, client, admin, desk):
    account, browser = desk
    copied = app.test_client()
    copied.set_cookie("session", browser.get_cookie("session").value)
    response = press(client, account.id, "disable")
    assert response.status_code == 303
    assert "its sessions have ended" in client.get(response.headers["Location"]).text
    assert stored("desk@clinic.test").is_active is False
    assert not is_signed_in(browser)
    assert not is_signed_in(copied)
    assert SIGN_IN_FAILED in try_password(app, "desk@clinic.test", PASSWORD).text
    assert_audited("account.disabled", admin, account.id)

    assert press(client, account.id, "enable").status_code == 303
    assert stored("desk@clinic.test").is_active is True
    assert try_password(app, "desk@clinic.test", PASSWORD).status_code == 303
    assert_audited("account.enabled", admin, account.id)


def test_an_admin_lifts_a_lockout(app, client, admin):
    app.config["STAFF_LOGIN_MAX_PER_ACCOUNT"] = 1000  # only the lockout is under test here
    account = create_staff("desk@clinic.test")
    for _ in range(app.config["STAFF_LOCKOUT_AFTER"]):
        try_password(app, "desk@clinic.test", "wrong-password-here")
    assert stored("desk@clinic.test").locked_at is not None
    page = client.get(f"/staff/accounts/{account.id}")
    assert "locked since" in page.text
    assert "Lift the lock" in page.text
    assert "locked" in client.get("/staff/accounts/").text
    assert SIGN_IN_FAILED in try_password(app, "desk@clinic.test", PASSWORD).text

    assert press(client, account.id, "unlock").status_code == 303
    assert stored("desk@clinic.test").locked_at is None
    assert try_password(app, "desk@clinic.test", PASSWORD).status_code == 303
    assert_audited("account.unlocked", admin, account.id)
    assert "Lift the lock" not in client.get(f"/staff/accounts/{account.id}").text


# --- second factor and password -----------------------------------------------------------


def test_resetting_the_second_factor_ends_sessions_and_enrols_again(
    client, frozen_clock, admin, desk
):
    account, browser = desk
    old_secret = stored("desk@clinic.test").totp_secret
    assert press(client, account.id, "reset-mfa").status_code == 303
    assert not is_signed_in(browser)
    again = stored("desk@clinic.test")
    assert again.mfa_enrolled_at is None
    assert again.totp_secret is None
    codes = sign_in(browser, frozen_clock)  # enrolment again, with new recovery codes
    assert len(codes) == 10
    assert stored("desk@clinic.test").totp_secret != old_secret
    assert_audited("account.mfa_reset", admin, account.id)


def test_a_new_password_ends_sessions_and_replaces_the_old_one(app, client, admin, desk):
    account, browser = desk
    response = press(
        client, account.id, "password", {"password": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    )
    assert response.status_code == 303
    assert not is_signed_in(browser)
    assert SIGN_IN_FAILED in try_password(app, "desk@clinic.test", PASSWORD).text
    assert try_password(app, "desk@clinic.test", NEW_PASSWORD).status_code == 303
    assert passwords.verify_password(stored("desk@clinic.test").password_hash, NEW_PASSWORD)
    assert_audited("account.password_reset", admin, account.id)


@pytest.mark.parametrize(
    ("password", "repeat", "message"),
    [
        ("password1234", "password1234", "too common"),
        ("short", "short", "at least 12 characters"),
        (NEW_PASSWORD, "a-different-passphrase", "not the same"),
    ],
)
def test_a_weak_or_mistyped_new_password_changes_nothing(
    app, client, admin, desk, password, repeat, message
):
    account, browser = desk
    response = press(client, account.id, "password", {"password": password, "repeat": repeat})
    assert response.status_code == 422
    assert message in response.text
    assert is_signed_in(browser)
    assert try_password(app, "desk@clinic.test", PASSWORD).status_code == 303
    assert audit_rows("account.password_reset") == []


# --- roles and the last admin ------------------------------------------------------------


def test_a_new_role_applies_at_the_next_request(client, admin, desk, make_clinician):
    account, browser = desk
    assert browser.get("/staff/audit/").status_code == 403
    response = press(client, account.id, "role", {"role": "admin", "clinician": ""})
    assert response.status_code == 303
    assert browser.get("/staff/audit/").status_code == 200
    rows = audit_rows("account.role_changed")
    assert [r.detail for r in rows] == [f"account {account.id} frontdesk to admin"]
    assert rows[0].actor_account_id == admin.id

    clinician = make_clinician(name="Dr Okafor", email="okafor@clinic.test")
    missing = press(client, account.id, "role", {"role": "clinician", "clinician": ""})
    assert missing.status_code == 422
    assert "Choose the clinician" in missing.text
    linked = press(
        client, account.id, "role", {"role": "clinician", "clinician": str(clinician.id)}
    )
    assert linked.status_code == 303
    assert (stored("desk@clinic.test").role, stored("desk@clinic.test").clinician_id) == (
        "clinician",
        clinician.id,
    )


def test_the_only_admin_can_neither_disable_nor_demote_themself(client, admin):
    for action, data in (("disable", {}), ("role", {"role": "frontdesk", "clinician": ""})):
        response = press(client, admin.id, action, data)
        assert response.status_code == 409, action
        assert "only enabled admin account" in response.text
        assert is_signed_in(client)
    still = stored("admin@clinic.test")
    assert (still.role, still.is_active) == ("admin", True)
    assert audit_rows("account.disabled") == audit_rows("account.role_changed") == []


def test_with_another_admin_an_admin_may_step_down(app, client, admin):
    create_staff("second@clinic.test", role="admin", name="Sam Second")
    response = press(client, admin.id, "role", {"role": "frontdesk", "clinician": ""})
    assert response.status_code == 303
    assert stored("admin@clinic.test").role == "frontdesk"
    assert client.get("/staff/accounts/").status_code == 403  # at once
    # Sam is now the only admin: nobody can disable that account, not even the command line.
    sam = stored("second@clinic.test")
    with pytest.raises(StaffAccountError, match="only enabled admin"):
        staff_accounts.disable_account(sam.email, actor_account_id=sam.id)
    result = app.test_cli_runner().invoke(args=["staff", "disable", "second@clinic.test"])
    assert result.exit_code != 0
    assert "only enabled admin" in result.output


def test_an_admin_who_disables_themself_is_signed_out(client, admin):
    create_staff("second@clinic.test", role="admin", name="Sam Second")
    response = press(client, admin.id, "disable")
    assert response.status_code == 303
    assert client.get(response.headers["Location"]).headers["Location"].endswith("/staff/login")
    assert stored("admin@clinic.test").is_active is False


def test_a_disabled_admin_does_not_count_as_the_admin_left(client, admin):
    create_staff("second@clinic.test", role="admin", name="Sam Second")
    staff_accounts.disable_account("second@clinic.test")
    assert press(client, admin.id, "disable").status_code == 409
    assert stored("admin@clinic.test").is_active is True


def both_at_once(app, *calls) -> list:
    """Run the calls in threads released together; each gives its result or its refusal."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        with app.app_context():
            barrier.wait()
            try:
                return call()
            except StaffAccountError as refusal:
                return refusal
            finally:
                db.session.remove()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


# A few rounds: the two threads meet in a different order each time.
@pytest.mark.parametrize("round_", range(6))
def test_two_admins_disabling_each_other_at_once_leave_one_admin(app, frozen_clock, round_):
    ada = create_staff("ada@clinic.test", role="admin", name="Ada")
    sam = create_staff("sam@clinic.test", role="admin", name="Sam")
    ada_id, sam_id = ada.id, sam.id
    results = both_at_once(
        app,
        lambda: staff_accounts.disable_account("sam@clinic.test", actor_account_id=ada_id),
        lambda: staff_accounts.disable_account("ada@clinic.test", actor_account_id=sam_id),
    )
    assert len([r for r in results if isinstance(r, StaffAccountError)]) == 1, results
    still_enabled = [e for e in ("ada@clinic.test", "sam@clinic.test") if stored(e).is_active]
    assert len(still_enabled) == 1
