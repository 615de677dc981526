"""A booking as a calendar event: the one place that decides what a calendar may show."""

from __future__ import annotations

from flask import current_app

from .. import ics
from ..clinic import postal_address
from ..models import Booking


def booking_event(booking: Booking) -> ics.CalendarEvent:
    """The privacy-safe calendar view of a booking: no name, nothing about the treatment."""
    config = current_app.config
    if booking.consultation_type.is_video:
        location = "Video consultation (the clinic sends the link by email)"
    else:
        location = postal_address()
    return ics.CalendarEvent(
        uid=booking.uid,
        sequence=booking.sequence,
        start=booking.starts_at,
        end=booking.ends_at,
        summary=f"Consultation — {config['CLINIC_SHORT_NAME']}, ref {booking.reference}",
        location=location,
        description=(
            f"Reference {booking.reference}. To change or cancel, call {config['CLINIC_PHONE']}."
        ),
        url=config["SITE_URL"],
        # A cancelled booking must read as cancelled wherever it is shown (download, feed):
        # at its raised SEQUENCE, a CONFIRMED copy would bring the appointment back.
        cancelled=not booking.is_active,
    )
