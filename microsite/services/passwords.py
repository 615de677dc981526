"""Staff password rules and hashing: Argon2id, a minimum length, no common passwords."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
MAX_LENGTH = 256  # argon2 takes any length; a cap keeps one request from hashing a megabyte

# argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile; verify() reads the
# parameters from each stored hash, so raising them later only affects new hashes.
hasher = PasswordHasher()


class WeakPasswordError(ValueError):
    """The password breaks the policy; the message says how, without repeating it."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line and not line.startswith("#"))


def check_policy(password: str, *, email: str = "", name: str = "") -> None:
    """Raise WeakPasswordError unless the password is long enough and not a common one."""
    min_length = current_app.config["STAFF_PASSWORD_MIN_LENGTH"]
    if len(password) < min_length:
        raise WeakPasswordError(f"Use at least {min_length} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.strip().lower()
    if lowered in common_passwords() or len(set(lowered)) < 4:
        raise WeakPasswordError("That password is too common. Choose one that is hard to guess.")
    personal = {email.lower(), email.lower().partition("@")[0], name.strip().lower()} - {""}
    if lowered in personal:
        raise WeakPasswordError("Don't use your name or email address as your password.")


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return hasher.verify(stored_hash, password[:MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return hasher.hash("not-a-real-account-password")


def verify_against_dummy(password: str) -> None:
    """Spend the time a real check takes, so an unknown email answers as slowly as a known one."""
    verify_password(_dummy_hash(), password)
