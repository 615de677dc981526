"""Flask-WTF forms of the staff console: the shape of input only (the services decide)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

NOTE_MAX_LENGTH = 2000


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
