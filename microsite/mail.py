"""Pure email builders: data and `now` in, an `EmailMessage` out; no Flask, no clock, no network.

An invitation is iMIP (RFC 6047) as INTEROP.md shows it:

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
        text/calendar; method=REQUEST|CANCEL; charset=UTF-8
      application/ics attachment (invite.ics)   <- the same bytes

Every header value that comes from data is stripped of CR, LF and other control characters
first (a newline in a name must not end the header block); non-ASCII display names are
encoded as RFC 2047 words when the message is serialised, and a non-ASCII address needs an
SMTPUTF8 server (RFC 6531/6532), which `smtplib` negotiates.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# Header values are one line of text: C0/C1 controls and Unicode line separators out.
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
METHODS = ("REQUEST", "CANCEL")
# RFC 5322 says 998 octets per line; subjects and names are far shorter than this.
MAX_HEADER_TEXT = 200


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An email address and the name shown with it."""

    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class CalendarPart:
    """An iTIP calendar to send inline and as an attachment; `method` equals its METHOD."""

    method: str
    ics: bytes
    filename: str = "invite.ics"


def header_text(value: str) -> str:
    """One safe header line: controls and line breaks become spaces, runs of space one."""
    return " ".join(_HEADER_BREAKS.sub(" ", value).split())[:MAX_HEADER_TEXT]


def new_message_id(domain: str) -> str:
    """A unique Message-ID (random, not time-based) on the sender's own domain."""
    return f"<{uuid.uuid4().hex}@{header_text(domain) or 'localhost'}>"


def address(mailbox: Mailbox) -> Address:
    """A header address; raises ValueError for anything that is not one address."""
    email = mailbox.email.strip()
    if not email or _HEADER_BREAKS.search(email) or any(ch in email for ch in ' ,;<>"'):
        raise ValueError("not a usable email address")
    username, at, domain = email.rpartition("@")
    if not at or not username or not domain:
        raise ValueError("not a usable email address")
    return Address(display_name=header_text(mailbox.name), username=username, domain=domain)


def build_message(
    *,
    sender: Mailbox,
    recipient: Mailbox,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    message_id: str,
    calendar: CalendarPart | None = None,
) -> EmailMessage:
    """One email to one recipient: plain text and HTML, plus an iMIP calendar when given."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    message = EmailMessage()
    message["From"] = address(sender)
    message["To"] = address(recipient)
    message["Subject"] = header_text(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = header_text(message_id)
    # Automatic mail: out-of-office replies and auto-forwarders should leave it alone.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if calendar is not None:
        _add_calendar(message, calendar)
    return message


def _add_calendar(message: EmailMessage, calendar: CalendarPart) -> None:
    method = calendar.method.upper()
    if method not in METHODS:
        raise ValueError(f"unsupported iTIP method {calendar.method!r}")
    if f"\r\nMETHOD:{method}\r\n".encode() not in calendar.ics:
        raise ValueError(f"the calendar's METHOD is not {method}")
    # Bytes, base64: the calendar travels octet for octet (CRLF and folding intact).
    message.add_alternative(calendar.ics, maintype="text", subtype="calendar")
    inline = message.get_payload()[-1]
    # Gmail shows its invite card only with method= in the Content-Type. The email package
    # writes parameter values quoted (method="REQUEST"), which RFC 2045 allows.
    inline.set_param("method", method)
    inline.set_param("charset", "UTF-8")
    message.add_attachment(
        calendar.ics, maintype="application", subtype="ics", filename=calendar.filename
    )
