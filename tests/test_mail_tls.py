"""STARTTLS, TLS from the first byte and SMTP AUTH against a real aiosmtpd server.

The certificate is a throwaway self-signed one made here with the openssl command. The app
verifies it exactly as in production (`ssl.create_default_context()`: the system's trust
store, host name checked); the tests make it trusted the way an operator with a private CA
would, by pointing OpenSSL's SSL_CERT_FILE at it, never by loosening the app's checks.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from booking_helpers import VALID_DETAILS, slot_key_for, submit
from smtp_server import smtp_server
from sqlalchemy import select

from microsite.extensions import db
from microsite.mail_transport import SmtpSettings
from microsite.models import Booking
from microsite.services import outbox

TUESDAY_9AM = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
USER = "bookings-app"
PASSWORD = "correct horse 123e4"  # noqa: S105 - a test server's password


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> SimpleNamespace:
    """A self-signed certificate for 127.0.0.1 (and localhost), valid for a day."""
    openssl = shutil.which("openssl")
    assert openssl, "these tests need the openssl command (Debian: apt-get install openssl)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments, our own temporary files
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Test mail server",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SimpleNamespace(cert=cert, key=key)


@pytest.fixture
def server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context


@pytest.fixture
def trust_test_ca(monkeypatch, certificate) -> Path:
    """Make the test certificate the trust store, as an operator's private CA would be."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return certificate.cert


def authenticator(_server, _session, _envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, auth_data=USER if ok else None, handled=False)


@pytest.fixture
def clinic(frozen_clock, make_clinician, make_consultation_type):
    clinician = make_clinician(name="Dr. Avery Quinn", email="a.quinn@example.test")
    return SimpleNamespace(clinician=clinician, type=make_consultation_type())


def book(client, clinic) -> Booking:
    response = submit(client, clinic.type.id, slot_key_for(TUESDAY_9AM, clinic.clinician.id))
    assert response.status_code == 303
    return db.session.scalars(select(Booking)).one()


def use_server(app, port: int, **mail) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=5, **mail)


def statuses(booking: Booking) -> list[tuple[str, int]]:
    return sorted((m.status, m.attempts) for m in outbox.messages_for_booking(booking.id))


def test_starttls_and_auth_deliver_over_a_verified_encrypted_login(
    app, client, clinic, server_context, trust_test_ca
):
    options = {
        "tls_context": server_context,
        "require_starttls": True,  # the server refuses mail before STARTTLS
        "authenticator": authenticator,
        "auth_required": True,  # ... and before a login
    }
    with smtp_server(**options) as (port, handler):
        use_server(app, port, MAIL_USE_TLS=True, MAIL_USERNAME=USER, MAIL_PASSWORD=PASSWORD)
        booking = book(client, clinic)
        assert outbox.send_due().sent == 3
        received = handler.wait_for(3)
    assert len(received) == 3
    assert all(item.encrypted and item.login == USER for item in received)
    assert {rcpt for item in received for rcpt in item.rcpt_tos} >= {VALID_DETAILS["email"]}
    assert statuses(booking) == [("sent", 1)] * 3


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_tls_from_the_first_byte_with_auth(app, client, clinic, server_context, trust_test_ca):
    # aiosmtpd only counts STARTTLS as TLS for its "AUTH over TLS only" rule; this whole
    # connection is TLS (asserted below through `encrypted`).
    options = {"ssl_context": server_context, "authenticator": authenticator}
    options |= {"auth_required": True, "auth_require_tls": False}
    with smtp_server(**options) as (port, handler):
        use_server(app, port, MAIL_USE_SSL=True, MAIL_USERNAME=USER, MAIL_PASSWORD=PASSWORD)
        booking = book(client, clinic)
        assert outbox.send_due().sent == 3
        received = handler.wait_for(3)
    assert [(item.encrypted, item.login) for item in received] == [(True, USER)] * 3
    assert statuses(booking) == [("sent", 1)] * 3


@pytest.mark.parametrize("mode", ["MAIL_USE_TLS", "MAIL_USE_SSL"])
def test_a_certificate_nobody_vouches_for_is_refused_and_the_mail_waits(
    app, client, clinic, server_context, mode, monkeypatch, tmp_path
):
    # The same server, but the trust store does not hold its certificate: production's
    # verification must refuse it (no message goes out over a connection that could be
    # intercepted) and keep every message for a later pass.
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    listen = {"MAIL_USE_TLS": "tls_context", "MAIL_USE_SSL": "ssl_context"}[mode]
    with smtp_server(**{listen: server_context}) as (port, handler):
        use_server(app, port, **{mode: True})
        booking = book(client, clinic)
        report = outbox.send_due()
        assert report.server_unavailable
        assert report.sent == 0
        assert handler.received == []
    assert {m.status for m in outbox.messages_for_booking(booking.id)} == {"pending"}
    assert "SSLCertVerificationError" in {
        m.last_error for m in outbox.messages_for_booking(booking.id)
    }


def test_a_wrong_password_keeps_the_mail_and_never_logs_the_password(
    app, client, clinic, server_context, trust_test_ca, frozen_clock, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Pa55word-7e3"  # noqa: S105
    options = {
        "tls_context": server_context,
        "require_starttls": True,
        "authenticator": authenticator,
        "auth_required": True,
    }
    with smtp_server(**options) as (port, handler):
        use_server(app, port, MAIL_USE_TLS=True, MAIL_USERNAME=USER, MAIL_PASSWORD=wrong)
        booking = book(client, clinic)
        report = outbox.send_due()
        assert report.server_unavailable  # a refused login stops the pass, fails nothing
        assert handler.received == []
        messages = outbox.messages_for_booking(booking.id)
        assert {m.status for m in messages} == {"pending"}
        assert {m.last_error for m in messages} == {"", "SMTPAuthenticationError 535"}

        app.config["MAIL_PASSWORD"] = PASSWORD  # the operator fixes the setting
        frozen_clock.advance(timedelta(seconds=app.config["MAIL_RETRY_BASE_SECONDS"]))
        assert outbox.send_due().sent == 3
        assert len(handler.wait_for(3)) == 3
    shown = caplog.text + repr([record.__dict__ for record in caplog.records])
    assert wrong not in shown
    assert PASSWORD not in shown
    assert PASSWORD not in repr(SmtpSettings.from_config(app.config))


def test_a_server_that_requires_auth_when_none_is_configured_keeps_the_mail(
    app, client, clinic, server_context, trust_test_ca
):
    options = {"tls_context": server_context, "authenticator": authenticator}
    options |= {"auth_required": True}
    with smtp_server(**options) as (port, handler):
        use_server(app, port, MAIL_USE_TLS=True)  # no MAIL_USERNAME: the server says 530
        booking = book(client, clinic)
        report = outbox.send_due()
        assert report.server_unavailable
        assert (report.sent, report.failed) == (0, 0)
        assert handler.received == []
    messages = outbox.messages_for_booking(booking.id)
    assert {m.status for m in messages} == {"pending"}  # not failed: a setting fixes it
    assert {m.last_error for m in messages} == {"", "SMTPSenderRefused 530"}


@pytest.fixture(autouse=True)
def _quiet_aiosmtpd(caplog):
    caplog.set_level(logging.WARNING, logger="mail.log")
