"""Domain errors the views catch and show; none of them carries patient data."""

from __future__ import annotations

from datetime import datetime


class BookingError(Exception):
    """Base of every booking failure a patient can be shown."""

    status_code = 400


class SlotNotBookableError(BookingError):
    """The requested time was never offered, is past, too soon or too far ahead (HTTP 422)."""

    status_code = 422

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SlotTakenError(BookingError):
    """Someone else booked that time first (HTTP 409)."""

    status_code = 409

    def __init__(self, start: datetime | None = None, clinician_id: int | None = None) -> None:
        super().__init__("Sorry, that time was just taken by someone else.")
        self.start = start
        self.clinician_id = clinician_id


class UnknownConsultationTypeError(BookingError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("That kind of consultation is not offered.")


class BookingNotFoundError(BookingError):
    status_code = 404

    def __init__(self) -> None:
        super().__init__("No booking has that reference.")


class TooManyUpcomingError(BookingError):
    """The patient (same email or phone) already holds the clinic's limit of upcoming visits."""

    status_code = 409

    def __init__(self, limit: int) -> None:
        super().__init__(
            "You already have an upcoming consultation with us."
            if limit == 1
            else f"You already have {limit} upcoming consultations with us."
        )
        self.limit = limit


class FormAlreadyUsedError(BookingError):
    """The same booking form was sent again with another time or other details (HTTP 422)."""

    status_code = 422

    def __init__(self) -> None:
        super().__init__(
            "This form was already used to book a consultation, so it cannot book another "
            "one or change that one. Please start a new booking."
        )
