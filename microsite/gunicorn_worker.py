"""gunicorn's gthread worker, except that a stopping worker still answers every connection it took.

gthread gives a new connection a thread for DEFAULT_WORKER_DATA_TIMEOUT (20 ms here, see
gunicorn.conf.py); if the request's bytes have not arrived by then, the thread hands the
connection back to the event loop ("deferred") to wait without a thread. gunicorn 27 parks a
deferred connection only while the worker is alive: when the deferral lands after the worker was
told to stop (SIGTERM, which is how a SIGHUP reload retires the old workers), the connection
falls through to the keep-alive branch, which fails on its missing parser, and is closed with no
response. The patient's browser then shows a broken connection for a request the old worker had
accepted. This worker parks that connection as a live one would: the stopping worker's shutdown
loop keeps serving its connections (within graceful_timeout), so it is answered when its bytes
arrive, or closed after the keep-alive time if they never do, as an idle connection always is.
"""

from __future__ import annotations

import selectors
import time
from functools import partial

from gunicorn.workers import gthread


class ThreadWorker(gthread.ThreadWorker):
    """gthread's worker; a connection deferred while stopping waits for its request."""

    def finish_request(self, conn, fs) -> None:
        if not self.alive and _was_deferred(fs):
            self._park_until_readable(conn)
            return
        super().finish_request(conn, fs)

    def _park_until_readable(self, conn) -> None:
        # What gthread's finish_request does with a deferred connection on a live worker.
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )


def _was_deferred(fs) -> bool:
    return not fs.cancelled() and fs.exception() is None and fs.result() is gthread._DEFER
