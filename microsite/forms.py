"""Flask-WTF forms: the shape of input only; the services decide what is bookable."""

from __future__ import annotations

import secrets

import phonenumbers
from flask import current_app, session
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from wtforms import BooleanField, EmailField, Field, HiddenField, StringField, TextAreaField
from wtforms.utils import unset_value
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from . import clock, inputs

NOTE_MAX_LENGTH = 500
# Every example the site shows must itself be accepted (tests/test_input_rules.py checks).
PHONE_EXAMPLE_LOCAL = "(207) 555-0123"
PHONE_EXAMPLE_INTERNATIONAL = "+44 20 7946 0958"
PHONE_HELP = (
    f"Enter a valid phone number, like {PHONE_EXAMPLE_LOCAL}, or with a country code, "
    f"like {PHONE_EXAMPLE_INTERNATIONAL}."
)


def _strip(value):
    """One-line text: no control characters (NUL included), no surrounding spaces."""
    return inputs.clean_text(value) if isinstance(value, str) else value


def _strip_multiline(value):
    return inputs.clean_text(value, multiline=True) if isinstance(value, str) else value


class DateOfBirthField(Field):
    """A date of birth typed into three boxes, month, day and year, in the clinic's (US) order.

    The GOV.UK "date input", not a date picker: a poor control for a date known by heart, and
    one whose parts and order differ by browser and locale (so no hint can describe it). The
    boxes `<name>-month`, `<name>-day` and `<name>-year` (drawn by _macros.html's date_input)
    give `data`, the date or None; `error_parts` names the boxes an error is about, `link_id`
    the first of them, where the error summary links.
    """

    parts = inputs.DATE_PARTS

    def process(self, formdata, data=unset_value, extra_filters=None) -> None:
        # One value from three inputs: WTForms' documented case for overriding process().
        self.process_errors, self.error_parts, self.data, self.raw_data = [], (), None, []
        self.typed = dict.fromkeys(self.parts, "")
        if formdata is None:
            return
        for part in self.parts:
            self.typed[part] = inputs.clean_text(formdata.get(f"{self.name}-{part}"))
        self.raw_data = list(self.typed.values())
        try:
            self.data = inputs.parse_birth_date(*self.raw_data, today=clock.now().date())
        except inputs.DateInputError as error:
            self.process_errors.append(str(error))
            self.error_parts = error.parts

    @property
    def link_id(self) -> str:
        return f"{self.id}-{(self.error_parts or self.parts)[0]}"


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
            Length(max=32, message=PHONE_HELP),
        ],
        render_kw={"autocomplete": "tel", "type": "tel"},
    )
    birth_date = DateOfBirthField("Date of birth")
    note = TextAreaField(
        "Anything you'd like us to know before the consultation (optional)",
        filters=[_strip_multiline],
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
    consultation_type = HiddenField(filters=[_strip], validators=[DataRequired()])
    slot = HiddenField(filters=[_strip], validators=[DataRequired()])
    idempotency_key = HiddenField(
        filters=[_strip],
        validators=[DataRequired(), Length(min=16, max=64), Regexp(r"^[A-Za-z0-9_-]+$")],
    )
    started = HiddenField(filters=[_strip])
    # Honeypot: hidden from people (CSS and aria-hidden), tempting to simple bots.
    website = StringField(
        "Leave this field empty", filters=[_strip], render_kw={"autocomplete": "off"}
    )

    def validate_phone(self, field) -> None:
        region = current_app.config["PHONE_DEFAULT_REGION"]
        try:
            number = phonenumbers.parse(field.data, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValidationError(PHONE_HELP)
        self.phone_e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def looks_like_a_bot(self) -> bool:
        """A filled honeypot, or a form stamp that is not this browser's, for this form, shown
        at least BOOKING_MIN_FILL_SECONDS and at most BOOKING_FORM_MAX_AGE_SECONDS ago."""
        if not current_app.config["BOOKING_BOT_GUARD"]:
            return False  # a load test replaying one form (see README); never in production
        if self.website.data:
            return True
        started = read_started_stamp(self.started.data, self.idempotency_key.data)
        minimum = current_app.config["BOOKING_MIN_FILL_SECONDS"]
        return started is None or clock.now().timestamp() - started < minimum


# The browser's own random id, kept in its (signed) session cookie: a stamp names it, so a
# stamp copied into another browser, or replayed by a script without the cookie, is refused.
FORM_SESSION_KEY = "booking_form_browser"


_stamp_serializers: dict[str, URLSafeSerializer] = {}


def _stamp_serializer() -> URLSafeSerializer:
    # Built once per key: it is needed on every form shown and every booking sent.
    key = current_app.config["SECRET_KEY"]
    serializer = _stamp_serializers.get(key)
    if serializer is None:
        serializer = _stamp_serializers[key] = URLSafeSerializer(key, salt="booking-form-started")
    return serializer


def _browser_id() -> str:
    if FORM_SESSION_KEY not in session:
        session[FORM_SESSION_KEY] = secrets.token_urlsafe(12)
    return session[FORM_SESSION_KEY]


def make_started_stamp(idempotency_key: str) -> str:
    """A signed note of when this form was shown, to this browser, for this one booking.

    The stamp is bound to the form's idempotency key, and a key makes at most one booking (the
    same key again returns that booking or "this form was already used"): so a stamp is used
    up by the booking it made, and one stamp cannot be replayed for many bookings.
    """
    return _stamp_serializer().dumps([int(clock.now().timestamp()), _browser_id(), idempotency_key])


def read_started_stamp(stamp: str | None, idempotency_key: str | None) -> float | None:
    """When the form was shown, or None for a stamp that is forged, foreign, stale or reused."""
    try:
        shown_at, browser, key = _stamp_serializer().loads(stamp or "")
        shown_at = float(shown_at)
    except (BadSignature, TypeError, ValueError):
        return None

    if browser != session.get(FORM_SESSION_KEY) or key != idempotency_key:
        return None
    if clock.now().timestamp() - shown_at > current_app.config["BOOKING_FORM_MAX_AGE_SECONDS"]:
        return None
    return shown_at


class ManageCancelForm(FlaskForm):
    """A patient cancelling from their manage link: nothing but the CSRF token."""


class ManageRescheduleForm(FlaskForm):
    """A patient moving their booking to the slot this key names (checked by the service)."""

    slot = HiddenField(validators=[DataRequired(), Length(max=40)])
