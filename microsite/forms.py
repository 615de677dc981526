"""Flask-WTF forms: the shape of input only; the services decide what is bookable."""

from __future__ import annotations

from datetime import date

import phonenumbers
from flask import current_app
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from wtforms import BooleanField, DateField, EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from . import clock

NOTE_MAX_LENGTH = 500
OLDEST_AGE_YEARS = 120


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class BookingForm(FlaskForm):
    """The details a first consultation needs, and nothing more (see the privacy notice)."""

    full_name = StringField(
        "Full name",
        filters=[_strip],
        validators=[
            DataRequired("Enter your full name."),
            Length(max=120, message="Your name must be 120 characters or fewer."),
        ],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        "Email address",
        filters=[_strip],
        validators=[
            DataRequired("Enter your email address."),
            Length(max=254, message="Your email address must be 254 characters or fewer."),
            Email(
                "Enter an email address in the right format, like name@example.com.",
                check_deliverability=False,
            ),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    phone = StringField(
        "Mobile phone number",
        filters=[_strip],
        validators=[
            DataRequired("Enter your mobile phone number."),
            Length(max=32, message="Enter a phone number like (207) 555-0123."),
        ],
        render_kw={"autocomplete": "tel", "type": "tel"},
    )
    birth_date = DateField(
        "Date of birth",
        validators=[InputRequired("Enter your date of birth.")],
        format="%Y-%m-%d",
        render_kw={"autocomplete": "bday"},
    )
    note = TextAreaField(
        "Anything you'd like us to know before the consultation (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(
                max=NOTE_MAX_LENGTH,
                message=f"Please keep this to {NOTE_MAX_LENGTH} characters or fewer.",
            ),
        ],
    )
    ack_not_emergency = BooleanField(
        "I understand this website is not for emergencies.",
        validators=[
            DataRequired("Please confirm you understand this site is not for emergencies.")
        ],
    )
    consent_privacy = BooleanField(
        "I have read the privacy notice and agree that the clinic may store these details "
        "to arrange my consultation.",
        validators=[DataRequired("Please confirm you have read the privacy notice.")],
    )
    # Hidden state: the chosen slot, the form's identity for resends, and bot guards.
    consultation_type = HiddenField(validators=[DataRequired()])
    slot = HiddenField(validators=[DataRequired()])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    started = HiddenField()
    # Honeypot: hidden from people (CSS and aria-hidden), tempting to simple bots.
    website = StringField("Leave this field empty", render_kw={"autocomplete": "off"})

    def validate_phone(self, field) -> None:
        region = current_app.config["PHONE_DEFAULT_REGION"]
        try:
            number = phonenumbers.parse(field.data, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValidationError(
                "Enter a valid phone number, like (207) 555-0123, or with a country code, "
                "like +44 7700 900123."
            )
        self.phone_e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def validate_birth_date(self, field) -> None:
        today = clock.now().date()
        if field.data > today:
            raise ValidationError("Date of birth must be in the past.")
        if field.data < date(today.year - OLDEST_AGE_YEARS, 1, 1):
            raise ValidationError("Check the year of your date of birth.")

    def looks_like_a_bot(self) -> bool:
        """A filled honeypot, or a form sent back faster than a person can fill it in."""
        if self.website.data:
            return True
        started = read_started_stamp(self.started.data)
        minimum = current_app.config["BOOKING_MIN_FILL_SECONDS"]
        return started is None or clock.now().timestamp() - started < minimum


def _stamp_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="booking-form-started")


def make_started_stamp() -> str:
    """A signed note of when the form was shown, so a bot cannot claim it took its time."""
    return _stamp_serializer().dumps(int(clock.now().timestamp()))


def read_started_stamp(stamp: str | None) -> float | None:
    try:
        return float(_stamp_serializer().loads(stamp or ""))
    except (BadSignature, TypeError, ValueError):
        return None


class ManageCancelForm(FlaskForm):
    """A patient cancelling from their manage link: nothing but the CSRF token."""


class ManageRescheduleForm(FlaskForm):
    """A patient moving their booking to the slot this key names (checked by the service)."""

    slot = HiddenField(validators=[DataRequired(), Length(max=40)])
