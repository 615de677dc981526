"""Retention: patient details are erased once the clinic's retention period has passed.

An erased booking keeps what the clinic's schedule and the calendars need — time, clinician,
consultation type, status, UID, reference and history — and loses every field the patient
typed, each replaced by a fixed marker (the columns stay NOT NULL). Erasing is idempotent
(`erased_at` is set once) and safe to run from cron while the site serves: each batch is one
write transaction, and on PostgreSQL a second purge skips rows the first has locked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..models import Booking, ManageLink, OutboxMessage
from ..models.history import ACTOR_SYSTEM, EVENT_ERASED
from ..models.outbox import ROLE_PATIENT, STATUS_PENDING, STATUS_SKIPPED
from .audit import add_audit
from .history import record_event

log = logging.getLogger(__name__)

ERASED_TEXT = "[erased]"
# A birth date no patient has: NOT NULL stays satisfied and nobody mistakes it for a real one.
ERASED_BIRTH_DATE = date(1900, 1, 1)
PURGE_BATCH_SIZE = 200
REASON_RETENTION = "retention period"
REASON_PATIENT_REQUEST = "patient request"


class RetentionNotConfiguredError(RuntimeError):
    """RETENTION_DAYS is unset or not a whole number of days: nothing may be erased."""


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    erased: int
    dry_run: bool


def retention_days() -> int:
    """The configured retention period in days, or RetentionNotConfiguredError saying why not."""
    value = current_app.config.get("RETENTION_DAYS")
    if value is None or value == "":
        raise RetentionNotConfiguredError(
            "RETENTION_DAYS is not set, so nothing was erased. How long booking details are "
            "kept is the clinic's decision (its records policy and the law that applies to it), "
            "not a default of this software: set MICROSITE_RETENTION_DAYS (days after an "
            "appointment ends) once the clinic has decided."
        )
    try:
        days = int(value)
    except (TypeError, ValueError):
        days = 0
    if days < 1 or str(value).strip() != str(days):
        raise RetentionNotConfiguredError(
            f"RETENTION_DAYS must be a whole number of days, 1 or more (it is {value!r}); "
            "nothing was erased."
        )
    return days


def erase_patient_details(booking: Booking, *, actor: str, reason: str) -> None:
    """Replace the booking's patient fields by markers, inside the caller's write transaction."""
    if booking.erased_at is not None:
        return
    booking.patient_name = ERASED_TEXT
    booking.patient_email = ERASED_TEXT
    booking.patient_phone = ERASED_TEXT
    booking.patient_birth_date = ERASED_BIRTH_DATE
    booking.patient_note = ERASED_TEXT
    booking.idempotency_key = None  # a form token that no longer leads anywhere
    booking.erased_at = clock.now()
    record_event(booking, EVENT_ERASED, actor, detail=reason)
    # Outbox rows hold no bodies (emails are rendered when sent), but a patient email still
    # waiting would now go to "[erased]": it is skipped. Staff emails carry no patient data and
    # still go (a CANCEL queued just before erasure must reach the clinician's calendar).
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.booking_id == booking.id,
            OutboxMessage.recipient_role == ROLE_PATIENT,
            OutboxMessage.status == STATUS_PENDING,
        )
        .values(status=STATUS_SKIPPED, last_error="patient details erased")
        .execution_options(synchronize_session=False)
    )
    # The manage links stop opening the booking: there is nothing of the patient's left to show.
    db.session.execute(
        delete(ManageLink)
        .where(ManageLink.booking_id == booking.id)
        .execution_options(synchronize_session=False)
    )
    # In the audit trail too (no staff account: a command or the scheduled purge did it).
    add_audit(None, "booking.erased", booking_id=booking.id, detail=reason)


def _due_for_purge(cutoff: datetime):
    return (Booking.ends_at < cutoff) & Booking.erased_at.is_(None)


def purge_expired(*, dry_run: bool = False, batch_size: int = PURGE_BATCH_SIZE) -> PurgeResult:
    """Erase the patient details of every booking that ended more than RETENTION_DAYS ago."""
    cutoff = clock.now() - timedelta(days=retention_days())
    if dry_run:
        count = db.session.scalar(select(func.count()).where(_due_for_purge(cutoff)))
        db.session.rollback()
        return PurgeResult(cutoff, int(count or 0), dry_run=True)
    erased = 0
    while True:
        with write_transaction():
            batch = list(
                db.session.scalars(
                    select(Booking)
                    .where(_due_for_purge(cutoff))
                    .order_by(Booking.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            for booking in batch:
                erase_patient_details(booking, actor=ACTOR_SYSTEM, reason=REASON_RETENTION)
        erased += len(batch)
        if batch:
            log.info(
                "retention batch erased",
                extra={
                    "event": "retention.erased",
                    "count": len(batch),
                    "booking_ids": [b.id for b in batch],
                },
            )
        if len(batch) < batch_size:
            break
    log.info(
        "retention purge finished",
        extra={"event": "retention.purged", "count": erased, "cutoff": cutoff.isoformat()},
    )
    return PurgeResult(cutoff, erased, dry_run=False)
