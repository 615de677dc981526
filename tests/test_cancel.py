"""Cancelling a booking keeps it (status, UID, a higher SEQUENCE) and frees its time at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from booking_helpers import submit
from click.testing import CliRunner
from sqlalchemy import event, select

from microsite.extensions import db
from microsite.models import AuditEvent, Booking
from microsite.services.booking import cancel_booking
from microsite.services.errors import BookingNotFoundError

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def booking(frozen_clock, make_clinician, make_consultation_type, make_booking):
    return make_booking(make_clinician(), make_consultation_type(), TUESDAY_9AM)


def test_cancelling_keeps_the_booking_with_a_higher_sequence(booking, frozen_clock):
    uid = booking.uid
    frozen_clock.advance(timedelta(minutes=5))
    cancelled = cancel_booking(booking.reference.lower())
    assert cancelled.status == "cancelled"
    assert cancelled.uid == uid
    assert cancelled.sequence == 1
    assert cancelled.cancelled_at == frozen_clock()
    assert db.session.scalars(select(Booking)).one().id == booking.id  # not deleted


def test_cancelling_twice_changes_nothing_more(booking):
    cancel_booking(booking.reference)
    again = cancel_booking(booking.reference)
    assert again.sequence == 1


def test_an_unknown_reference_is_refused(booking):
    with pytest.raises(BookingNotFoundError):
        cancel_booking("ZZZZZZ")


def test_the_freed_time_can_be_booked_again(client, booking):
    key = f"{booking.clinician_id}-20261201T1400Z"
    url = f"/book/details?type={booking.consultation_type_id}&slot={key}"
    assert client.get(url).status_code == 409  # taken
    cancel_booking(booking.reference)
    assert submit(client, booking.consultation_type_id, key).status_code == 303


def test_the_cli_cancels_by_reference(app, booking):
    runner = CliRunner()
    result = runner.invoke(app.cli, ["bookings", "cancel", booking.reference])
    assert result.exit_code == 0, result.output
    assert f"Booking {booking.reference} is cancelled." in result.output
    missing = runner.invoke(app.cli, ["bookings", "cancel", "ZZZZZZ"])
    assert missing.exit_code != 0
    assert "No booking has that reference" in missing.output


def test_a_cancelled_booking_reads_as_cancelled_in_its_calendar_event(booking):
    from microsite import ics
    from microsite.services.calendar_events import booking_event

    cancel_booking(booking.reference)
    event = booking_event(booking)
    assert event.cancelled
    body = ics.build_download(event, now=booking.cancelled_at, prodid="-//t//t//EN")
    assert b"STATUS:CANCELLED" in body
    assert b"SEQUENCE:1" in body
    with pytest.raises(ValueError, match="cancel"):
        ics.build_request(
            event,
            organizer=ics.Party("bookings@example.test"),
            attendees=[ics.Party("dr@example.test")],
            now=booking.cancelled_at,
            prodid="-//t//t//EN",
        )


def test_the_history_says_who_created_and_who_cancelled(client, frozen_clock, booking):
    from microsite.services.history import booking_history

    key = f"{booking.clinician_id}-20261202T1400Z"
    assert submit(client, booking.consultation_type_id, key).status_code == 303
    made = db.session.scalars(select(Booking).where(Booking.id != booking.id)).one()
    frozen_clock.advance(timedelta(hours=1))
    cancel_booking(made.reference)
    history = [(e.kind, e.actor, e.at) for e in booking_history(made.id)]
    assert history == [
        ("created", "patient", made.created_at),
        ("cancelled", "cli", frozen_clock()),
    ]


def audit_of(booking_id: int) -> list[tuple]:
    db.session.rollback()
    return list(
        db.session.execute(
            select(AuditEvent.actor_account_id, AuditEvent.action).where(
                AuditEvent.booking_id == booking_id
            )
        )
    )


def test_the_cli_cancellation_is_audited_as_the_command_line(app, booking):
    result = CliRunner().invoke(app.cli, ["bookings", "cancel", booking.reference])
    assert result.exit_code == 0, result.output
    # No account: the admin's audit page shows "Command line" for it.
    assert audit_of(booking.id) == [(None, "booking.cancelled")]
    # Cancelling again changes nothing, so nothing more is audited.
    CliRunner().invoke(app.cli, ["bookings", "cancel", booking.reference])
    assert audit_of(booking.id) == [(None, "booking.cancelled")]


def test_a_cli_cancellation_whose_audit_row_fails_is_not_made(app, booking):
    def refuse(_mapper, _connection, _row) -> None:
        raise RuntimeError("the audit row could not be written")

    event.listen(AuditEvent, "before_insert", refuse)
    try:
        result = CliRunner().invoke(app.cli, ["bookings", "cancel", booking.reference])
    finally:
        event.remove(AuditEvent, "before_insert", refuse)
    assert result.exit_code != 0
    db.session.rollback()
    assert db.session.get(Booking, booking.id, populate_existing=True).status == "confirmed"
    assert audit_of(booking.id) == []
