"""The request deadline: past it, nothing is committed and every wait gives up.

A request gets `REQUEST_DEADLINE_SECONDS` from when it reached the app, or from when it reached
the proxy when `REQUEST_START_HEADER_TRUSTED` says the proxy's `X-Request-Start` may be believed
(`t=<microseconds since the epoch>`, as nginx and Heroku send it; seconds and milliseconds are
recognised too). A patient whose browser gave up has left: committing their booking then would
book them behind their back, and they would book again. The booking code asks this module
(`remaining()` before it waits, `check()` just before it commits) instead of carrying the
deadline through every call. Outside a request (the CLI) there is no deadline.

Elapsed time is measured on the monotonic clock; only the proxy's header is wall-clock time.
This is a measurement of how long the request has run, not "what time is it": `clock.now()`
stays the one seam for that.
"""

from __future__ import annotations

import time

from flask import Flask, current_app, g, has_request_context, request

from .faults import DeadlineExceeded

REQUEST_START_HEADER = "X-Request-Start"
# A header further in the past than this is garbage (or a replay), not a slow proxy.
_MAX_BELIEVED_QUEUE_SECONDS = 3600.0


def init_app(app: Flask) -> None:
    app.before_request(start_request)


def start_request() -> None:
    """Fix this request's deadline: its arrival (or the proxy's) plus the configured budget."""
    arrived = time.monotonic()
    if current_app.config.get("REQUEST_START_HEADER_TRUSTED"):
        queued = queued_seconds(request.headers.get(REQUEST_START_HEADER, ""), time.time())
        arrived -= queued
    g.request_deadline = arrived + float(current_app.config["REQUEST_DEADLINE_SECONDS"])


def queued_seconds(header: str, wall_now: float) -> float:
    """How long ago the proxy says the request reached it (0 when the header says nothing)."""
    value = header.strip()
    if value.startswith("t="):
        value = value[2:]
    try:
        stamp = float(value)
    except ValueError:
        return 0.0
    # Microseconds (nginx's ${msec} is seconds with a fraction; Heroku sends milliseconds).
    for scale in (1.0, 1e3, 1e6):
        seconds = stamp / scale
        if abs(wall_now - seconds) <= _MAX_BELIEVED_QUEUE_SECONDS:
            return max(0.0, wall_now - seconds)
    return 0.0


def remaining() -> float | None:
    """Seconds this request has left, or None outside a request (no deadline applies)."""
    if not has_request_context() or "request_deadline" not in g:
        return None
    return g.request_deadline - time.monotonic()


def bounded(limit: float) -> float:
    """`limit` seconds, or less when the request's deadline comes first (never below 0)."""
    left = remaining()
    return max(0.0, limit if left is None else min(limit, left))


def check(what: str = "continue") -> None:
    """Raise DeadlineExceeded when this request has outlived its deadline."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceeded(f"request deadline passed; did not {what}")
