"""Forms of the console's booking actions: the shape of input only (the services decide).

A booking staff make for a caller is checked by the patients' own BookingForm, minus what is
only for the public page: the bot guards (honeypot, time stamp) and the patient's own ticks,
which staff confirm by phone instead.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from .forms import BookingForm
from .services.staff_actions import CANCEL_REASONS
from .staff_forms import NOTE_MAX_LENGTH, choices


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class CancelForm(FlaskForm):
    reason = SelectField(
        "Reason",
        choices=choices([("", "Choose a reason"), *CANCEL_REASONS.items()]),
        validators=[DataRequired("Choose why the consultation is cancelled.")],
        description="The patient, the clinician and the clinic mailbox are emailed.",
    )
    note = TextAreaField(
        "Internal note (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=NOTE_MAX_LENGTH, message=f"Keep notes under {NOTE_MAX_LENGTH} characters."),
        ],
        description="Kept with the booking's internal notes; the patient never sees it.",
    )


class StaffRescheduleForm(FlaskForm):
    slot = HiddenField(validators=[DataRequired(), Length(max=40)])


class StaffBookingForm(BookingForm):
    """The patient's details as a caller gives them, checked exactly as on the public form."""

    # Removed: the public page's bot guards and the patient's own ticks.
    website = None
    started = None
    ack_not_emergency = None
    consent_privacy = BooleanField(
        "The caller agreed that the clinic may store these details to arrange the consultation "
        "(read them the privacy notice's summary).",
        validators=[DataRequired("Confirm the caller agreed to the privacy notice.")],
    )
    override_upcoming_limit = BooleanField(
        "Book even if this patient already has the most upcoming consultations allowed",
    )

    def looks_like_a_bot(self) -> bool:
        return False  # a signed-in staff member, not the public form
