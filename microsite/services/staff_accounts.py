"""Staff accounts: create, list, disable, unlock, change the role, reset the password or the
second factor. The command line and the console's accounts pages both call these.

Every change here ends the account's sessions where it must (disable, password, second factor)
and writes an audit row (who, what, which account id; never the email or a secret).
`actor_account_id` is None when a command on the server made it. There is always at least one
enabled admin: disabling or demoting the last one is refused, from the console and the command
line alike (make or enable another admin first).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..models import Clinician, StaffAccount, StaffLoginFailure, StaffRecoveryCode, StaffSession
from ..models.staff import ROLE_ADMIN, ROLE_CLINICIAN, STAFF_ROLES
from . import passwords
from .audit import add_audit


class StaffAccountError(Exception):
    """An account change that can't be made; the message says why (no secrets in it)."""


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def find_account(email: str) -> StaffAccount | None:
    return db.session.scalars(
        select(StaffAccount).where(StaffAccount.email == normalize_email(email))
    ).first()


def find_account_by_id(account_id: int) -> StaffAccount | None:
    return db.session.get(StaffAccount, account_id)


def require_account(email: str) -> StaffAccount:
    """The account with this email, or StaffAccountError saying there is none."""
    account = find_account(email)
    if account is None:
        raise StaffAccountError(f"No staff account has the email {normalize_email(email)}.")
    return account


def _clinician_for(email: str, clinician_id: int | None) -> int:
    if clinician_id is not None:
        clinician = db.session.get(Clinician, clinician_id)
    else:
        clinician = db.session.scalars(
            select(Clinician).where(func.lower(Clinician.email) == normalize_email(email))
        ).first()
    if clinician is None:
        raise StaffAccountError(
            "A clinician account needs its clinician: no clinician has that "
            + ("id." if clinician_id is not None else "email (give --clinician-id).")
        )
    return clinician.id


def _check_role(role: str, clinician_id: int | None) -> None:
    if role not in STAFF_ROLES:
        raise StaffAccountError(f"Unknown role {role!r}: use one of {', '.join(STAFF_ROLES)}.")
    if role != ROLE_CLINICIAN and clinician_id is not None:
        raise StaffAccountError("Only clinician accounts are linked to a clinician.")


def _keep_an_admin(account: StaffAccount) -> None:
    """Refuse a change that would leave no enabled admin (called before making it).

    The enabled admins' rows are locked (FOR UPDATE on PostgreSQL; SQLite's write transaction
    already serialises writers), so two admins disabling each other at once can't both succeed.
    """
    if not (account.is_active and account.role == ROLE_ADMIN):
        return
    admins = db.session.scalars(
        select(StaffAccount.id)
        .where(StaffAccount.role == ROLE_ADMIN, StaffAccount.is_active.is_(True))
        .with_for_update()
    ).all()
    if set(admins) <= {account.id}:
        raise StaffAccountError(
            "This is the only enabled admin account: make or enable another admin first, "
            "so someone can still manage accounts and the schedule."
        )


def _policy_checked_hash(password: str, account_email: str, name: str) -> str:
    """The Argon2id hash of a password that passes the policy (slow: call before the lock)."""
    try:
        passwords.check_policy(password, email=account_email, name=name)
    except passwords.WeakPasswordError as error:
        raise StaffAccountError(str(error)) from None
    return passwords.hash_password(password)


def create_account(
    email: str,
    *,
    name: str,
    role: str,
    password: str,
    clinician_id: int | None = None,
    actor_account_id: int | None = None,
) -> StaffAccount:
    """A new, active account. Its second factor is set up at the first sign-in."""
    email = normalize_email(email)
    _check_role(role, clinician_id)
    if "@" not in email or not name.strip():
        raise StaffAccountError("An account needs an email address and a name.")
    password_hash = _policy_checked_hash(password, email, name)  # before the write lock
    with write_transaction():
        if find_account(email) is not None:
            raise StaffAccountError(f"An account with the email {email} exists already.")
        account = StaffAccount(
            email=email,
            name=name.strip(),
            role=role,
            clinician_id=_clinician_for(email, clinician_id) if role == ROLE_CLINICIAN else None,
            password_hash=password_hash,
            failed_logins=0,
        )
        db.session.add(account)
        db.session.flush()
        add_audit(actor_account_id, "account.created", detail=f"account {account.id} {role}")
    return account


def list_accounts() -> list[StaffAccount]:
    return list(db.session.scalars(select(StaffAccount).order_by(StaffAccount.email)))


def last_sign_ins() -> dict[int, datetime]:
    """When each account last completed a sign-in (both factors), from its session records."""
    rows = db.session.execute(
        select(StaffSession.account_id, func.max(StaffSession.created_at))
        .where(StaffSession.mfa_passed.is_(True))
        .group_by(StaffSession.account_id)
    ).all()
    return {account_id: at for account_id, at in rows}


def end_all_sessions(account_id: int) -> None:
    """End every open session of the account (in the caller's transaction)."""
    db.session.execute(
        update(StaffSession)
        .where(StaffSession.account_id == account_id, StaffSession.ended_at.is_(None))
        .values(ended_at=clock.now())
    )


def disable_account(email: str, *, actor_account_id: int | None = None) -> StaffAccount:
    """No more sign-ins; open sessions end at once."""
    with write_transaction():
        account = require_account(email)
        _keep_an_admin(account)
        account.is_active = False
        end_all_sessions(account.id)
        add_audit(actor_account_id, "account.disabled", detail=f"account {account.id}")
    return account


def enable_account(email: str, *, actor_account_id: int | None = None) -> StaffAccount:
    with write_transaction():
        account = require_account(email)
        account.is_active = True
        add_audit(actor_account_id, "account.enabled", detail=f"account {account.id}")
    return account


def change_role(
    email: str,
    role: str,
    *,
    clinician_id: int | None = None,
    actor_account_id: int | None = None,
) -> StaffAccount:
    """A new role (and clinician link); it applies from the account's next request."""
    _check_role(role, clinician_id)
    with write_transaction():
        account = require_account(email)
        if role != ROLE_ADMIN:
            _keep_an_admin(account)
        before = account.role
        account.role = role
        account.clinician_id = (
            _clinician_for(account.email, clinician_id) if role == ROLE_CLINICIAN else None
        )
        add_audit(
            actor_account_id,
            "account.role_changed",
            detail=f"account {account.id} {before} to {role}",
        )
    return account


def reset_mfa(email: str, *, actor_account_id: int | None = None) -> StaffAccount:
    """Forget the authenticator and the recovery codes: the next sign-in enrols again."""
    with write_transaction():
        account = require_account(email)
        account.totp_secret = None
        account.mfa_enrolled_at = None
        account.totp_last_step = None
        db.session.execute(
            delete(StaffRecoveryCode).where(StaffRecoveryCode.account_id == account.id)
        )
        end_all_sessions(account.id)
        add_audit(actor_account_id, "account.mfa_reset", detail=f"account {account.id}")
    return account


def unlock_account(email: str, *, actor_account_id: int | None = None) -> StaffAccount:
    """Lift a lockout and forget the account's recent failures."""
    with write_transaction():
        account = require_account(email)
        account.failed_logins = 0
        account.locked_at = None
        db.session.execute(
            delete(StaffLoginFailure).where(StaffLoginFailure.key == f"account:{account.email}")
        )
        add_audit(actor_account_id, "account.unlocked", detail=f"account {account.id}")
    return account


def set_password(email: str, password: str, *, actor_account_id: int | None = None) -> None:
    """A new password (checked against the policy); every open session of the account ends."""
    account = require_account(email)
    password_hash = _policy_checked_hash(password, account.email, account.name)
    with write_transaction():
        account = require_account(email)
        account.password_hash = password_hash
        account.password_changed_at = clock.now()
        end_all_sessions(account.id)
        add_audit(actor_account_id, "account.password_reset", detail=f"account {account.id}")
