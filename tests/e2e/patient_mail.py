"""The patient's email, for real: `flask outbox send` delivers the outbox to the test's SMTP
server (the e2e server itself has no MAIL_SERVER, so its messages wait there), and the manage
link is read from the message the patient received.

The link carries a token made when the message is rendered for sending, and only its hash is
stored, so the email is the only place a patient (or a test) can get it from.
"""

from __future__ import annotations

import re

from smtp_server import RecordingHandler

MANAGE_LINK_RE = re.compile(r"https?://\S+/manage/[\w-]+")


def deliver_outbox(server, mail: tuple[int, RecordingHandler]) -> None:
    """One `flask outbox send` pass to the test's SMTP server; links point at the e2e server."""
    port, _handler = mail
    result = server.flask(
        "outbox",
        "send",
        MICROSITE_MAIL_SERVER="127.0.0.1",
        MICROSITE_MAIL_PORT=str(port),
        MICROSITE_SITE_URL=server.url,
    )
    assert "outbox:" in result.stdout, result.stdout


def plain_text(message) -> str:
    return "\n".join(
        part.get_content() for part in message.walk() if part.get_content_type() == "text/plain"
    )


def manage_link(server, mail: tuple[int, RecordingHandler], reference: str) -> str:
    """Send the outbox; the manage link in the confirmation email of that booking."""
    deliver_outbox(server, mail)
    _port, handler = mail
    bodies = [plain_text(received.message) for received in handler.received]
    mine = [body for body in bodies if f"Reference: {reference}" in body]
    assert mine, f"no email for reference {reference} among {len(bodies)} delivered"
    links = MANAGE_LINK_RE.findall(mine[0])
    assert len(links) == 1, mine[0]
    assert links[0].startswith(server.url + "/manage/"), links[0]
    return links[0]
