"""Rate limits (Flask-Limiter) on the endpoints that write: booking, manage links, staff sign-in.

Limits come from config in Flask-Limiter's syntax ("5 per minute;20 per hour"), counted per
client address (`extensions.limiter`). Apply them with the decorators below:

    from microsite.ratelimits import limit_manage, limit_staff_login

    @bp.post("/manage/<token>/cancel")
    @limit_manage
    def cancel(token): ...

A refused request never reaches the view, so nothing is stored; it gets a friendly 429 page
(JSON on /api/) with `Retry-After` and the clinic's phone number.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import TooManyRequests

from .extensions import limiter

log = logging.getLogger(__name__)

# The config keys holding each limit, importable by the blueprints that apply them.
RATELIMIT_BOOKING = "RATELIMIT_BOOKING"
RATELIMIT_MANAGE = "RATELIMIT_MANAGE"
RATELIMIT_STAFF_LOGIN = "RATELIMIT_STAFF_LOGIN"
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


def _configured(key: str):
    """The limit string is read per request, so a test or an operator can change it in config."""
    return lambda: current_app.config[key]


# Only the requests that change something count: reading a page is never limited.
limit_booking = limiter.limit(
    _configured(RATELIMIT_BOOKING), methods=WRITE_METHODS, scope="booking"
)
limit_manage = limiter.limit(_configured(RATELIMIT_MANAGE), methods=WRITE_METHODS, scope="manage")
limit_staff_login = limiter.limit(
    _configured(RATELIMIT_STAFF_LOGIN), methods=WRITE_METHODS, scope="staff-login"
)


def retry_after_seconds() -> int:
    """Seconds until the limit that refused this request lets the client in again."""
    current = limiter.current_limit
    if current is None:
        return 60
    # The limiter's windows run on the real clock (its own), not on `clock.now()`.
    return max(1, math.ceil(current.reset_at - time.time()))


def init_app(app: Flask) -> None:
    limiter.init_app(app)

    @app.errorhandler(429)
    def too_many_requests(_error: TooManyRequests):
        from .errors import request_id

        # The endpoint, never the address or what was sent: enough to see an attack.
        log.warning(
            "rate limit hit", extra={"event": "ratelimit.hit", "endpoint": request.endpoint}
        )
        seconds = retry_after_seconds()
        headers = {"Retry-After": str(seconds)}
        if request.path.startswith("/api/"):
            body = {
                "error": "Too many requests. Please wait and try again.",
                "status": 429,
                "request_id": request_id(),
            }
            return body, 429, headers
        page = render_template(
            "errors/429.html",
            status=429,
            title="Please wait a moment",
            request_id=request_id(),
            retry_after_minutes=math.ceil(seconds / 60),
        )
        return page, 429, headers
