"""Error pages: friendly, never a traceback; 503 with Retry-After when the database is away.

The 503 page says only what is true for the request that failed: "nothing was booked" on a
booking attempt, "nothing was changed" on a patient's change, "your booking is safe" on the
pages that show one, the console's own words on staff pages, something neutral elsewhere; and
never "nothing" when a COMMIT may have happened. The 413 and expired-form (CSRF) pages follow
the path the same way: nothing booked, nothing changed, or nothing saved.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from .extensions import db
from .faults import TemporarilyUnavailable

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 30
# A proxy's request id is reused only if it looks like one: it goes into every log line.
INCOMING_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

# Our own words for the HTTP errors a visitor can meet (never Werkzeug's developer English).
# Each says what happened and what to do; the page adds the clinic's phone and email.
ERROR_WORDING: dict[int, tuple[str, str]] = {
    400: (
        "We could not read that request",
        "Something in the address or the form was not what we expected. Please go back, "
        "reload the page and try again.",
    ),
    403: ("You cannot open this page", "This page is not open to the public."),
    405: (
        "That does not work on this page",
        "This page cannot do what was asked. Please go back and use the page's own links "
        "and buttons.",
    ),
    410: ("This page is no longer available", "The link you followed has expired."),
    413: (
        "That was more than we can accept",
        "What you sent was larger than our forms take. Please go back, shorten the note "
        "(it can be up to 500 characters) and try again.",
    ),
    415: (
        "We could not read that request",
        "Please go back, reload the page and try again.",
    ),
}
GENERIC_WORDING = (
    "Something went wrong with that request",
    "Please go back and try again. If it keeps happening, call us and we will help.",
)


def audience() -> str:
    """Whose page failed, by path: "booking" (the booking form), "manage" (a patient's link),
    "staff" (the console) or "other"; error pages pick what they may truthfully say by it."""
    path = request.path
    if path == "/staff" or path.startswith("/staff/"):
        return "staff"
    if path.startswith("/manage/"):
        return "manage"
    if path.startswith("/book/"):
        return "booking"
    return "other"


# What a refused form (too large, expired) did not do, said on the error page.
NOTHING_DONE = {
    "booking": "Nothing was booked.",
    "manage": "Nothing was changed.",
    "staff": "Nothing was saved.",
    "other": "",  # every form lives under one of the three; say nothing we cannot know
}


def nothing_done() -> str:
    return NOTHING_DONE[audience()]


def request_id() -> str:
    """A short id shown on error pages and logged, so staff can find the failure."""
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = (
            incoming if INCOMING_REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex[:12]
        )
    return g.request_id


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _render(status: int, template: str = "errors/error.html", **context):
    if _wants_json():
        message = context.get("message") or context.get("title", "Error")
        return {"error": message, "status": status, "request_id": request_id()}, status
    return render_template(template, status=status, request_id=request_id(), **context), status


def is_outage(error: DBAPIError) -> bool:
    """The database is away or broke the connection, as opposed to refusing this statement."""
    if isinstance(error, TemporarilyUnavailable | OperationalError | InterfaceError):
        return True  # our own bounded waits (deadline, write lock, storage) say "not now" too
    return bool(getattr(error, "connection_invalidated", False))


def outage_cause(error: BaseException) -> dict[str, str]:
    """What the operator needs to tell one outage from another, and nothing a patient typed.

    SQLite's result-code name (SQLITE_READONLY, SQLITE_BUSY...) and its short message, a
    PostgreSQL SQLSTATE, or our own reason ("file not writable"). Never str(error): SQLAlchemy's
    text holds the statement and its parameters.
    """
    if isinstance(error, TemporarilyUnavailable):
        return {"reason": str(error)[:200]}
    original = getattr(error, "orig", None)
    cause = {}
    if name := getattr(original, "sqlite_errorname", None):
        cause["db_error"] = name
        if original.args and isinstance(original.args[0], str):
            cause["db_message"] = original.args[0][:200]  # SQLite's own words, no values
    elif sqlstate := getattr(original, "sqlstate", None):
        cause["db_error"] = sqlstate
    return cause


UNAVAILABLE_TITLES = {
    "booking": "We can't take bookings right now",
    "unconfirmed": "We could not confirm your booking",
    "change": "We can't make changes right now",
    "change_unconfirmed": "We could not confirm your change",
    "your_booking": "We could not load your booking just now",
    "staff": "The console is unavailable for a moment",
    "staff_unconfirmed": "We could not confirm that change",
    "neutral": "This page is unavailable for a moment",
}


def unavailable_situation(error: BaseException) -> str:
    """Which truth the 503 page tells: see UNAVAILABLE_TITLES and errors/503.html.

    A COMMIT the server may have applied before the connection broke (`commit_outcome_unknown`)
    never gets "nothing was booked/changed": the change may be there.
    """
    who = audience()
    outcome_unknown = getattr(error, "commit_outcome_unknown", False)
    if who == "staff":
        # Staff read the console, not a patient's booking: their own words, GET or POST.
        return "staff_unconfirmed" if request.method == "POST" and outcome_unknown else "staff"
    if request.method == "POST":
        if who == "booking":
            # Resending the same booking form is safe either way (its idempotency key).
            return "unconfirmed" if outcome_unknown else "booking"
        return "change_unconfirmed" if outcome_unknown else "change"
    if who == "manage" or request.path.startswith("/book/confirmed"):
        return "your_booking"
    return "neutral"


def init_app(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(_error):
        return _render(404, "errors/404.html", title="Page not found")

    @app.errorhandler(CSRFError)
    def csrf_failed(_error):
        return _render(
            400,
            title="This form has expired",
            message="For your security the form timed out. Please go back, reload the page "
            f"and try again. {nothing_done()}".rstrip(),
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        title, message = ERROR_WORDING.get(error.code or 500, GENERIC_WORDING)
        # A refused form: say what did not happen (a manage form's own token check is a 400).
        if error.code == 413 or (error.code == 400 and request.method == "POST"):
            message = f"{message} {nothing_done()}".rstrip()
        response = _render(error.code or 500, title=title, message=message)
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            body, status = response
            return body, status, {"Allow": ", ".join(error.valid_methods)}
        return response

    @app.errorhandler(TemporarilyUnavailable)
    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def database_unavailable(error):
        if not is_outage(error):
            # Bad data or a bug (DataError, IntegrityError...): not "try again later".
            db.session.rollback()
            return internal_error(error)
        log.error(
            "database unavailable",
            extra={"event": "db.unavailable", "error": type(error).__name__, **outage_cause(error)},
        )
        db.session.rollback()
        situation = unavailable_situation(error)
        body, status = _render(
            503, "errors/503.html", title=UNAVAILABLE_TITLES[situation], situation=situation
        )
        return body, status, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}

    @app.errorhandler(Exception)
    def internal_error(error):
        if isinstance(error, HTTPException):
            return http_error(error)
        log.exception("unhandled error", extra={"event": "http.error"})
        return _render(500, "errors/500.html", title="Something went wrong")
