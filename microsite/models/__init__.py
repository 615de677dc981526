"""Tables, one module per area; importing this package registers every table.

Datetimes are aware UTC (`UTCDateTime`); names ending in `_at` are instants. Add a new area as
its own module here and import it below, so `from microsite.models import X` keeps working.
"""

from .audit import AuditEvent
from .booking import (
    ACTIVE_BOOKING_SQL,
    BOOKING_ATTENDED,
    BOOKING_CANCELLED,
    BOOKING_CONFIRMED,
    BOOKING_NO_SHOW,
    BOOKING_STATUSES,
    MODE_IN_PERSON,
    MODE_VIDEO,
    Booking,
    Clinician,
    Closure,
    ConsultationType,
    WorkingHours,
)
from .feeds import FeedToken
from .history import BookingEvent
from .manage import ManageLink
from .outbox import OutboxMessage
from .staff import StaffAccount, StaffLoginFailure, StaffNote, StaffRecoveryCode, StaffSession

__all__ = [
    "ACTIVE_BOOKING_SQL",
    "BOOKING_ATTENDED",
    "BOOKING_CANCELLED",
    "BOOKING_CONFIRMED",
    "BOOKING_NO_SHOW",
    "BOOKING_STATUSES",
    "MODE_IN_PERSON",
    "MODE_VIDEO",
    "AuditEvent",
    "Booking",
    "BookingEvent",
    "Clinician",
    "Closure",
    "ManageLink",
    "OutboxMessage",
    "ConsultationType",
    "FeedToken",
    "StaffAccount",
    "StaffLoginFailure",
    "StaffNote",
    "StaffRecoveryCode",
    "StaffSession",
    "WorkingHours",
]
