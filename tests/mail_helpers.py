"""Reading sent emails back as a mail client would: the MIME tree, the calendar, the link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage

import icalendar
import vobject
from test_ics import interop_problems

MANAGE_LINK_RE = re.compile(r"https?://[^\s\"<>]+/manage/([A-Za-z0-9_-]{43})")
# Words that would tell anyone glancing at a subject or a calendar what the appointment is for.
REVEALING = re.compile(r"ketamine|psychiatr|depress|anxiety|mental|therap", re.IGNORECASE)


@dataclass(frozen=True)
class Invitation:
    """One received email, taken apart."""

    message: EmailMessage
    text: str
    html: str
    ics: bytes | None  # the inline text/calendar part
    method_param: str | None
    attachment: bytes | None

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def event(self) -> icalendar.Event:
        events = icalendar.Calendar.from_ical(self.ics).walk("VEVENT")
        assert len(events) == 1
        return events[0]

    @property
    def method(self) -> str:
        return str(icalendar.Calendar.from_ical(self.ics)["METHOD"])

    @property
    def uid(self) -> str:
        return str(self.event["UID"])

    @property
    def sequence(self) -> int:
        return int(self.event["SEQUENCE"])

    @property
    def manage_token(self) -> str | None:
        match = MANAGE_LINK_RE.search(self.text)
        return match.group(1) if match else None


def dissect(message: EmailMessage) -> Invitation:
    """Check the iMIP shape INTEROP.md asks for and return the parts.

    multipart/mixed [ multipart/alternative [text/plain, text/html, text/calendar], .ics ] for
    an invitation; multipart/alternative [text/plain, text/html] for a plain reminder.
    """
    if message.get_content_type() == "multipart/alternative":
        plain, html = message.get_payload()
        assert plain.get_content_type() == "text/plain"
        assert html.get_content_type() == "text/html"
        return Invitation(message, plain.get_content(), html.get_content(), None, None, None)
    assert message.get_content_type() == "multipart/mixed", message.get_content_type()
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html, calendar = alternative.get_payload()  # Outlook reads the first child only
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("charset").upper() == "UTF-8"
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename().endswith(".ics")
    inline = calendar.get_payload(decode=True)
    attached = attachment.get_payload(decode=True)
    assert attached == inline, "the attachment differs from the inline calendar"
    method_param = calendar.get_param("method")
    parsed_method = str(icalendar.Calendar.from_ical(inline)["METHOD"])
    assert method_param == parsed_method, (method_param, parsed_method)
    assert interop_problems(inline, parsed_method) == []
    assert len(vobject.readOne(inline.decode("utf-8")).vevent_list) == 1
    return Invitation(
        message, plain.get_content(), html.get_content(), inline, method_param, attached
    )
