"""Staff sign-in: password, then a TOTP code; server-side sessions that really end.

The browser's cookie carries only a random token; the session record (its hash) decides. A
sign-out, a disabled account, a new password or a reset second factor ends the record, so a
copied cookie stops working at once. Failures are counted in the database (per email and per
address, over a window) so the limits hold across processes; unknown emails are counted and
timed exactly like known ones, and the message never tells them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, func, select

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..models import StaffAccount, StaffLoginFailure, StaffRecoveryCode, StaffSession
from . import passwords
from .audit import add_audit
from .staff_accounts import find_account, normalize_email

RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read off paper
RECOVERY_CODE_LENGTH = 12  # about 59 random bits: a fast hash is enough to store it
TOTP_STEP_SECONDS = 30

SIGN_IN_FAILED = (
    "That email and password did not work. Check them and try again. After repeated failures "
    "sign-in is paused; an administrator can lift a lock."
)
SIGN_IN_THROTTLED = "Too many sign-in attempts. Please wait 15 minutes and try again."
CODE_FAILED = "That code did not work. Enter the current 6-digit code from your app."


class SignInError(Exception):
    """Sign-in refused; the message is safe to show (it never says whether an account exists)."""

    status_code = 200


class SignInThrottledError(SignInError):
    status_code = 429


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie only; never stored or logged
    record: StaffSession


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _config(key: str):
    return current_app.config[key]


def _window_start(now: datetime) -> datetime:
    return now - timedelta(minutes=_config("STAFF_LOGIN_WINDOW_MINUTES"))


def _failures_since(key: str, since: datetime) -> int:
    query = select(func.count()).where(StaffLoginFailure.key == key, StaffLoginFailure.at >= since)
    return db.session.scalar(query)


def _is_throttled(account_key: str, address_key: str, now: datetime) -> bool:
    since = _window_start(now)
    return _failures_since(account_key, since) >= _config(
        "STAFF_LOGIN_MAX_PER_ACCOUNT"
    ) or _failures_since(address_key, since) >= _config("STAFF_LOGIN_MAX_PER_ADDRESS")


def _count_failure(account: StaffAccount | None, keys: tuple[str, ...], now: datetime) -> None:
    """Record a failed attempt (in the caller's write transaction), locking at the limit."""
    db.session.execute(
        delete(StaffLoginFailure).where(StaffLoginFailure.at < now - timedelta(days=1))
    )
    db.session.add_all(StaffLoginFailure(key=key, at=now) for key in keys)
    if account is not None:
        account.failed_logins += 1
        if account.locked_at is None and account.failed_logins >= _config("STAFF_LOCKOUT_AFTER"):
            account.locked_at = now
            add_audit(None, "account.locked", detail=f"account {account.id}")


def _new_session(account: StaffAccount, *, mfa_passed: bool) -> NewSession:
    token = secrets.token_urlsafe(32)
    record = StaffSession(
        account_id=account.id, token_hash=_hash_token(token), mfa_passed=mfa_passed
    )
    db.session.add(record)
    return NewSession(token, record)


def sign_in_with_password(email: str, password: str, address: str) -> NewSession:
    """First step: a session that may only enter the second factor. Raises SignInError."""
    email = normalize_email(email)[:254]
    keys = (f"account:{email}", f"address:{address[:64]}")
    now = clock.now()
    if _is_throttled(*keys, now):
        raise SignInThrottledError(SIGN_IN_THROTTLED)
    account = find_account(email) if email else None
    # The slow hash check happens outside the write lock, and for unknown emails too.
    if account is None:
        passwords.verify_against_dummy(password)
        ok = False
    else:
        ok = passwords.verify_password(account.password_hash, password)
    with write_transaction():
        account = find_account(email) if account is not None else None
        usable = account is not None and account.is_active and account.locked_at is None
        if ok and usable:
            account.failed_logins = 0
            return _new_session(account, mfa_passed=False)
        _count_failure(account, keys, now)  # committed: raising inside would roll it back
    raise SignInError(SIGN_IN_FAILED)


def load_session(token: str | None) -> StaffSession | None:
    """The open session for a cookie's token, or None; ends it if it has expired."""
    if not token or len(token) > 100:
        return None
    record = db.session.scalars(
        select(StaffSession).where(StaffSession.token_hash == _hash_token(token))
    ).first()
    if record is None or record.ended_at is not None or not record.account.is_active:
        return None
    now = clock.now()
    idle = timedelta(minutes=_config("STAFF_SESSION_IDLE_MINUTES"))
    longest = timedelta(hours=_config("STAFF_SESSION_MAX_HOURS"))
    expired = now - record.last_seen_at > idle or now - record.created_at > longest
    with write_transaction():
        record = db.session.get(StaffSession, record.id)
        if expired:
            record.ended_at = now
            return None
        record.last_seen_at = now
    return record


def end_session(record_id: int) -> None:
    with write_transaction():
        record = db.session.get(StaffSession, record_id)
        if record is not None and record.ended_at is None:
            record.ended_at = clock.now()
            if record.mfa_passed:
                add_audit(record.account_id, "staff.signed_out")


# --- the second factor -------------------------------------------------------------------


def enrolment_secret(record: StaffSession) -> str:
    """The account's new TOTP secret, made on first ask; only before enrolment is complete."""
    with write_transaction():
        account = db.session.get(StaffAccount, record.account_id)
        if account.mfa_enrolled_at is not None:
            raise SignInError("This account has its authenticator already.")
        if not account.totp_secret:
            account.totp_secret = pyotp.random_base32()
        return account.totp_secret


def enrolment_qr_svg(account: StaffAccount, secret: str) -> str:
    """The otpauth:// URI as an inline SVG QR code, drawn here: no image service sees it."""
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=account.email, issuer_name=_config("CLINIC_SHORT_NAME")
    )
    return segno.make(uri, error="m").svg_inline(scale=5, border=2, title="Authenticator QR code")


def _accepted_step(account: StaffAccount, code: str, now: datetime) -> int | None:
    """The time step the code belongs to (now, or one step either side), unless used before."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6) or not account.totp_secret:
        return None
    totp = pyotp.TOTP(account.totp_secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current - 1, current, current + 1):
        expected = totp.at(step * TOTP_STEP_SECONDS)
        if hmac.compare_digest(expected, code) and step > (account.totp_last_step or -1):
            return step
    return None


def _reloaded(record: StaffSession) -> tuple[StaffSession, StaffAccount]:
    """The session and its account as they are now, read inside the write transaction."""
    record = db.session.get(StaffSession, record.id)
    return record, db.session.get(StaffAccount, record.account_id)


def _second_factor_failed(record: StaffSession, account: StaffAccount, now: datetime) -> None:
    record.mfa_failures += 1
    if record.mfa_failures >= _config("STAFF_MFA_MAX_FAILURES"):
        record.ended_at = now  # start again from the password
        _count_failure(account, (f"account:{account.email}",), now)


def _complete(record: StaffSession, account: StaffAccount, now: datetime) -> NewSession:
    """The half session ends; a new token is issued for the full one (no session fixation)."""
    record.ended_at = now
    account.failed_logins = 0
    add_audit(account.id, "staff.signed_in")
    return _new_session(account, mfa_passed=True)


def verify_code(record: StaffSession, code: str) -> NewSession:
    """Second step with a TOTP code (the account is enrolled). Raises SignInError."""
    now = clock.now()
    with write_transaction():
        record, account = _reloaded(record)
        step = _accepted_step(account, code, now) if account.mfa_enrolled_at else None
        if step is not None:
            account.totp_last_step = step
            return _complete(record, account, now)
        _second_factor_failed(record, account, now)
    raise SignInError(CODE_FAILED)


def complete_enrolment(record: StaffSession, code: str) -> tuple[NewSession, list[str]]:
    """Enrolment's last step: a code from the new secret; returns the ten recovery codes."""
    now = clock.now()
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    with write_transaction():
        record, account = _reloaded(record)
        step = None if account.mfa_enrolled_at else _accepted_step(account, code, now)
        if step is not None:
            account.totp_last_step = step
            account.mfa_enrolled_at = now
            db.session.execute(
                delete(StaffRecoveryCode).where(StaffRecoveryCode.account_id == account.id)
            )
            db.session.add_all(
                StaffRecoveryCode(account_id=account.id, code_hash=_hash_recovery(c)) for c in codes
            )
            add_audit(account.id, "account.mfa_enrolled", detail=f"account {account.id}")
            return _complete(record, account, now), codes
        _second_factor_failed(record, account, now)
    raise SignInError(CODE_FAILED)


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _hash_recovery(code: str) -> str:
    cleaned = "".join(ch for ch in code.lower() if ch in RECOVERY_ALPHABET)
    return hashlib.sha256(cleaned.encode()).hexdigest()


def use_recovery_code(record: StaffSession, code: str) -> NewSession:
    """Second step with a single-use recovery code instead of the app. Raises SignInError."""
    now = clock.now()
    with write_transaction():
        record, account = _reloaded(record)
        match = db.session.scalars(
            select(StaffRecoveryCode).where(
                StaffRecoveryCode.account_id == account.id,
                StaffRecoveryCode.code_hash == _hash_recovery(code or ""),
                StaffRecoveryCode.used_at.is_(None),
            )
        ).first()
        if match is not None and account.mfa_enrolled_at is not None:
            match.used_at = now
            add_audit(account.id, "account.recovery_code_used", detail=f"account {account.id}")
            return _complete(record, account, now)
        _second_factor_failed(record, account, now)
    raise SignInError("That recovery code did not work, or it has been used already.")


def recovery_codes_left(account_id: int) -> int:
    query = select(func.count()).where(
        StaffRecoveryCode.account_id == account_id, StaffRecoveryCode.used_at.is_(None)
    )
    return db.session.scalar(query)
