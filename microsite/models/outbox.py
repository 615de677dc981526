"""Emails waiting to be sent, written in the same transaction as the change that causes them.

A row holds what the message is about (booking, kind, recipient role) and a snapshot of the
booking as it was when the change happened (time, clinician, SEQUENCE); the sender renders the
email from that at send time. So a row holds no rendered body, no manage token and no patient
text: `last_error` is an exception name and an SMTP code, never a server's reply text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..database import UTCDateTime
from ..extensions import db

KIND_CONFIRMATION = "confirmation"  # to the patient, REQUEST, with the manage link
KIND_INVITE = "invite"  # to the clinician and the clinic mailbox, REQUEST
KIND_UPDATE = "update"  # a reschedule: REQUEST, same UID, higher SEQUENCE
KIND_CANCELLATION = "cancellation"  # CANCEL, same UID, higher SEQUENCE
KIND_REMINDER = "reminder"  # to the patient, REMINDER_BEFORE ahead; no calendar part
OUTBOX_KINDS = (KIND_CONFIRMATION, KIND_INVITE, KIND_UPDATE, KIND_CANCELLATION, KIND_REMINDER)

ROLE_PATIENT = "patient"
ROLE_CLINICIAN = "clinician"
ROLE_CLINIC = "clinic"  # CLINIC_BOOKING_MAILBOX
RECIPIENT_ROLES = (ROLE_PATIENT, ROLE_CLINICIAN, ROLE_CLINIC)

STATUS_PENDING = "pending"
STATUS_SENT = "sent"
STATUS_FAILED = "failed"  # gave up after MAIL_MAX_ATTEMPTS or a permanent refusal
STATUS_SKIPPED = "skipped"  # no longer true when its turn came (a reminder for a cancelled booking)
OUTBOX_STATUSES = (STATUS_PENDING, STATUS_SENT, STATUS_FAILED, STATUS_SKIPPED)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(repr(value) for value in values)


class OutboxMessage(db.Model):
    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(OUTBOX_KINDS)})", name="known_kind"),
        CheckConstraint(f"recipient_role IN ({_in(RECIPIENT_ROLES)})", name="known_role"),
        CheckConstraint(f"status IN ({_in(OUTBOX_STATUSES)})", name="known_status"),
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
        Index("ix_outbox_message_booking_id", "booking_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id"))
    kind: Mapped[str] = mapped_column(String(20))
    recipient_role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=STATUS_PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    # The claim: a sender sets both in one UPDATE that only succeeds on an unclaimed row.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(200), default="")
    # The Message-ID of the last attempt, to find the email in a mail server's log.
    message_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=lambda: clock.now())
    # The booking as it was when this message was caused (the booking row moves on).
    sequence: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinician.id"))
    previous_starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set for messages that must exist at most once (a reminder per booking and start time).
    dedupe_key: Mapped[str | None] = mapped_column(String(100), unique=True)
