"""Real SMTP endpoints for tests: an aiosmtpd server that keeps what it receives, and a
"black hole" that accepts TCP connections and never says a word (a hung mail server)."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from live_server import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    encrypted: bool = False  # the message came over TLS (STARTTLS or from the first byte)
    login: str | None = None  # the AUTH user name, when the client logged in

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=policy.default)


class RecordingHandler:
    """Keeps every message; `refuse_with` makes the server answer DATA with that reply."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[Received] = []
        self.delay = delay
        self.refuse_with: str | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.refuse_with:
            return self.refuse_with
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self._lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    bytes(envelope.content),
                    encrypted=server.transport.get_extra_info("ssl_object") is not None,
                    login=session.auth_data if session.authenticated else None,
                )
            )
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Wait (bounded) until at least `count` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self._lock:
            return list(self.received)


@contextmanager
def smtp_server(delay: float = 0.0, **options) -> Iterator[tuple[int, RecordingHandler]]:
    """An aiosmtpd server on a free loopback port; yields (port, handler).

    `options` go to aiosmtpd's Controller: `ssl_context` for TLS from the first byte,
    `tls_context` / `require_starttls` for STARTTLS, `authenticator` / `auth_required` for AUTH.
    """
    handler = RecordingHandler(delay)
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True, **options
    )
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


@contextmanager
def black_hole() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) and then never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    """A loopback port nobody listens on: connections are refused (a server that is down)."""
    return free_port()
