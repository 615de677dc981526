"""Staff accounts from the command line (create, list, disable, unlock, reset); password rules."""

from __future__ import annotations

import pytest
from staff_support import PASSWORD, create_staff, use_fast_hashing

from microsite.extensions import db
from microsite.models import AuditEvent, StaffAccount
from microsite.services import passwords, staff_accounts
from microsite.services.staff_accounts import StaffAccountError


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    use_fast_hashing(monkeypatch)


def run(app, *args, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=["staff", *args], input=stdin)


def test_create_reads_the_password_from_stdin_and_hashes_it_with_argon2id(app, monkeypatch):
    monkeypatch.setattr(passwords, "hasher", passwords.PasswordHasher())  # the real parameters
    result = run(
        app,
        "create",
        "Admin@Clinic.test",
        "--name",
        "Ada Admin",
        "--role",
        "admin",
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    account = staff_accounts.find_account("admin@clinic.test")
    assert account.role == "admin"
    assert account.name == "Ada Admin"
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert passwords.verify_password(account.password_hash, PASSWORD)
    assert "Created admin account admin@clinic.test." in result.output


def test_at_a_terminal_the_password_is_asked_twice(app, monkeypatch):
    from microsite.cli import staff as staff_cli

    monkeypatch.setattr(staff_cli, "_stdin_is_terminal", lambda: True)
    mismatch = run(
        app,
        "create",
        "t@clinic.test",
        "--name",
        "T",
        "--role",
        "frontdesk",
        stdin=f"{PASSWORD}\nsomething-else-entirely\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert mismatch.exit_code == 0, mismatch.output
    assert mismatch.output.count("Repeat for confirmation") == 2  # asked again after a mismatch
    assert "do not match" in mismatch.output
    assert PASSWORD not in mismatch.output  # hidden input is never echoed
    assert passwords.verify_password(
        staff_accounts.find_account("t@clinic.test").password_hash, PASSWORD
    )


def test_create_refuses_short_and_common_passwords(app):
    short = run(app, "create", "a@clinic.test", "--name", "A", "--role", "admin", stdin="short1\n")
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output
    common = run(
        app, "create", "a@clinic.test", "--name", "A", "--role", "admin", stdin="password1234\n"
    )
    assert common.exit_code != 0
    assert "too common" in common.output
    assert staff_accounts.find_account("a@clinic.test") is None


@pytest.mark.parametrize(
    "password",
    ["Password1234", "qwertyuiop123", "aaaaaaaaaaaaaaaa", "abababababab", "ketamine2026"],
)
def test_common_and_repetitive_passwords_are_refused(app, password):
    with pytest.raises(passwords.WeakPasswordError):
        passwords.check_policy(password)


def test_the_email_as_password_is_refused(app):
    with pytest.raises(passwords.WeakPasswordError, match="name or email"):
        passwords.check_policy("dana.longname@clinic.test", email="dana.longname@clinic.test")


def test_a_clinician_account_links_to_the_clinician_with_its_email(app, make_clinician):
    clinician = make_clinician(email="A.Okafor@clinic.test")
    result = run(
        app,
        "create",
        "a.okafor@clinic.test",
        "--name",
        "Dr Okafor",
        "--role",
        "clinician",
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert staff_accounts.find_account("a.okafor@clinic.test").clinician_id == clinician.id


def test_a_clinician_account_without_its_clinician_is_refused(app, make_clinician):
    make_clinician(email="someone@clinic.test")
    result = run(
        app,
        "create",
        "nobody@clinic.test",
        "--name",
        "N",
        "--role",
        "clinician",
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code != 0
    assert "--clinician-id" in result.output
    other = make_clinician(email="other@clinic.test")
    result = run(
        app,
        "create",
        "nobody@clinic.test",
        "--name",
        "N",
        "--role",
        "clinician",
        "--clinician-id",
        str(other.id),
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert staff_accounts.find_account("nobody@clinic.test").clinician_id == other.id


def test_duplicate_email_and_unknown_role_are_refused(app):
    create_staff("desk@clinic.test")
    with pytest.raises(StaffAccountError, match="exists already"):
        create_staff("DESK@clinic.test")
    result = run(app, "create", "x@clinic.test", "--name", "X", "--role", "root", stdin="x\n")
    assert result.exit_code != 0


def test_list_disable_enable_unlock_reset_mfa_and_set_password(app):
    create_staff("desk@clinic.test")
    listed = run(app, "list")
    assert "desk@clinic.test" in listed.output
    assert "frontdesk" in listed.output
    assert "mfa not set up" in listed.output

    assert run(app, "disable", "desk@clinic.test").exit_code == 0
    assert "disabled" in run(app, "list").output
    assert run(app, "enable", "desk@clinic.test").exit_code == 0

    account = staff_accounts.find_account("desk@clinic.test")
    account.locked_at, account.failed_logins, account.totp_secret = None, 7, "JBSWY3DPEHPK3PXP"
    db.session.commit()
    assert run(app, "unlock", "desk@clinic.test").exit_code == 0
    assert run(app, "reset-mfa", "desk@clinic.test").exit_code == 0
    db.session.expire_all()
    account = staff_accounts.find_account("desk@clinic.test")
    assert account.failed_logins == 0
    assert account.totp_secret is None

    new_password = "another-long-phrase-77"
    result = run(app, "set-password", "desk@clinic.test", stdin=new_password + "\n")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert passwords.verify_password(
        staff_accounts.find_account("desk@clinic.test").password_hash, new_password
    )
    assert run(app, "disable", "ghost@clinic.test").exit_code != 0

    actions = [a.action for a in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [
        "account.created",
        "account.disabled",
        "account.enabled",
        "account.unlocked",
        "account.mfa_reset",
        "account.password_reset",
    ]
    # Commands act as nobody signed in; the rows name the account id, never the email.
    rows = list(db.session.scalars(db.select(AuditEvent)))
    assert all(r.actor_account_id is None and "@" not in r.detail for r in rows)
    assert db.session.scalar(db.select(db.func.count()).select_from(StaffAccount)) == 1


def test_set_password_for_an_unknown_email_stops_before_asking(app, monkeypatch):
    from microsite.cli import staff as staff_cli

    monkeypatch.setattr(staff_cli, "_stdin_is_terminal", lambda: True)
    result = run(app, "set-password", " Ghost@Clinic.test ", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code != 0
    assert "No staff account has the email ghost@clinic.test." in result.output
    assert "Password" not in result.output  # never prompted


def test_the_last_enabled_admin_cannot_be_disabled_from_the_command_line(app):
    create_staff("admin@clinic.test", role="admin")
    result = run(app, "disable", "admin@clinic.test")
    assert result.exit_code != 0
    assert "only enabled admin account" in result.output
    assert staff_accounts.find_account("admin@clinic.test").is_active
    create_staff("second@clinic.test", role="admin")
    assert run(app, "disable", "admin@clinic.test").exit_code == 0
