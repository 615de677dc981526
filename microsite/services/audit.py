"""The audit trail: one row per staff view, export and change. Rows are only ever added.

`record_audit` writes in its own transaction (for views and exports, which change nothing
else); `add_audit` adds the row to a service's open write transaction, so a change and its
audit row commit together or not at all. Neither takes patient data: `action` and `detail`
are chosen by the code, `booking_id` names the booking.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..database import write_transaction
from ..extensions import db
from ..models import AuditEvent

DETAIL_MAX_LENGTH = 200


def add_audit(
    actor_account_id: int | None, action: str, booking_id: int | None = None, detail: str = ""
) -> AuditEvent:
    """Add one audit row to the current write transaction (the caller commits)."""
    row = AuditEvent(
        actor_account_id=actor_account_id,
        action=action,
        booking_id=booking_id,
        detail=detail[:DETAIL_MAX_LENGTH],
    )
    db.session.add(row)
    return row


def record_audit(
    actor_account_id: int | None, action: str, booking_id: int | None = None, detail: str = ""
) -> None:
    """Write and commit one audit row now (who, what, which booking; never patient data)."""
    with write_transaction():
        add_audit(actor_account_id, action, booking_id, detail)


def audit_query(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_account_id: int | None = None,
    action: str = "",
    booking_id: int | None = None,
):
    """The audit rows matching the filters, newest first (a select to page or export)."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    if actor_account_id is not None:
        query = query.where(AuditEvent.actor_account_id == actor_account_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if booking_id is not None:
        query = query.where(AuditEvent.booking_id == booking_id)
    return query


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by("action")))
