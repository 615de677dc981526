"""Flask-WTF forms of the staff console: the shape of input only (the services decide)."""

from __future__ import annotations

import re
from datetime import time

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

NOTE_MAX_LENGTH = 2000
SLUG_HELP = "Use lower-case letters, digits and hyphens."


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms' option objects."""
    return [SelectChoice(value, label) for value, label in pairs]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[_strip],
        validators=[DataRequired("Enter your email address."), Length(max=254)],
        render_kw={"autocomplete": "username", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password."), Length(max=256)],
        render_kw={"autocomplete": "current-password"},
    )


class CodeForm(FlaskForm):
    code = StringField(
        "6-digit code",
        filters=[_strip],
        validators=[DataRequired("Enter the code from your authenticator app."), Length(max=12)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class RecoveryForm(FlaskForm):
    code = StringField(
        "Recovery code",
        filters=[_strip],
        validators=[DataRequired("Enter one of your recovery codes."), Length(max=40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class PostForm(FlaskForm):
    """A form with nothing but its CSRF token: sign-out, attendance buttons."""


class AttendanceForm(FlaskForm):
    status = HiddenField(validators=[DataRequired()])


class NoteForm(FlaskForm):
    body = TextAreaField(
        "Add an internal note",
        filters=[_strip],
        validators=[
            DataRequired("Write the note first."),
            Length(max=NOTE_MAX_LENGTH, message=f"Keep notes under {NOTE_MAX_LENGTH} characters."),
        ],
    )


class BookingSearchForm(FlaskForm):
    """Filters for the booking list. Sent by POST: a patient's name must never be in a URL."""

    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    clinician = SelectField("Clinician", coerce=str, validators=[Optional()])
    consultation_type = SelectField("Type", coerce=str, validators=[Optional()])
    status = SelectField("Status", coerce=str, validators=[Optional()])
    q = StringField(
        "Search",
        filters=[_strip],
        validators=[Optional(), Length(max=120)],
        description="Name, reference, email or phone",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100000)])


class DateRangeForm(FlaskForm):
    """A date range by GET (dates only, nothing about a patient)."""

    class Meta:
        csrf = False

    date_from = DateField("From", validators=[InputRequired("Enter the first day.")])
    date_to = DateField("To", validators=[InputRequired("Enter the last day.")])


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField("From", validators=[Optional()])
    date_to = DateField("To", validators=[Optional()])
    actor = SelectField("Who", coerce=str, validators=[Optional()])
    action = SelectField("What", coerce=str, validators=[Optional()])
    booking = IntegerField("Booking id", validators=[Optional(), NumberRange(min=1)])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100000)])


WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def parse_day_ranges(text: str) -> list[tuple[time, time]]:
    """'09:00-12:00, 13:00-17:00' as (start, end) pairs; ValueError with a message if not."""
    ranges = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"Write times like 09:00-12:00, 13:00-17:00 (not “{part[:20]}”).")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 == 0:
            h2, m2 = 23, 59
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ValueError(f"{part} is not a time of day.") from None
        if start >= end:
            raise ValueError(f"{part} ends before it starts.")
        ranges.append((start, end))
    return ranges


class ClinicianForm(FlaskForm):
    name = StringField(
        "Name", filters=[_strip], validators=[DataRequired("Enter a name."), Length(max=120)]
    )
    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[DataRequired("Enter an email address."), Length(max=254)],
        description="Where this clinician's calendar invites go.",
    )
    is_active = BooleanField("Takes bookings")
    daily_cap = IntegerField(
        "Most consultations a day",
        validators=[Optional(), NumberRange(min=1, max=50)],
        description="Leave empty for no limit.",
    )
    display_order = IntegerField("Order in lists", default=0, validators=[NumberRange(0, 999)])
    confirmed = HiddenField(default="")


class HoursForm(FlaskForm):
    """One text field a day: '09:00-12:00, 13:00-17:00' (a break between), empty for none."""

    monday = StringField("Monday")
    tuesday = StringField("Tuesday")
    wednesday = StringField("Wednesday")
    thursday = StringField("Thursday")
    friday = StringField("Friday")
    saturday = StringField("Saturday")
    sunday = StringField("Sunday")
    confirmed = HiddenField(default="")

    def day_fields(self):
        return [getattr(self, name.lower()) for name in WEEKDAY_NAMES]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        self.ranges = []
        for weekday, field in enumerate(self.day_fields()):
            try:
                self.ranges += [(weekday, s, e) for s, e in parse_day_ranges(field.data)]
            except ValueError as error:
                field.errors = [*field.errors, str(error)]
                valid = False
        return valid


class ClosureForm(FlaskForm):
    clinician = SelectField("Who", coerce=str)
    start_day = DateField("First day", validators=[InputRequired("Enter the first day.")])
    start_time = TimeField("From", validators=[Optional()], description="Empty: the whole day.")
    end_day = DateField("Last day", validators=[InputRequired("Enter the last day.")])
    end_time = TimeField("Until", validators=[Optional()], description="Empty: the whole day.")
    reason = StringField(
        "Reason",
        filters=[_strip],
        validators=[Length(max=200)],
        description="Staff see this; patients never do.",
    )
    confirmed = HiddenField(default="")


class ConsultationTypeForm(FlaskForm):
    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=120)])
    slug = StringField(
        "Short name in links",
        filters=[_strip],
        validators=[DataRequired(), Length(max=60), Regexp(r"^[a-z0-9-]+$", message=SLUG_HELP)],
    )
    mode = SelectField("How", choices=choices([("in_person", "In person"), ("video", "Video")]))
    description = TextAreaField("Description", filters=[_strip], validators=[Length(max=1000)])
    duration_minutes = IntegerField("Length (minutes)", validators=[NumberRange(5, 480)])
    buffer_before_minutes = IntegerField("Free before (minutes)", validators=[NumberRange(0, 240)])
    buffer_after_minutes = IntegerField("Free after (minutes)", validators=[NumberRange(0, 240)])
    min_notice_minutes = IntegerField(
        "Notice needed (minutes)", validators=[NumberRange(0, 60 * 24 * 60)]
    )
    horizon_days = IntegerField("Bookable up to (days ahead)", validators=[NumberRange(1, 730)])
    slot_interval_minutes = IntegerField(
        "Start times every (minutes)", validators=[NumberRange(5, 240)]
    )
    is_active = BooleanField("Offered to patients")
    display_order = IntegerField("Order in lists", default=0, validators=[NumberRange(0, 999)])


ROLE_LABELS = {"admin": "Admin", "frontdesk": "Front desk", "clinician": "Clinician"}
ROLE_HELP = (
    "Admin: everything, including the schedule, accounts and audit. Front desk: every booking. "
    "Clinician: their own bookings."
)


def _new_password_fields(label: str):
    """A new password typed twice; the policy itself is the service's to check."""
    password = PasswordField(
        label,
        validators=[DataRequired("Enter a password."), Length(max=256)],
        render_kw={"autocomplete": "new-password"},
    )
    repeat = PasswordField(
        "The same password again",
        validators=[
            DataRequired("Enter the password a second time."),
            EqualTo("password", message="The two passwords are not the same."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return password, repeat


class _RoleFields(FlaskForm):
    role = SelectField("Role", choices=choices(ROLE_LABELS.items()), description=ROLE_HELP)
    clinician = SelectField(
        "Clinician",
        coerce=str,
        description="Only for a clinician account: whose bookings it sees.",
    )

    def validate_clinician(self, field) -> None:
        if self.role.data == "clinician" and not field.data:
            raise ValidationError("Choose the clinician this account belongs to.")
        if self.role.data != "clinician" and field.data:
            raise ValidationError("Only a clinician account is linked to a clinician.")

    @property
    def clinician_id(self) -> int | None:
        return int(self.clinician.data) if self.role.data == "clinician" else None


class NewAccountForm(_RoleFields):
    name = StringField(
        "Name",
        filters=[_strip],
        validators=[DataRequired("Enter the person's name."), Length(max=120)],
        description="Shown in the console and in each booking's history.",
    )
    email = EmailField(
        "Email address",
        filters=[_strip],
        validators=[DataRequired("Enter an email address."), Length(max=254)],
        description="They sign in with it.",
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    password, repeat = _new_password_fields("First password")


class RoleForm(_RoleFields):
    pass


class SetPasswordForm(FlaskForm):
    password, repeat = _new_password_fields("New password")
