"""A booking as a calendar event: the one place that decides what a calendar may show."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from .. import ics
from ..clinic import postal_address
from ..models import Booking

# Who will see the event: the patient's own calendar, or staff calendars (shared, synced).
AUDIENCE_PATIENT = "patient"
AUDIENCE_STAFF = "staff"


def booking_event(booking: Booking, audience: str = AUDIENCE_PATIENT) -> ics.CalendarEvent:
    """The privacy-safe calendar view of a booking: no name, nothing about the treatment.

    The patient's download uses the default; a staff feed passes AUDIENCE_STAFF.
    """
    return snapshot_event(
        booking,
        sequence=booking.sequence,
        start=booking.starts_at,
        end=booking.ends_at,
        # A cancelled booking must read as cancelled wherever it is shown (download, feed):
        # at its raised SEQUENCE, a CONFIRMED copy would bring the appointment back.
        cancelled=not booking.is_active,
        audience=audience,
    )


def snapshot_event(
    booking: Booking,
    *,
    sequence: int,
    start: datetime,
    end: datetime,
    cancelled: bool,
    audience: str = AUDIENCE_PATIENT,
) -> ics.CalendarEvent:
    """The booking's event as it was at one moment (an outbox message's snapshot).

    The staff version says where the details are (the staff console, behind sign-in) instead
    of printing any; the patient version says how to change it. Neither carries the manage
    link: calendars are shared and synced, and the link is as good as the patient's key.
    """
    config = current_app.config
    if booking.consultation_type.is_video:
        location = "Video consultation (the clinic sends the link by email)"
    else:
        location = postal_address()
    site = config["SITE_URL"].rstrip("/")
    if audience == AUDIENCE_STAFF:
        description = (
            f"Reference {booking.reference}. Patient details: sign in to the staff console, "
            f"{site}/staff/."
        )
    else:
        description = (
            f"Reference {booking.reference}. To change or cancel, use the link in your "
            f"confirmation email or call {config['CLINIC_PHONE']}."
        )
    return ics.CalendarEvent(
        uid=booking.uid,
        sequence=sequence,
        start=start,
        end=end,
        summary=event_summary(booking),
        location=location,
        description=description,
        url=site,
        cancelled=cancelled,
    )


def event_summary(booking: Booking) -> str:
    """The title calendars show: the short name only (the full name says "Psychiatry")."""
    return f"Consultation — {current_app.config['CLINIC_SHORT_NAME']}, ref {booking.reference}"
