"""What each outbox message says: renders one message from its snapshot, at send time.

Subjects and calendar titles carry the clinic's short name and the reference only: no patient
name, nothing about the treatment (the full clinic name says "Psychiatry", so it never appears
there). Staff emails say where the details are (the staff console) rather than printing them.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from flask import current_app, render_template

from .. import ics, mail
from ..extensions import db
from ..models import Booking, Clinician, OutboxMessage
from ..models.outbox import (
    KIND_CANCELLATION,
    KIND_CONFIRMATION,
    KIND_INVITE,
    KIND_REMINDER,
    KIND_UPDATE,
    ROLE_CLINIC,
    ROLE_CLINICIAN,
    ROLE_PATIENT,
)
from . import calendar_events

PATIENT_SUBJECTS = {
    KIND_CONFIRMATION: "Your consultation is booked",
    KIND_UPDATE: "Your consultation has moved",
    KIND_CANCELLATION: "Your consultation is cancelled",
    KIND_REMINDER: "Reminder: your consultation",
}
STAFF_SUBJECTS = {
    KIND_INVITE: "New consultation",
    KIND_UPDATE: "Consultation moved",
    KIND_CANCELLATION: "Consultation cancelled",
}


class NotApplicableError(Exception):
    """The message no longer applies (a reminder for a cancelled, moved or past booking)."""


def needs_manage_link(message: OutboxMessage) -> bool:
    """Patient emails carry a manage link, except a cancellation (the link is dead by then)."""
    return message.recipient_role == ROLE_PATIENT and message.kind != KIND_CANCELLATION


def subject_for(message: OutboxMessage, booking: Booking) -> str:
    subjects = PATIENT_SUBJECTS if message.recipient_role == ROLE_PATIENT else STAFF_SUBJECTS
    short_name = current_app.config["CLINIC_SHORT_NAME"]
    return f"{subjects[message.kind]} — {short_name}, ref {booking.reference}"


def render(message: OutboxMessage, *, now: datetime, manage_url: str = "") -> EmailMessage:
    """The email for an outbox message, as its booking was when the message was caused."""
    config = current_app.config
    booking = db.session.get(Booking, message.booking_id)
    clinician = db.session.get(Clinician, message.clinician_id)
    if message.kind == KIND_REMINDER and (
        not booking.is_active or booking.starts_at != message.starts_at or booking.starts_at <= now
    ):
        raise NotApplicableError()
    clinic = mail.Mailbox(config["CLINIC_BOOKING_MAILBOX"], config["CLINIC_SHORT_NAME"])
    is_patient = message.recipient_role == ROLE_PATIENT
    recipient = {
        ROLE_PATIENT: mail.Mailbox(booking.patient_email, booking.patient_name),
        ROLE_CLINICIAN: mail.Mailbox(clinician.email, clinician.name),
        ROLE_CLINIC: clinic,
    }[message.recipient_role]
    context = {
        "kind": message.kind,
        "booking": booking,
        "clinician": clinician,
        "consultation_type": booking.consultation_type,
        "starts_at": message.starts_at,
        "ends_at": message.ends_at,
        "previous_starts_at": message.previous_starts_at,
        "manage_url": manage_url,
        "staff_url": f"{config['SITE_URL'].rstrip('/')}/staff/",
        "book_url": f"{config['SITE_URL'].rstrip('/')}/book/",
        "short_name": config["CLINIC_SHORT_NAME"],
    }
    template = "email/patient" if is_patient else "email/staff"
    return mail.build_message(
        sender=clinic,
        recipient=recipient,
        subject=subject_for(message, booking),
        text=render_template(f"{template}.txt", **context),
        html=render_template(f"{template}.html", **context),
        now=now,
        message_id=mail.new_message_id(config["CLINIC_DOMAIN"]),
        calendar=_calendar(message, booking, clinician, clinic, now),
    )


def _calendar(
    message: OutboxMessage,
    booking: Booking,
    clinician: Clinician,
    clinic: mail.Mailbox,
    now: datetime,
) -> mail.CalendarPart | None:
    if message.kind == KIND_REMINDER:
        return None  # the confirmation already put it in the calendar; a reminder only reminds
    is_patient = message.recipient_role == ROLE_PATIENT
    cancel = message.kind == KIND_CANCELLATION
    event = calendar_events.snapshot_event(
        booking,
        sequence=message.sequence,
        start=message.starts_at,
        end=message.ends_at,
        cancelled=cancel,
        audience=calendar_events.AUDIENCE_PATIENT if is_patient else calendar_events.AUDIENCE_STAFF,
    )
    if is_patient:
        # No CN: the patient's own calendar knows who they are, and a name is one more field
        # that could carry something odd into the file.
        attendees = [ics.Party(booking.patient_email)]
    else:
        # Staff copies list the clinician and the clinic mailbox, never the patient.
        attendees = [ics.Party(clinician.email, clinician.name), ics.Party(clinic.email)]
    build = ics.build_cancel if cancel else ics.build_request
    body = build(
        event,
        organizer=ics.Party(clinic.email, clinic.name),
        attendees=attendees,
        now=now,
        prodid=current_app.config["ICS_PRODID"],
    )
    return mail.CalendarPart(
        method="CANCEL" if cancel else "REQUEST",
        ics=body,
        filename="cancel.ics" if cancel else "invite.ics",
    )
