"""The outbox: emails queued inside the change's own transaction, sent afterwards with retries.

Nothing is lost: a booking, cancellation or reschedule and the rows for its emails commit
together or not at all. Sending never happens in a request: after the commit a per-process
thread is woken (`MAIL_SEND_IN_BACKGROUND`), and `flask outbox send` (cron) or `outbox run`
deliver whatever is due. Two senders never send one message: a sender claims rows with one
UPDATE that only matches unclaimed rows (`lease_until` unset or past) and then works only on
the rows stamped with its own claim id. A crash after the SMTP server accepted a message but
before it was marked sent means it is sent again once the lease expires (at least once).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import delete, func, insert, or_, select, update

from .. import clock
from ..database import write_transaction
from ..extensions import db
from ..mail_transport import (
    MessageRefusedError,
    ServerUnavailableError,
    SmtpConnection,
    SmtpSettings,
)
from ..models import Booking, ManageLink, OutboxMessage
from ..models.outbox import (
    KIND_CANCELLATION,
    KIND_CONFIRMATION,
    KIND_INVITE,
    KIND_REMINDER,
    KIND_UPDATE,
    ROLE_CLINIC,
    ROLE_CLINICIAN,
    ROLE_PATIENT,
    STATUS_FAILED,
    STATUS_PENDING,
    STATUS_SENT,
    STATUS_SKIPPED,
)
from . import manage_links, notifications

log = logging.getLogger(__name__)

_SENDER_KEY = "outbox_sender"
_SENDER_LOCK = threading.Lock()


# --- queueing: inside the caller's transaction ------------------------------------------------


# Built once: rows are queued under the booking's write lock, where the ORM's unit of work
# for three objects cost a third of a booking; one executemany of plain rows costs little.
_INSERT_MESSAGES = insert(OutboxMessage.__table__)


def _row(booking: Booking, kind: str, role: str, **overrides) -> dict:
    row = {
        "booking_id": booking.id,
        "kind": kind,
        "recipient_role": role,
        "sequence": booking.sequence,
        "starts_at": booking.starts_at,
        "ends_at": booking.ends_at,
        "clinician_id": booking.clinician_id,
        "previous_starts_at": None,
        "dedupe_key": None,
        "next_attempt_at": clock.now(),
    }
    row.update(overrides)
    return row


def _queue(rows: list[dict]) -> None:
    """Add the rows to the caller's transaction (they commit or roll back with it).

    On the session's connection: `Session.execute` would first flush whatever the ORM holds
    pending (nothing these rows depend on) and wrap the result in its own machinery.
    """
    db.session.connection().execute(_INSERT_MESSAGES, rows)


def queue_new_booking(booking: Booking) -> None:
    """The patient's confirmation and the staff invites; call inside the booking's transaction."""
    _queue(
        [
            _row(booking, KIND_CONFIRMATION, ROLE_PATIENT),
            _row(booking, KIND_INVITE, ROLE_CLINICIAN),
            _row(booking, KIND_INVITE, ROLE_CLINIC),
        ]
    )


def queue_update(
    booking: Booking,
    *,
    previous_start: datetime,
    previous_end: datetime,
    previous_clinician_id: int,
) -> None:
    """A reschedule: REQUEST at the raised SEQUENCE to all three; a clinician who no longer
    has the consultation gets a CANCEL (of the old time) at that SEQUENCE as well."""
    rows = [
        _row(booking, KIND_UPDATE, role, previous_starts_at=previous_start)
        for role in (ROLE_PATIENT, ROLE_CLINICIAN, ROLE_CLINIC)
    ]
    if previous_clinician_id != booking.clinician_id:
        rows.append(
            _row(
                booking,
                KIND_CANCELLATION,
                ROLE_CLINICIAN,
                clinician_id=previous_clinician_id,
                starts_at=previous_start,
                ends_at=previous_end,
            )
        )
    _queue(rows)


def queue_cancellation(booking: Booking) -> None:
    _queue(
        [
            _row(booking, KIND_CANCELLATION, role)
            for role in (ROLE_PATIENT, ROLE_CLINICIAN, ROLE_CLINIC)
        ]
    )


def reminder_key(booking: Booking) -> str:
    """At most one reminder per booking and start time (a reschedule earns a new one)."""
    return f"reminder:{booking.id}:{booking.starts_at:%Y%m%dT%H%MZ}"


def queue_reminder(booking: Booking) -> None:
    _queue([_row(booking, KIND_REMINDER, ROLE_PATIENT, dedupe_key=reminder_key(booking))])


def wake_sender() -> None:
    """After a commit that queued messages: let this process's sender thread look now.

    Costs the request one Event.set(); the thread does the SMTP work on its own time.
    """
    app = current_app._get_current_object()
    config = app.config
    if not config["MAIL_SEND_IN_BACKGROUND"] or not config["MAIL_SERVER"]:
        return
    with _SENDER_LOCK:
        sender = app.extensions.get(_SENDER_KEY)
        if sender is None:
            sender = app.extensions[_SENDER_KEY] = BackgroundSender(app)
    sender.wake()


# --- reading ------------------------------------------------------------------------------------


def messages_for_booking(booking_id: int) -> list[OutboxMessage]:
    """Every message a booking caused, oldest first."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.booking_id == booking_id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
        .execution_options(populate_existing=True)  # senders update rows behind the ORM
    )
    return list(db.session.scalars(query))


def health_summary() -> dict:
    """Counts for /readyz and the console: pending, failed, the next attempt due, and since
    when the oldest undelivered message has waited (its creation, however often it was tried)."""
    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.status.in_([STATUS_PENDING, STATUS_FAILED]))
            .group_by(OutboxMessage.status)
        ).all()
    )
    oldest_due, waiting_since = db.session.execute(
        select(func.min(OutboxMessage.next_attempt_at), func.min(OutboxMessage.created_at)).where(
            OutboxMessage.status == STATUS_PENDING
        )
    ).one()
    return {
        "pending": counts.get(STATUS_PENDING, 0),
        "failed": counts.get(STATUS_FAILED, 0),
        "oldest_due_at": _iso_utc(oldest_due) if oldest_due else None,
        "waiting_since": _iso_utc(waiting_since) if waiting_since else None,
    }


def _iso_utc(value: datetime | str) -> str:
    if isinstance(value, str):  # SQLite returns an aggregate's datetime as text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def retry_message(
    message_id: int, *, on_change: Callable[[OutboxMessage], None] | None = None
) -> OutboxMessage:
    """A failed (or skipped) message becomes due again now, with a fresh count of attempts.

    `on_change` runs inside the same transaction when the message was requeued (the console's
    audit row, so the retry and its audit commit together or not at all)."""
    with write_transaction():
        message = db.session.get(OutboxMessage, message_id, populate_existing=True)
        if message is None:
            raise LookupError(f"no outbox message {message_id}")
        if message.status in (STATUS_FAILED, STATUS_SKIPPED):
            message.status = STATUS_PENDING
            message.attempts = 0
            message.next_attempt_at = clock.now()
            message.lease_until = message.leased_by = None
            if on_change is not None:
                on_change(message)
    log.info("outbox message requeued", extra={"event": "outbox.retry", "message_id": message_id})
    wake_sender()
    return message


# --- sending --------------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What one pass did. `server_unavailable`: it stopped early because SMTP did not answer."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    server_unavailable: bool = False
    disabled: bool = False
    attempted: set[int] = field(default_factory=set)

    def __str__(self) -> str:
        text = (
            f"sent {self.sent}, to retry {self.retrying}, failed {self.failed}, "
            f"skipped {self.skipped}"
        )
        return text + (" (SMTP server unavailable; stopped)" if self.server_unavailable else "")


def send_due(*, max_messages: int | None = None) -> SendReport:
    """One pass: claim and send what is due, batch by batch, until nothing is left.

    Stops early when the server is unreachable (the rest wait for the next pass). A message is
    attempted at most once per pass, so a refusing server cannot keep a pass going forever.
    """
    config = current_app.config
    settings = SmtpSettings.from_config(config)
    report = SendReport(disabled=not settings.enabled)
    if not settings.enabled:
        return report
    claim_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    with SmtpConnection(settings) as connection:
        while max_messages is None or len(report.attempted) < max_messages:
            batch = _claim(claim_id, report.attempted, int(config["MAIL_BATCH_SIZE"]))
            if not batch:
                break
            accepted: set[int] = set()
            for message, token in batch:
                if not _lease_holds(message, settings.timeout):
                    break  # the rest are released below and claimed afresh
                report.attempted.add(message.id)
                try:
                    if _deliver(message, token, connection, claim_id, report):
                        accepted.add(message.id)
                except ServerUnavailableError as error:
                    report.server_unavailable = True
                    _record_failure(message, claim_id, str(error), permanent=False)
                    report.retrying += 1
                    break
            # A token whose email did not go out exists nowhere else: drop its row.
            _release(claim_id, [t for m, t in batch if t and m.id not in accepted])
            if report.server_unavailable:
                log.warning(
                    "SMTP server unavailable; outbox pass stopped",
                    extra={"event": "outbox.smtp_unavailable"},
                )
                break
    # The pass updated rows with plain UPDATEs: what this session holds of them is stale.
    db.session.expire_all()
    return report


def _claim(claim_id: str, exclude: set[int], limit: int) -> list[tuple[OutboxMessage, str | None]]:
    """Lease up to `limit` due messages in one UPDATE; issue the patients' manage tokens
    (`send_due` withdraws those whose email is not accepted this pass)."""
    now = clock.now()
    lease_until = now + timedelta(seconds=float(current_app.config["MAIL_LEASE_SECONDS"]))
    unclaimed = (
        (OutboxMessage.status == STATUS_PENDING)
        & (OutboxMessage.next_attempt_at <= now)
        & or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now)
    )
    due = select(OutboxMessage.id).where(unclaimed)
    if exclude:
        due = due.where(OutboxMessage.id.not_in(sorted(exclude)))
    due = due.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)
    with write_transaction():
        # The unclaimed test is repeated outside the subquery: on PostgreSQL a row another
        # sender claimed meanwhile is re-checked after its lock and no longer matches.
        claimed = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due), unclaimed)
            .values(lease_until=lease_until, leased_by=claim_id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            return []
        messages = list(
            db.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.leased_by == claim_id, OutboxMessage.status == STATUS_PENDING)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .execution_options(populate_existing=True)
            )
        )
        batch = [
            (
                message,
                manage_links.issue_link(message.booking_id)
                if notifications.needs_manage_link(message)
                else None,
            )
            for message in messages
        ]
    return batch


def _lease_holds(message: OutboxMessage, timeout: float) -> bool:
    # An SMTP exchange is a handful of network waits; stop well before another sender may
    # take the message over.
    # Never more than half the lease, so a fresh claim always holds (and a pass progresses).
    lease = float(current_app.config["MAIL_LEASE_SECONDS"])
    margin = timedelta(seconds=min(4 * timeout, lease / 2))
    return message.lease_until is not None and clock.now() + margin < message.lease_until


def _deliver(
    message: OutboxMessage,
    token: str | None,
    connection: SmtpConnection,
    claim_id: str,
    report: SendReport,
) -> bool:
    """Build and send one message and record the outcome; True when the server accepted it."""
    ids = {"message_id": message.id, "booking_id": message.booking_id}
    try:
        email = notifications.render(
            message,
            now=clock.now(),
            manage_url=manage_links.manage_url(token) if token else "",
        )
    except notifications.NotApplicableError:
        _finish(message, claim_id, STATUS_SKIPPED, "no longer applies")
        report.skipped += 1
        return False
    except (ValueError, LookupError) as error:
        # A message that cannot be built never will be: fail it now, say so, go on.
        _record_failure(message, claim_id, f"cannot build: {type(error).__name__}", permanent=True)
        report.failed += 1
        log.error("outbox message cannot be built", extra={"event": "outbox.failed", **ids})
        return False
    try:
        connection.send(email)
    except MessageRefusedError as error:
        gave_up = _record_failure(message, claim_id, str(error), permanent=error.permanent)
        if gave_up:
            report.failed += 1
        else:
            report.retrying += 1
        return False
    _finish(message, claim_id, STATUS_SENT, "", message_id=email["Message-ID"])
    report.sent += 1
    log.info("email sent", extra={"event": "outbox.sent", "kind": message.kind, **ids})
    return True


def _finish(
    message: OutboxMessage, claim_id: str, status: str, note: str, message_id: str | None = None
) -> None:
    now = clock.now()
    with write_transaction():
        done = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.leased_by == claim_id)
            .values(
                status=status,
                attempts=OutboxMessage.attempts + 1,
                sent_at=now if status == STATUS_SENT else None,
                last_error=note,
                message_id=message_id,
                lease_until=None,
                leased_by=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    if not done:
        # Our lease ran out and another sender took the message: it may go out twice.
        log.warning(
            "outbox lease lost before marking",
            extra={"event": "outbox.lease_lost", "message_id": message.id},
        )


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base ... capped at MAIL_RETRY_MAX_SECONDS."""
    config = current_app.config
    base = float(config["MAIL_RETRY_BASE_SECONDS"])
    cap = float(config["MAIL_RETRY_MAX_SECONDS"])
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def _record_failure(message: OutboxMessage, claim_id: str, error: str, *, permanent: bool) -> bool:
    """Count a failed attempt; True when the message is now marked failed for good."""
    attempts = message.attempts + 1
    gave_up = permanent or attempts >= int(current_app.config["MAIL_MAX_ATTEMPTS"])
    with write_transaction():
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id, OutboxMessage.leased_by == claim_id)
            .values(
                attempts=attempts,
                status=STATUS_FAILED if gave_up else STATUS_PENDING,
                next_attempt_at=clock.now() + retry_delay(attempts),
                last_error=error[:200],
                lease_until=None,
                leased_by=None,
            )
            .execution_options(synchronize_session=False)
        )
    if gave_up:
        log.error(
            "email failed for good",
            extra={
                "event": "outbox.failed",
                "message_id": message.id,
                "booking_id": message.booking_id,
                "attempts": attempts,
                "error": error[:200],
            },
        )
    return gave_up


def _release(claim_id: str, unused_tokens: list[str]) -> None:
    """Hand back whatever this claim still holds (unsent), for the next pass or sender, and
    withdraw the manage tokens minted for emails that did not go out."""
    with write_transaction():
        if unused_tokens:
            hashes = sorted(manage_links.token_hash(token) for token in unused_tokens)
            db.session.execute(delete(ManageLink).where(ManageLink.token_hash.in_(hashes)))
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.leased_by == claim_id)
            .values(lease_until=None, leased_by=None)
            .execution_options(synchronize_session=False)
        )


# --- the per-process sender thread ------------------------------------------------------------


class BackgroundSender:
    """A daemon thread per app process that runs `send_due` when woken or every poll period.

    It has its own app context and database session. After a pass that found the server
    unavailable it pauses MAIL_RETRY_BASE_SECONDS, however often it is woken, so a dead
    server costs one connection attempt per pause, not one per booking.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wakeup = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.passes = 0

    def wake(self) -> None:
        with self._lock:
            # A forked worker inherits the object but not the thread: start its own.
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._stopping.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
                self._thread.start()
        self._wakeup.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        poll = float(self.app.config["MAIL_POLL_SECONDS"])
        pause = float(self.app.config["MAIL_RETRY_BASE_SECONDS"])
        while not self._stopping.is_set():
            self._wakeup.wait(timeout=poll)
            self._wakeup.clear()
            if self._stopping.is_set():
                return
            unavailable = True
            try:
                with self.app.app_context():
                    try:
                        unavailable = send_due().server_unavailable
                    finally:
                        db.session.remove()
            except Exception:
                log.exception("outbox background pass failed", extra={"event": "outbox.error"})
            self.passes += 1
            if unavailable:
                self._stopping.wait(pause)
