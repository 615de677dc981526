"""A booking's `.ics` as a download: the one shape of the patient's and the console's."""

from __future__ import annotations

from flask import Response, current_app

from .. import clock, ics
from ..models import Booking
from ..services import calendar_events

PATIENT_FILENAME = "consultation.ics"


def booking_ics(
    booking: Booking,
    *,
    filename: str = PATIENT_FILENAME,
    audience: str = calendar_events.AUDIENCE_PATIENT,
) -> Response:
    """The booking as a plain calendar snapshot (no METHOD), sent as an attachment.

    `filename` must carry no patient data (the reference is fine); `audience` picks what
    the event may say (calendar_events: the patient's view by default).
    """
    body = ics.build_download(
        calendar_events.booking_event(booking, audience),
        now=clock.now(),
        prodid=current_app.config["ICS_PRODID"],
    )
    return Response(
        body,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
