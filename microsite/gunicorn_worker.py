"""gunicorn's gthread worker, except that every connection it accepts gets its request answered.

gthread gives a new connection a thread for DEFAULT_WORKER_DATA_TIMEOUT (20 ms here, see
gunicorn.conf.py); if the request's bytes have not arrived by then, the thread hands the
connection back to the event loop ("deferred") to wait without a thread. Two things in gunicorn
27 drop such a connection, and this worker changes both:

- A deferral that lands after the worker was told to stop (SIGTERM, which is how a SIGHUP reload
  retires the old workers) falls through to the keep-alive branch, fails on its missing parser,
  and the connection is closed with no response. Here the stopping worker parks it as a live one
  would; its shutdown loop keeps serving its connections (within graceful_timeout), so it is
  answered when its bytes arrive.
- A deferred connection waits only `keepalive` (2 s) for its first bytes, counted from the
  deferral: with gunicorn's own 5 s thread wait that was 7 s, with our 20 ms it would be 2 s, and
  a client slowed by a busy machine or network is closed unanswered. Here it waits
  FIRST_REQUEST_TIMEOUT_S (or the keep-alive time, if longer), in the event loop: a socket, no
  thread.
"""

from __future__ import annotations

import selectors
import time
from functools import partial

from gunicorn.workers import gthread

# Seconds a new connection may take to send its request, waiting in the event loop (nginx's
# client_header_timeout is 60 s; behind it, requests arrive whole and at once).
FIRST_REQUEST_TIMEOUT_S = 10.0


class ThreadWorker(gthread.ThreadWorker):
    """gthread's worker; a deferred connection waits for its request, even while stopping."""

    def finish_request(self, conn, fs) -> None:
        if _was_deferred(fs):
            self._park_until_readable(conn)
            return
        super().finish_request(conn, fs)

    def _park_until_readable(self, conn) -> None:
        # What gthread's finish_request does with a deferred connection on a live worker, with
        # a first-request timeout of its own. Every parked connection gets the same wait, so
        # pending_conns stays in timeout order, as murder_pending expects.
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + max(self.cfg.keepalive, FIRST_REQUEST_TIMEOUT_S)
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )


def _was_deferred(fs) -> bool:
    return not fs.cancelled() and fs.exception() is None and fs.result() is gthread._DEFER
