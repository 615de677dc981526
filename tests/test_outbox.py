"""Emails through the outbox, received by a real SMTP server (aiosmtpd) on loopback.

Each booking, reschedule and cancellation queues its emails in its own transaction; one
`send_due` pass delivers them as iMIP that mail clients accept; an unreachable or refusing
server costs retries with backoff, never a booking.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from booking_helpers import VALID_DETAILS, open_form, slot_key_for, submit
from mail_helpers import REVEALING, dissect
from smtp_server import closed_port, smtp_server
from sqlalchemy import func, select
from tests_support import csrf_token

from microsite.extensions import db
from microsite.models import Booking, OutboxMessage
from microsite.services import lifecycle, outbox, reminders

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
WEDNESDAY_11AM = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
MAILBOX = "bookings@bluewater-psychiatry.example"


@pytest.fixture
def smtp():
    with smtp_server() as (port, handler):
        yield SimpleNamespace(port=port, handler=handler)


@pytest.fixture
def app_config(app_config, smtp):
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_TIMEOUT=5)
    return app_config


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    clinician = make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test")
    return SimpleNamespace(clinician=clinician, type=make_consultation_type())


def book(client, clinic, start: datetime = TUESDAY_9AM, **fields) -> Booking:
    key = slot_key_for(start, clinic.clinician.id)
    response = submit(client, clinic.type.id, key, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return db.session.scalars(select(Booking).where(Booking.starts_at == start)).one()


def by_recipient(received) -> dict[str, list]:
    mails: dict[str, list] = {}
    for item in received:
        (rcpt,) = item.rcpt_tos  # one recipient per email: nobody sees anyone else's address
        mails.setdefault(rcpt, []).append(dissect(item.message))
    return mails


def test_a_booking_queues_a_confirmation_and_two_invites(client, clinic, smtp):
    booking = book(client, clinic)
    messages = outbox.messages_for_booking(booking.id)
    assert sorted((m.kind, m.recipient_role, m.status) for m in messages) == [
        ("confirmation", "patient", "pending"),
        ("invite", "clinic", "pending"),
        ("invite", "clinician", "pending"),
    ]
    assert smtp.handler.received == []  # nothing is sent inside the request


def test_a_booking_and_its_emails_commit_together(client, clinic, monkeypatch):
    def broken(_booking):
        raise RuntimeError("the outbox insert failed")

    monkeypatch.setattr(outbox, "queue_new_booking", broken)
    key = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    assert submit(client, clinic.type.id, key).status_code == 500
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_a_refused_booking_queues_nothing(client, app, clinic):
    other = app.test_client()
    key = slot_key_for(TUESDAY_9AM, clinic.clinician.id)
    response, hidden = open_form(other, clinic.type.id, key)  # both patients see the time free
    book(client, clinic)
    data = {**hidden, **VALID_DETAILS, "csrf_token": csrf_token(response.get_data(as_text=True))}
    assert other.post("/book/details", data=data).status_code == 409
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 3


def test_one_pass_delivers_imip_to_the_patient_the_clinician_and_the_clinic(client, clinic, smtp):
    booking = book(client, clinic)
    report = outbox.send_due()
    assert (report.sent, report.retrying, report.failed) == (3, 0, 0)
    mails = by_recipient(smtp.handler.wait_for(3))
    assert set(mails) == {VALID_DETAILS["email"], "a.quinn@example.test", MAILBOX}
    message_ids = set()
    for address, (mail,) in mails.items():
        assert mail.method == mail.method_param == "REQUEST"
        assert mail.uid == booking.uid
        assert mail.sequence == 0
        assert str(mail.event["STATUS"]) == "CONFIRMED"
        assert str(mail.message["From"]) == f"Bluewater <{MAILBOX}>"
        assert str(mail.event["ORGANIZER"]) == f"mailto:{MAILBOX}"
        assert address in mail.to
        message_ids.add(str(mail.message["Message-ID"]))
    assert len(message_ids) == 3

    patient = mails[VALID_DETAILS["email"]][0]
    assert [str(a) for a in _attendees(patient.event)] == [f"mailto:{VALID_DETAILS['email']}"]
    assert patient.subject == f"Your consultation is booked — Bluewater, ref {booking.reference}"
    assert patient.manage_token
    assert patient.manage_token in patient.html
    assert "Tuesday, December 1, 2026 at 9:00 AM EST" in patient.text
    for staff in (mails["a.quinn@example.test"][0], mails[MAILBOX][0]):
        assert staff.subject == f"New consultation — Bluewater, ref {booking.reference}"
        assert sorted(str(a) for a in _attendees(staff.event)) == [
            "mailto:a.quinn@example.test",
            f"mailto:{MAILBOX}",
        ]
        assert "http://127.0.0.1:5000/staff/" in staff.text
        assert staff.manage_token is None
    assert all(m.status == "sent" for m in outbox.messages_for_booking(booking.id))
    assert outbox.send_due().sent == 0  # nothing twice


def test_subjects_titles_and_staff_emails_reveal_nothing(
    client, frozen_clock, make_clinician, make_consultation_type, smtp
):
    # Names that would give the treatment away if they leaked into a title: the type's and
    # the clinician's. Every kind of message is sent: confirmation, invite, reschedule,
    # reminder and cancellation.
    clinic = SimpleNamespace(
        clinician=make_clinician(name="Dr. Psychiatrist Depression", email="a.quinn@example.test"),
        type=make_consultation_type(name="Ketamine assessment"),
    )
    booking = book(client, clinic)
    lifecycle.reschedule_booking(
        booking.id, key=slot_key_for(WEDNESDAY_11AM, clinic.clinician.id), actor="patient"
    )
    outbox.send_due()
    frozen_clock.advance(WEDNESDAY_11AM - timedelta(hours=23) - frozen_clock())
    assert reminders.queue_due_reminders() == 1
    outbox.send_due()  # the reminder goes before the cancellation makes it moot
    lifecycle.cancel_booking(booking.id, actor="cli")
    outbox.send_due()
    mails = by_recipient(smtp.handler.wait_for(10))
    sent = [(address, mail) for address, items in mails.items() for mail in items]
    assert len(sent) == 10
    kinds = {m.kind for m in outbox.messages_for_booking(booking.id) if m.status == "sent"}
    assert kinds == {"confirmation", "invite", "update", "reminder", "cancellation"}
    private = [VALID_DETAILS["full_name"], VALID_DETAILS["email"], "555", VALID_DETAILS["note"]]
    names = [VALID_DETAILS["full_name"], *VALID_DETAILS["full_name"].split()]
    for address, mail in sent:
        titles = [mail.subject] + ([str(mail.event["SUMMARY"])] if mail.ics else [])
        for title in titles:
            assert not REVEALING.search(title), title
            assert not any(name in title for name in names), title
            assert "Psychiatry" not in title
        if address != VALID_DETAILS["email"]:  # staff: not one patient fact anywhere
            event = mail.event
            shown = [str(event.get(name, "")) for name in ("DESCRIPTION", "LOCATION")]
            for part in (mail.text, mail.html, mail.ics.decode()):
                for fact in private:
                    assert fact not in part, (fact, address)
            # What a reader sees (the PRODID and the mailbox's domain are not shown). The
            # clinician's own name may be in the body of their invite; nothing else may.
            for part in (mail.text, mail.html, *shown):
                assert not REVEALING.search(part.replace(clinic.clinician.name, "")), part


def test_create_reschedule_cancel_is_one_uid_with_sequence_0_1_2(client, clinic, smtp):
    booking = book(client, clinic)
    outbox.send_due()
    lifecycle.reschedule_booking(
        booking.id, key=slot_key_for(WEDNESDAY_11AM, clinic.clinician.id), actor="patient"
    )
    outbox.send_due()
    lifecycle.cancel_booking(booking.id, actor="cli")
    outbox.send_due()
    mails = by_recipient(smtp.handler.wait_for(9))
    assert set(mails) == {VALID_DETAILS["email"], "a.quinn@example.test", MAILBOX}
    for items in mails.values():
        assert [(m.method, m.sequence) for m in items] == [
            ("REQUEST", 0),
            ("REQUEST", 1),
            ("CANCEL", 2),
        ]
        assert {m.uid for m in items} == {booking.uid}
        assert str(items[1].event["DTSTART"].dt) == "2026-12-02 16:00:00+00:00"
        assert str(items[2].event["STATUS"]) == "CANCELLED"
    patient = mails[VALID_DETAILS["email"]]
    assert patient[1].manage_token
    assert patient[2].manage_token is None
    assert "It was Tuesday, December 1, 2026 at 9:00 AM EST" in patient[1].text


def test_moving_to_another_clinician_cancels_the_first_ones_copy(
    client, clinic, smtp, make_clinician
):
    other = make_clinician(name="Dr. Other", email="other@example.test")
    booking = book(client, clinic)
    outbox.send_due()
    lifecycle.reschedule_booking(booking.id, key=slot_key_for(TUESDAY_9AM, other.id), actor="cli")
    outbox.send_due()
    mails = by_recipient(smtp.handler.wait_for(7))
    assert [(m.method, m.sequence) for m in mails["a.quinn@example.test"]] == [
        ("REQUEST", 0),
        ("CANCEL", 1),
    ]
    assert [(m.method, m.sequence) for m in mails["other@example.test"]] == [("REQUEST", 1)]


def test_a_temporary_refusal_backs_off_exponentially_then_fails_and_can_be_retried(
    app, client, clinic, smtp, frozen_clock, caplog
):
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    booking = book(client, clinic)
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    delays = []
    for _attempt in range(3):
        started = frozen_clock()
        report = outbox.send_due()
        assert report.sent == 0
        messages = outbox.messages_for_booking(booking.id)
        delays.append({m.next_attempt_at - started for m in messages})
        frozen_clock.advance(timedelta(hours=2))
    assert delays[:2] == [{timedelta(seconds=60)}, {timedelta(seconds=120)}]
    messages = outbox.messages_for_booking(booking.id)
    assert {(m.status, m.attempts, m.last_error) for m in messages} == {
        ("failed", 3, "SMTPDataError 451")
    }
    assert outbox.health_summary() == {
        "pending": 0,
        "failed": 3,
        "oldest_due_at": None,
        "waiting_since": None,
    }
    failures = [r for r in caplog.records if r.getMessage() == "email failed for good"]
    assert len(failures) == 3
    assert all(r.booking_id == booking.id for r in failures)
    assert VALID_DETAILS["email"] not in caplog.text

    smtp.handler.refuse_with = None
    for message in messages:
        assert outbox.retry_message(message.id).status == "pending"
    assert outbox.send_due().sent == 3
    assert len(smtp.handler.wait_for(3)) == 3


def test_failed_attempts_leave_no_manage_tokens_and_each_delivered_link_works(
    app, client, clinic, smtp, frozen_clock
):
    app.config["MAIL_RETRY_MAX_SECONDS"] = 60
    booking = book(client, clinic)
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    for _attempt in range(4):  # an SMTP outage: every attempt refused
        assert outbox.send_due().retrying == 3
        frozen_clock.advance(timedelta(seconds=61))
    app.config["MAIL_PORT"] = closed_port()  # then the server is down altogether
    assert outbox.send_due().server_unavailable
    assert manage_link_count(booking.id) == 0

    app.config["MAIL_PORT"] = smtp.port
    smtp.handler.refuse_with = None
    frozen_clock.advance(timedelta(seconds=61))
    assert outbox.send_due().sent == 3
    lifecycle.reschedule_booking(
        booking.id, key=slot_key_for(WEDNESDAY_11AM, clinic.clinician.id), actor="patient"
    )
    assert outbox.send_due().sent == 3
    patient_mails = by_recipient(smtp.handler.wait_for(6))[VALID_DETAILS["email"]]
    tokens = [mail.manage_token for mail in patient_mails]
    assert len(tokens) == 2
    assert None not in tokens
    assert manage_link_count(booking.id) == 2  # one row per delivered patient email
    for token in tokens:
        assert client.get(f"/manage/{token}").status_code == 200


def manage_link_count(booking_id: int) -> int:
    from microsite.models import ManageLink

    query = select(func.count()).select_from(ManageLink).where(ManageLink.booking_id == booking_id)
    return db.session.scalar(query)


def test_a_permanent_refusal_fails_at_once(app, client, clinic, smtp):
    booking = book(client, clinic)
    smtp.handler.refuse_with = "554 5.7.1 rejected"
    report = outbox.send_due()
    assert (report.sent, report.failed) == (0, 3)
    assert {m.status for m in outbox.messages_for_booking(booking.id)} == {"failed"}


def test_a_server_that_is_down_stops_the_pass_and_keeps_every_message(
    app, client, clinic, frozen_clock
):
    app.config["MAIL_PORT"] = closed_port()
    booking = book(client, clinic)
    report = outbox.send_due()
    assert report.server_unavailable
    assert report.sent == 0
    messages = outbox.messages_for_booking(booking.id)
    assert sorted(m.attempts for m in messages) == [0, 0, 1]  # one try, then it stopped
    assert all(m.status == "pending" and m.lease_until is None for m in messages)
    summary = outbox.health_summary()
    assert summary["pending"] == 3
    assert summary["failed"] == 0
    assert summary["oldest_due_at"] == "2026-11-30T13:00:00Z"


def test_a_claimed_message_is_left_to_its_sender_until_the_lease_runs_out(
    app, client, clinic, smtp, frozen_clock
):
    booking = book(client, clinic)
    claimed = outbox._claim("another-sender", set(), 10)
    assert len(claimed) == 3
    assert outbox._claim("a-third-sender", set(), 10) == []  # the database says no
    assert outbox.send_due().sent == 0
    frozen_clock.advance(timedelta(seconds=app.config["MAIL_LEASE_SECONDS"] + 1))
    assert outbox.send_due().sent == 3  # the first sender died: its lease ran out
    assert {m.status for m in outbox.messages_for_booking(booking.id)} == {"sent"}


def test_readyz_reports_the_outbox(client, clinic):
    book(client, clinic)
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok"
    assert body["checks"]["outbox"] == {
        "ok": True,
        "pending": 3,
        "failed": 0,
        "oldest_due_at": "2026-11-30T13:00:00Z",
        "waiting_since": "2026-11-30T13:00:00Z",
    }


def test_readyz_says_503_when_email_has_stopped_going_out(app, client, clinic, frozen_clock):
    app.config["MAIL_SERVER"] = "127.0.0.1"  # configured, but nothing has been sent
    book(client, clinic)
    frozen_clock.advance(timedelta(seconds=app.config["OUTBOX_STUCK_AFTER_SECONDS"] - 1))
    assert client.get("/readyz").status_code == 200
    frozen_clock.advance(timedelta(seconds=2))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["outbox"]["ok"] is False


def test_readyz_says_503_when_the_server_refuses_every_message_for_too_long(
    app, client, clinic, smtp, frozen_clock
):
    # Each refusal backs the message off, so its next attempt is always in the future and
    # nothing is ever "overdue"; what matters is how long the patient has waited.
    app.config["MAIL_RETRY_MAX_SECONDS"] = 120
    stuck_after = app.config["OUTBOX_STUCK_AFTER_SECONDS"]
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    book(client, clinic)
    first_pass = frozen_clock()
    while frozen_clock() - first_pass <= timedelta(seconds=stuck_after):
        report = outbox.send_due()
        assert (report.sent, report.retrying, report.failed) == (0, 3, 0)
        next_due = datetime.fromisoformat(outbox.health_summary()["oldest_due_at"])
        assert next_due > frozen_clock()  # never overdue
        frozen_clock.advance(timedelta(seconds=120))
    outbox.send_due()  # refused again: each message is due in two minutes
    response = client.get("/readyz")
    assert response.status_code == 503
    outbox_check = response.get_json()["checks"]["outbox"]
    assert outbox_check["ok"] is False
    assert outbox_check["waiting_since"] == "2026-11-30T13:00:00Z"
    assert outbox_check["error"] == "email is not going out"

    smtp.handler.refuse_with = None  # the server takes mail again: ready once it has gone
    frozen_clock.advance(timedelta(seconds=120))
    assert outbox.send_due().sent == 3
    assert client.get("/readyz").status_code == 200


def test_without_a_mail_server_nothing_is_sent_and_everything_waits(app, client, clinic):
    app.config["MAIL_SERVER"] = ""
    booking = book(client, clinic)
    assert outbox.send_due().disabled
    assert {m.status for m in outbox.messages_for_booking(booking.id)} == {"pending"}


def test_the_background_sender_sends_right_after_the_commit(app, client, clinic, smtp):
    app.config["MAIL_SEND_IN_BACKGROUND"] = True
    try:
        booking = book(client, clinic)
        received = smtp.handler.wait_for(3, timeout=15)
        statuses = _wait_for_statuses(booking.id, {"sent"}, timeout=15)
    finally:
        sender = app.extensions.get("outbox_sender")
        if sender is not None:
            sender.stop()
    assert len(received) == 3
    assert statuses == {"sent"}


def test_the_cli_cancel_sends_the_cancellations(app, client, clinic, smtp):
    from click.testing import CliRunner

    booking = book(client, clinic)
    result = CliRunner().invoke(app.cli, ["bookings", "cancel", booking.reference])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app.cli, ["outbox", "send"])
    assert "sent 6" in result.output, result.output
    cancels = [m for m in map(dissect, (r.message for r in smtp.handler.wait_for(6)))]
    assert sorted(m.method for m in cancels) == ["CANCEL"] * 3 + ["REQUEST"] * 3


def test_cli_status_and_retry(app, client, clinic):
    from click.testing import CliRunner

    book(client, clinic)
    status = CliRunner().invoke(app.cli, ["outbox", "status"])
    assert '"pending": 3' in status.output
    missing = CliRunner().invoke(app.cli, ["outbox", "retry", "999999"])
    assert missing.exit_code != 0


def _wait_for_statuses(booking_id: int, wanted: set[str], timeout: float) -> set[str]:
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # see what the sender thread committed
        statuses = {m.status for m in outbox.messages_for_booking(booking_id)}
        if statuses == wanted or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)


def _attendees(event) -> list:
    value = event.get("ATTENDEE")
    return value if isinstance(value, list) else [value]


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd(caplog):
    caplog.set_level(logging.WARNING, logger="mail.log")
