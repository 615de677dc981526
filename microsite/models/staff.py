"""Staff accounts and what signing in needs: server-side sessions, recovery codes, failures.

Secrets are stored hashed (passwords with Argon2id, session tokens and recovery codes with
SHA-256, being random and long); the TOTP secret is stored as is, because checking a code needs it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .. import clock
from ..database import UTCDateTime
from ..extensions import db

ROLE_ADMIN = "admin"
ROLE_CLINICIAN = "clinician"
ROLE_FRONTDESK = "frontdesk"
STAFF_ROLES = (ROLE_ADMIN, ROLE_CLINICIAN, ROLE_FRONTDESK)


class StaffAccount(db.Model):
    __tablename__ = "staff_account"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in STAFF_ROLES)})", name="known_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    # A clinician account sees that clinician's bookings; None for admin and front desk.
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("clinician.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    # Set at the first sign-in; enrolled once a code from it has been accepted.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last 30-second step a code was accepted for: a code is never accepted twice.
    totp_last_step: Mapped[int | None]
    # Consecutive failed sign-ins; at STAFF_LOCKOUT_AFTER the account locks until an admin
    # unlocks it.
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    password_changed_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=lambda: clock.now()
    )

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


class StaffSession(db.Model):
    """One signed-in browser. The cookie holds a random token; only its hash is stored here."""

    __tablename__ = "staff_session"
    __table_args__ = (Index("ix_staff_session_account_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # False between the password and the second factor: only the code pages are open then.
    mfa_passed: Mapped[bool] = mapped_column(default=False)
    mfa_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    account: Mapped[StaffAccount] = relationship()


class StaffRecoveryCode(db.Model):
    __tablename__ = "staff_recovery_code"
    __table_args__ = (Index("ix_staff_recovery_code_account_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffLoginFailure(db.Model):
    """A failed sign-in, keyed "account:<email>" or "address:<ip>", counted over a window.

    Kept for unknown emails too, so throttling looks the same whether an account exists or not.
    """

    __tablename__ = "staff_login_failure"
    __table_args__ = (Index("ix_staff_login_failure_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())


class StaffNote(db.Model):
    """An internal note on a booking: staff only, never shown to the patient."""

    __tablename__ = "staff_note"
    __table_args__ = (Index("ix_staff_note_booking_id", "booking_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_account.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())

    author: Mapped[StaffAccount] = relationship()
