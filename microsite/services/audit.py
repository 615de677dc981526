"""The audit trail: one row per staff view, export and change. Rows are only ever added.

`record_audit` writes in its own transaction (for views and exports, which change nothing
else); `record_bookings_shown` does the same for a page or export that showed many bookings,
one row per booking, so "who saw booking X" is a filter on `booking_id`; `add_audit` adds the
row to a service's open write transaction, so a change and its audit row commit together or
not at all. None takes patient data: `action` and `detail` are chosen by the code,
`booking_id` names the booking.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select

from .. import clock
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


def record_bookings_shown(
    actor_account_id: int | None, action: str, booking_ids: Iterable[int], detail: str = ""
) -> int:
    """Write one audit row per booking a page or export showed (one row with no booking when
    it showed none), in one INSERT statement and one transaction; the number of rows written.

    One row per booking rather than a list in `detail`: the admin's audit filter and its index
    on `booking_id` then find every page that showed a booking, with no string matching.
    """
    ids = sorted(set(booking_ids)) or [None]
    row = {
        "actor_account_id": actor_account_id,
        "action": action,
        "detail": detail[:DETAIL_MAX_LENGTH],
        "at": clock.now(),  # one instant for the whole page: it was one view
    }
    with write_transaction():
        db.session.execute(insert(AuditEvent), [{**row, "booking_id": i} for i in ids])
    return len(ids)


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
