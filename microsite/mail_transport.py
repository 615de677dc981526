"""Sending built messages over SMTP with the standard library; every wait bounded by a timeout.

No Flask here either: the settings arrive as a `SmtpSettings`. Failures are sorted into
"the server is unreachable" (stop this pass, try again later) and "this message was refused"
(count an attempt for it, go on with the next one).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from types import TracebackType

# "530 Authentication required" (RFC 4954) in answer to MAIL FROM.
AUTH_REQUIRED = 530


class ServerUnavailableError(Exception):
    """The SMTP server could not be reached or stopped talking; nothing more will go through."""


class MessageRefusedError(Exception):
    """The server refused this one message; `permanent` for a 5xx reply (retrying won't help)."""

    def __init__(self, description: str, *, permanent: bool) -> None:
        super().__init__(description)
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    use_tls: bool = False
    use_ssl: bool = False
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, a log or a traceback
    timeout: float = 10.0

    @classmethod
    def from_config(cls, config: Mapping) -> SmtpSettings:
        return cls(
            host=str(config.get("MAIL_SERVER") or ""),
            port=int(config.get("MAIL_PORT") or 25),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            username=str(config.get("MAIL_USERNAME") or ""),
            password=str(config.get("MAIL_PASSWORD") or ""),
            timeout=float(config.get("MAIL_TIMEOUT") or 10),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.host)


def describe(error: BaseException) -> str:
    """A short, patient-free description: the exception's name and SMTP code, never its text
    (a refusal's text and arguments often quote the recipient's address)."""
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = sorted({reply[0] for reply in error.recipients.values()})
        return f"{type(error).__name__} {','.join(str(c) for c in codes)}"
    return f"{type(error).__name__} {code}" if code else type(error).__name__


class SmtpConnection:
    """One SMTP session, opened on first use and reused for the messages of one pass."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        smtp = self._open()
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            permanent = all(reply[0] >= 500 for reply in error.recipients.values())
            raise MessageRefusedError(describe(error), permanent=permanent) from None
        except smtplib.SMTPSenderRefused as error:
            if error.smtp_code == AUTH_REQUIRED:
                # Not this message's fault: the server wants a login we did not give. Every
                # message would get the same answer, so stop the pass and keep them all.
                self.close()
                raise ServerUnavailableError(describe(error)) from None
            raise MessageRefusedError(describe(error), permanent=error.smtp_code >= 500) from None
        except smtplib.SMTPDataError as error:
            raise MessageRefusedError(describe(error), permanent=error.smtp_code >= 500) from None
        except smtplib.SMTPNotSupportedError as error:
            # A non-ASCII address and a server without SMTPUTF8: it will never go through.
            raise MessageRefusedError(describe(error), permanent=True) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise ServerUnavailableError(describe(error)) from None
        if refused:  # one message has one recipient: a partial refusal is a refusal
            raise MessageRefusedError("SMTPRecipientsRefused", permanent=False)

    def _open(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        settings = self.settings
        try:
            if settings.use_ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnavailableError(describe(error)) from None
        try:
            smtp.ehlo()
            if settings.use_tls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
        except (OSError, smtplib.SMTPException) as error:
            smtp.close()
            raise ServerUnavailableError(describe(error)) from None
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
