"""Reminders: REMINDER_BEFORE ahead, once per booking, never for a cancelled or past one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from mail_helpers import dissect
from smtp_server import smtp_server

from microsite.models.outbox import KIND_REMINDER
from microsite.services import lifecycle, outbox, reminders
from microsite.services.booking import slot_key

THURSDAY_9AM = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
FRIDAY_9AM = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


@pytest.fixture
def smtp():
    with smtp_server() as (port, handler):
        yield SimpleNamespace(port=port, handler=handler)


@pytest.fixture
def app_config(app_config, smtp):
    app_config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port)
    return app_config


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type, make_booking):
    clinician = make_clinician()
    consultation_type = make_consultation_type()
    # Booked on Monday morning (the frozen clock), for Thursday and Friday.
    thursday = make_booking(clinician, consultation_type, THURSDAY_9AM)
    friday = make_booking(clinician, consultation_type, FRIDAY_9AM)
    return SimpleNamespace(
        clinician=clinician, type=consultation_type, thursday=thursday, friday=friday
    )


def reminders_of(booking) -> list:
    return [m for m in outbox.messages_for_booking(booking.id) if m.kind == KIND_REMINDER]


def test_a_reminder_goes_out_once_when_the_booking_comes_within_a_day(
    app, clinic, frozen_clock, smtp
):
    runner = CliRunner()
    assert "0 queued" in runner.invoke(app.cli, ["reminders", "send"]).output  # too early
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=23))
    first = runner.invoke(app.cli, ["reminders", "send"])
    assert first.exit_code == 0, first.output
    assert "1 queued" in first.output
    assert "sent 1" in first.output
    second = runner.invoke(app.cli, ["reminders", "send"])
    assert "0 queued" in second.output
    assert len(reminders_of(clinic.thursday)) == 1
    assert reminders_of(clinic.friday) == []
    (received,) = smtp.handler.wait_for(1)
    mail = dissect(received.message)
    assert received.rcpt_tos == (clinic.thursday.patient_email,)
    assert (
        mail.subject == f"Reminder: your consultation — Bluewater, ref {clinic.thursday.reference}"
    )
    assert mail.ics is None  # a reminder reminds; the calendar already has the event
    assert mail.manage_token  # with the manage link
    assert "Thursday, December 3, 2026 at 9:00 AM EST" in mail.text


def test_no_reminder_for_a_cancelled_or_past_booking(app, clinic, frozen_clock):
    lifecycle.cancel_booking(clinic.thursday.id, actor="cli")
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=1))
    assert reminders.queue_due_reminders() == 0
    frozen_clock.set(THURSDAY_9AM + timedelta(hours=2))  # Thursday's is past; Friday's is due
    assert reminders.queue_due_reminders() == 1
    assert reminders_of(clinic.thursday) == []
    assert len(reminders_of(clinic.friday)) == 1


def test_a_reminder_queued_before_a_cancellation_is_not_sent(app, clinic, frozen_clock, smtp):
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=20))
    assert reminders.queue_due_reminders() == 1
    lifecycle.cancel_booking(clinic.thursday.id, actor="cli")
    report = outbox.send_due()
    assert report.skipped == 1
    (reminder,) = reminders_of(clinic.thursday)
    assert reminder.status == "skipped"
    assert [dissect(r.message).method for r in smtp.handler.wait_for(3)] == ["CANCEL"] * 3


def test_a_booking_made_inside_the_window_gets_no_separate_reminder(
    app, clinic, frozen_clock, make_booking
):
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=20))
    late = make_booking(clinic.clinician, clinic.type, THURSDAY_9AM + timedelta(hours=2))
    assert reminders.queue_due_reminders() == 1  # Thursday 9am's, not the one just booked
    assert reminders_of(late) == []


def test_a_rescheduled_booking_is_reminded_of_its_new_time(app, clinic, frozen_clock):
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=23))
    assert reminders.queue_due_reminders() == 1
    lifecycle.reschedule_booking(
        clinic.thursday.id,
        key=slot_key(THURSDAY_9AM + timedelta(hours=3), clinic.clinician.id),
        actor="cli",
    )
    assert reminders.queue_due_reminders() == 0  # 26 hours ahead now: not yet
    frozen_clock.advance(timedelta(hours=3))
    assert reminders.queue_due_reminders() == 1
    assert reminders.queue_due_reminders() == 0
    assert len(reminders_of(clinic.thursday)) == 2


def test_the_window_is_a_setting(app, clinic, frozen_clock):
    app.config["REMINDER_BEFORE"] = timedelta(hours=72)
    frozen_clock.set(THURSDAY_9AM - timedelta(hours=71))
    assert reminders.queue_due_reminders() == 1
